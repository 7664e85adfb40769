"""ASGI entry point: ``uvicorn sequrity_site.asgi:application`` serves the dashboard and the Control API.

Requests under ``/control`` go to a lean Django handler (``RelayASGIHandler``): it loads only
``RELAY_MIDDLEWARE`` (the relay authenticates by bearer key and has no use for cookies, CSRF or messages), and
it does not run Django's per-request thread machinery: the ``request_started`` / ``request_finished`` signals
only manage database connections of request threads, and the relay's views are async and reach the database
only through ``sequrity_site.aio`` (long-lived threads that manage their own connections). Sending those
signals costs a new thread per request under ASGI, which capped the relay at ~300 requests/s.
Everything else (dashboard, admin, static files) gets Django's full stack.
A doubled leading slash (``//control/...``, from a client base URL ending in ``/``) is normalised here.

Around both: every HTTP request gets a request id (``X-Request-ID`` response header, in every log record made
while serving it; ``sequrity_site.logs``) and one access log line; an exception that escapes a handler is
logged with its traceback and answered 500 (under ``/control`` in the API's JSON error shape, naming the
request id). ``/metrics`` is answered here too (``sequrity_site.metrics``; off by default).
"""

import asyncio
import json
import logging
import os
import time

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402

from sequrity_site import logs, metrics  # noqa: E402

logger = logging.getLogger("sequrity_site.asgi")


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
            await self.send_response(JsonResponse(relay_error_body(error_response.status_code, "Bad request"),
                                                  status=error_response.status_code), send)
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
metrics.install()


def relay_error_body(status: int, message: str) -> dict:
    from relay.formats import error_body

    return error_body(status, message)


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def _key_prefix(scope) -> str | None:
    """The non-secret prefix of a bearer Sequrity key (what the dashboard lists), for the access log."""
    scheme, _, token = _header(scope, b"authorization").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token.startswith("sq-") and len(token) >= 40:
        return token[:12]
    return None


async def application(scope, receive, send):
    if scope["type"] != "http":
        return await django_application(scope, receive, send)
    path = scope["path"]
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
        scope = dict(scope, path=path, raw_path=path.encode())
    if path == "/metrics":
        return await metrics.asgi_endpoint(scope, receive, send)
    control = path == "/control" or path.startswith("/control/")
    request_id = logs.new_request_id(_header(scope, b"x-request-id"))
    token = logs.REQUEST_ID.set(request_id)
    started = time.perf_counter()
    seen: dict = {"status": None, "session_id": None, "done": False}
    rid_header = (b"x-request-id", request_id.encode())

    async def send_with_id(message):
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
            for key, value in headers:
                if key.lower() == b"x-session-id":
                    seen["session_id"] = value.decode("latin-1")
            seen["status"] = message["status"]
            message = {**message, "headers": [*headers, rid_header]}
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            seen["done"] = True
        await send(message)

    try:
        if control:
            await relay_application(scope, receive, send_with_id)
        else:
            await django_application(scope, receive, send_with_id)
    except Exception:
        logger.exception("unhandled error serving %s %s", scope.get("method"), path)
        if seen["status"] is None:
            await _send_500(send_with_id, control, request_id)
        else:
            seen["status"] = seen["status"] if seen["done"] else 500
    finally:
        logs.access_logger.info(
            "request", extra={
                "method": scope.get("method"), "path": path, "status": seen["status"],
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "session_id": seen["session_id"], "key_prefix": _key_prefix(scope) if control else None,
            })
        logs.REQUEST_ID.reset(token)


async def _send_500(send, control: bool, request_id: str) -> None:
    if control:
        body = json.dumps(relay_error_body(
            500, f"Internal error in the relay; the request was not completed (request id {request_id})")).encode()
        ctype = b"application/json"
    else:
        body = f"Server error (request id {request_id})\n".encode()
        ctype = b"text/plain; charset=utf-8"
    try:
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    except Exception:  # noqa: BLE001 - the client is gone
        pass
