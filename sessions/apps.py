from django.apps import AppConfig
from django.db.models.signals import post_migrate


def create_cache_tables(sender, using="default", verbosity=1, **kwargs) -> None:
    """``manage.py migrate`` is the only database step: it also creates the tables of the database caches
    (the default cache and the relay's session store, ``relay_sessions``, when they are database caches).
    Idempotent (``createcachetable`` skips existing tables), so every ``migrate`` brings them up to date,
    also after ``CACHE_URL`` changed from Redis to the database."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=max(0, verbosity - 1))


class AgentSessionsConfig(AppConfig):
    """Agent sessions and usage. Labelled ``agent_sessions``: ``sessions`` is Django's own app label."""

    name = "sessions"
    label = "agent_sessions"
    verbose_name = "Agent sessions and usage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import sequrity_site.checks  # noqa: F401  (registers the deployment checks)

        post_migrate.connect(
            create_cache_tables, sender=self, dispatch_uid="agent_sessions.create_cache_tables"
        )
