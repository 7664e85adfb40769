"""``create_access_token``: a management API token for a user (created if missing); the token is the last line."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apikeys import services, tokens


class Command(BaseCommand):
    help = (
        "Create a personal access token for the management API (/api/v1/). Prints 'id=<id> prefix=<prefix>' "
        "and then the token on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--name", default="", help="a label for the token (default: 'CLI token')")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="the token expires after this many days (default: never)",
        )

    def handle(self, *args, username, name, expires_days=None, **options):
        if expires_days is not None and expires_days <= 0:
            raise CommandError("--expires-days: must be a positive number of days")
        user = services.get_or_create_user(username)
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        record, token = tokens.do_create_access_token(
            user=user, name=name or "CLI token", expires_at=expires_at
        )
        self.stdout.write(f"id={record.pk} prefix={record.prefix}")
        self.stdout.write(token)
