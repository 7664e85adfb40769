"""System checks of the deployment (registered by the sessions app; run by ``manage.py check`` and at startup)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.staticfiles, deploy=True)
def static_files_collected(app_configs, **kwargs):
    if settings.DEBUG or getattr(settings, "STATIC_COLLECTED", True):
        return []
    return [
        Warning(
            "Static files are not collected: pages use unhashed files served from the source directories.",
            hint="Run `manage.py collectstatic --noinput` (part of `make prod`) before starting the server.",
            id="sequrity.W001",
        )
    ]


@register(Tags.security, deploy=True)
def metrics_protected(app_configs, **kwargs):
    if getattr(settings, "METRICS_ENABLED", False) and not getattr(settings, "METRICS_TOKEN", ""):
        return [
            Warning(
                "/metrics is enabled without METRICS_TOKEN: anyone who reaches the server can read it.",
                hint="Set METRICS_TOKEN (scrapers send `Authorization: Bearer <token>`), or keep /metrics "
                "reachable only from the monitoring network.",
                id="sequrity.W002",
            )
        ]
    return []
