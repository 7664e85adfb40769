"""ASGI entry point: ``uvicorn sequrity_site.asgi:application`` serves the dashboard and the Control API.

Requests under ``/control`` go to a second Django handler that loads only ``RELAY_MIDDLEWARE``: the relay
authenticates by bearer key and has no use for cookies, CSRF or messages, and each sync middleware would cost
a thread hop on the hot path. Everything else (dashboard, admin, static files) gets the full stack.
A doubled leading slash (``//control/...``, from a client base URL ending in ``/``) is normalised here.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402


class RelayASGIHandler(ASGIHandler):
    """A Django ASGI handler whose middleware chain is ``settings.RELAY_MIDDLEWARE``."""

    def load_middleware(self, is_async=False):
        saved = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.RELAY_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = saved


relay_application = RelayASGIHandler()


async def application(scope, receive, send):
    if scope["type"] == "http":
        path = scope["path"]
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
            scope = dict(scope, path=path, raw_path=path.encode())
        if path == "/control" or path.startswith("/control/"):
            return await relay_application(scope, receive, send)
    return await django_application(scope, receive, send)
