from django.core.management.base import BaseCommand

from apikeys.models import ApiKey
from relay.config import enabled_defences


class Command(BaseCommand):
    help = "List relay API keys (never secrets)."

    def add_arguments(self, parser):
        parser.add_argument("--username")

    def handle(self, *args, username=None, **options):
        keys = ApiKey.objects.select_related("user").order_by("created_at")
        if username:
            keys = keys.filter(user__username=username)
        self.stdout.write(
            f"{'ID':>5}  {'PREFIX':<14}{'USER':<16}{'ARCH':<12}{'STATUS':<9}{'DEFENCES':<30}NAME"
        )
        for k in keys:
            status = "revoked" if k.revoked_at else "active"
            defences = ",".join(enabled_defences(k.documents)) or "-"
            self.stdout.write(
                f"{k.pk:>5}  {k.prefix:<14}{k.user.username:<16}{k.arch:<12}{status:<9}{defences:<30}{k.name}"
            )
