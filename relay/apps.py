import sys

from django.apps import AppConfig


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = "Control API relay"

    def ready(self) -> None:
        from django.conf import settings

        from .interpreter.pool import PoolRunner, set_runner
        from .providers import UpstreamSettings, configure

        configure(UpstreamSettings.from_mapping(settings))

        # Dual-LLM programs run in worker processes with a hard time and memory bound, never on the event loop.
        workers = int(getattr(settings, "RELAY_PROGRAM_WORKERS", 2))
        if workers > 0:
            runner = PoolRunner(
                workers,
                timeout=float(getattr(settings, "RELAY_PROGRAM_TIMEOUT", 0) or 0) or None,
                memory_mb=getattr(settings, "RELAY_PROGRAM_MEMORY_MB", 1024),
            )
            set_runner(runner).close()
            if "sequrity_site.asgi" in sys.modules:
                # This process is loading the ASGI app (uvicorn & co.): start the workers now, in the background,
                # so that the first request does not wait for them. Elsewhere (management commands, Celery,
                # tests) the pool starts on first use.
                runner.prewarm()
