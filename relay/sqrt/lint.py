"""Linter-style checking of policy files (the core of ``manage.py sqrt_check``); framework-free."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from .errors import PolicyCompileError
from .policy import compile_policy


def language_for(path: str, language: str | None) -> str:
    if language:
        return language
    return "cedar" if path.lower().endswith(".cedar") else "sqrt"


def check_text(text: str, language: str = "sqrt") -> PolicyCompileError | None:
    try:
        compile_policy(text, language)
    except PolicyCompileError as exc:
        return exc
    return None


def lint_files(
    paths: Iterable[str],
    out: TextIO | None = None,
    *,
    language: str | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Print ``FILE: ok`` or ``FILE:LINE:COL: message`` per file (``-`` = standard input).

    Returns the number of files with errors (unreadable files count as errors).
    """
    out = out or sys.stdout
    failures = 0
    for path in paths:
        try:
            if path == "-":
                text = (stdin or sys.stdin).read()
            else:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            failures += 1
            out.write(f"{path}: cannot read file: {exc}\n")
            continue
        err = check_text(text, language_for(path, language))
        if err is None:
            out.write(f"{path}: ok\n")
        else:
            failures += 1
            out.write(f"{path}:{err.line}:{err.column}: {err.message}\n")
    return failures


def main(argv: list[str] | None = None) -> int:
    """``python -m relay.sqrt.lint FILE...`` (same output as the management command)."""
    import argparse

    parser = argparse.ArgumentParser(description="Check SQRT (or Cedar) policy files.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy files; - reads standard input")
    parser.add_argument("--language", choices=("sqrt", "cedar"), default=None)
    ns = parser.parse_args(argv)
    return 1 if lint_files(ns.files, language=ns.language) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
