from django.apps import AppConfig


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = "Control API relay"

    def ready(self) -> None:
        from django.conf import settings

        from .providers import UpstreamSettings, configure

        configure(UpstreamSettings.from_mapping(settings))
