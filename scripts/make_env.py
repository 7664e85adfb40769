"""Print a .env file with fresh random secrets (needs no Django settings, so it works before any exist).

    python scripts/make_env.py                    development: DEBUG on (what `make` writes to .env)
    python scripts/make_env.py --secrets          only a fresh SECRET_KEY and FIELD_ENCRYPTION_KEY
    python scripts/make_env.py --production relay.example.com [--workers 4]
                                                  a production .env: DEBUG off, TLS at a proxy (secure
                                                  cookies, HSTS, X-Forwarded-Proto), PostgreSQL,
                                                  RabbitMQ and Redis URLs to fill in, metrics behind a token

FIELD_ENCRYPTION_KEY takes several comma-separated keys, newest first: to rotate, put a new key in front
and run `manage.py shell -c "from apikeys.services import do_rotate_provider_credentials as r; r()"`.
"""

from __future__ import annotations

import argparse
import secrets

from cryptography.fernet import Fernet


def secret_lines() -> list[str]:
    return [
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}",
    ]


def production_lines(host: str, workers: int) -> list[str]:
    return [
        "# Sequrity Control, production (see the README, 'Production'). Keep this file secret.",
        "DEBUG=0",
        *secret_lines(),
        f"ALLOWED_HOSTS={host}",
        f"CSRF_TRUSTED_ORIGINS=https://{host}",
        "# TLS ends at the reverse proxy, which must set X-Forwarded-Proto (and strip it from clients).",
        "SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto",
        "SECURE_SSL_REDIRECT=1",
        "SESSION_COOKIE_SECURE=1",
        "CSRF_COOKIE_SECURE=1",
        "SECURE_HSTS_SECONDS=31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS=1",
        "SECURE_HSTS_PRELOAD=1",
        "DATABASE_URL=postgres://sequrity:CHANGE-ME@127.0.0.1:5432/sequrity",
        "# RabbitMQ is the broker (acknowledges tasks natively: a dead worker's task is redelivered at once);",
        "# Redis the cache and session store. See the README, 'Nothing is lost'.",
        "CELERY_BROKER_URL=amqp://sequrity:CHANGE-ME@127.0.0.1:5672/sequrity",
        "CACHE_URL=redis://127.0.0.1:6379/1",
        "# The production command (honcho, Procfile): uvicorn on HOST:PORT with WEB_CONCURRENCY workers.",
        "HOST=127.0.0.1",
        "PORT=8000",
        f"WEB_CONCURRENCY={workers}",
        "LOG_FORMAT=json",
        f"METRICS_TOKEN={secrets.token_urlsafe(24)}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--secrets", action="store_true", help="print only SECRET_KEY and FIELD_ENCRYPTION_KEY"
    )
    group.add_argument("--production", metavar="HOST", help="print a production .env for this host name")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (production)")
    args = parser.parse_args(argv)
    if args.secrets:
        lines = secret_lines()
    elif args.production:
        lines = production_lines(args.production, args.workers)
    else:
        lines = ["DEBUG=1", *secret_lines()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
