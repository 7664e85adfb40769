"""``python manage.py sqrt_check FILE...`` — check policy files like a linter.

Prints ``FILE: ok`` or ``FILE:LINE:COL: message`` per file (``-`` reads standard input); exit status 1
when any file has errors. Files ending in ``.cedar`` are checked as Cedar unless ``--language`` is given.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from relay.sqrt.lint import lint_files


class Command(BaseCommand):
    help = "Check SQRT (or Cedar) policy files; prints FILE: ok or FILE:LINE:COL: message."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="policy files; - reads standard input")
        parser.add_argument("--language", choices=("sqrt", "cedar"), default=None)

    def handle(self, *args, files, language=None, **options):
        failures = lint_files(files, self.stdout, language=language, stdin=sys.stdin)
        if failures:
            raise CommandError(f"{failures} of {len(files)} file(s) have errors", returncode=1)
