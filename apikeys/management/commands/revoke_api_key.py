from django.core.management.base import BaseCommand, CommandError

from apikeys import services
from apikeys.models import ApiKey


class Command(BaseCommand):
    help = "Revoke a relay API key by its prefix or id (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's prefix (sq-...) or numeric id")

    def handle(self, *args, key, **options):
        lookup = {"pk": int(key)} if key.isdigit() else {"prefix": key}
        found = ApiKey.objects.filter(**lookup).first()
        if found is None:
            raise CommandError(f"no API key with {'id' if key.isdigit() else 'prefix'} {key!r}")
        changed = services.do_revoke_api_key(key=found)
        self.stdout.write(f"{found.prefix}: {'revoked' if changed else 'already revoked'}")
