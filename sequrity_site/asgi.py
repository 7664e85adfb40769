"""ASGI entry point: ``uvicorn sequrity_site.asgi:application`` serves the dashboard and the Control API.

Requests under ``/control`` go to a lean Django handler (``RelayASGIHandler``): it loads only
``RELAY_MIDDLEWARE`` (the relay authenticates by bearer key and has no use for cookies, CSRF or messages), and
it does not run Django's per-request thread machinery: the ``request_started`` / ``request_finished`` signals
only manage database connections of request threads, and the relay's views are async and reach the database
only through ``sequrity_site.aio`` (long-lived threads that manage their own connections). Sending those
signals costs a new thread per request under ASGI, which capped the relay at ~300 requests/s.
Everything else (dashboard, admin, static files) gets Django's full stack.
A doubled leading slash (``//control/...``, from a client base URL ending in ``/``) is normalised here.
"""

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402


class RelayASGIHandler(ASGIHandler):
    """Django's ASGI handler, lean: ``settings.RELAY_MIDDLEWARE`` only, no per-request thread context or
    connection-management signals (see the module docstring). Client disconnects still cancel the view."""

    def load_middleware(self, is_async=False):
        saved = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.RELAY_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = saved

    async def __call__(self, scope, receive, send):
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            return

        async def process_request():
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass
            return response

        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), asyncio.create_task(process_request())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if not tasks[1].cancelled() and tasks[1].exception() is None:
            response = tasks[1].result()
            for closer in response._resource_closers:
                closer()
            response.closed = True
        body_file.close()


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
