from django.apps import AppConfig


class AgentSessionsConfig(AppConfig):
    """Agent sessions and usage. Labelled ``agent_sessions``: ``sessions`` is Django's own app label."""

    name = "sessions"
    label = "agent_sessions"
    verbose_name = "Agent sessions and usage"
    default_auto_field = "django.db.models.BigAutoField"
