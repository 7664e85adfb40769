"""``create_api_key``: make a key for a user (created if missing); the secret is the last stdout line."""

from django.core.management.base import BaseCommand, CommandError

from apikeys import services
from apikeys.validation import DocumentsInvalid


class Command(BaseCommand):
    help = "Create a relay API key. Prints 'id=<id> prefix=<prefix>' and then the secret on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--arch", required=True, help="single-llm or dual-llm")
        parser.add_argument("--name", default="")
        parser.add_argument("--features", help="X-Features JSON document")
        parser.add_argument("--policy", help="X-Policy JSON document")
        parser.add_argument("--config", help="X-Config JSON document")
        parser.add_argument(
            "--content-logging",
            default="metadata",
            choices=["none", "metadata", "full"],
            help="what the session log keeps of tool content (default: metadata)",
        )

    def handle(
        self, *args, username, arch, name, features, policy, config, content_logging="metadata", **options
    ):
        if arch not in ("single-llm", "dual-llm"):
            raise CommandError(f"--arch: unknown preset {arch!r}; expected single-llm or dual-llm")
        user = services.get_or_create_user(username)
        try:
            key, secret = services.do_create_api_key(
                user=user,
                name=name or f"{arch} key",
                arch=arch,
                features=features,
                policy=policy,
                config=config,
                content_logging=content_logging,
            )
        except DocumentsInvalid as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"id={key.pk} prefix={key.prefix}")
        self.stdout.write(secret)
