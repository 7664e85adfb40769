"""ASGI entry point: ``uvicorn sequrity_site.asgi:application`` serves the dashboard and the Control API.

Requests under ``/control`` go to a lean Django handler (``RelayASGIHandler``): it loads only
``RELAY_MIDDLEWARE`` (the relay authenticates by bearer key and has no use for cookies, CSRF or messages), and
it does not run Django's per-request thread machinery: the ``request_started`` / ``request_finished`` signals
only manage database connections of request threads, and the relay's views are async and reach the database
only through ``sequrity_site.aio`` (long-lived threads that manage their own connections). Sending those
signals costs a new thread per request under ASGI, which capped the relay at ~300 requests/s.
Everything else (dashboard, admin, static files) gets Django's full stack.
A doubled leading slash (``//control/...``, from a client base URL ending in ``/``) is normalised here, and
any other path that normalises to ``/control`` or below (``/./control/x``, ``//control//x``) answers the API's
JSON 404, never the dashboard's HTML one.

Request bodies under ``/control`` are read here, bounded: at most ``RELAY_MAX_BODY_BYTES`` (16 MiB by default,
sized for long LLM histories; a larger body, announced or sent, is a JSON 413 naming the limit) within
``RELAY_BODY_READ_TIMEOUT`` seconds (a client that announces more than it sends gets a JSON 408), both
answered with ``Connection: close``. Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not apply to the relay.

Around both: every HTTP request gets a request id (``X-Request-ID`` response header, in every log record made
while serving it; ``sequrity_site.logs``) and one access log line; an exception that escapes a handler is
logged with its traceback and answered 500 (under ``/control`` in the API's JSON error shape, naming the
request id). ``/metrics`` is answered here too (``sequrity_site.metrics``; off by default).
"""

import asyncio
import io
import json
import logging
import os
import posixpath
import re
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

    async def read_bounded_body(self, scope, receive) -> bytes:
        """The whole request body, or ``BodyRefused`` (413: over ``RELAY_MAX_BODY_BYTES``, 408: not received
        within ``RELAY_BODY_READ_TIMEOUT``). A body announced too large is drained (not kept) before the 413,
        so the client, still sending, reads the answer instead of a reset connection."""
        limit = settings.RELAY_MAX_BODY_BYTES
        try:
            declared = int(_header(scope, b"content-length") or 0)
        except ValueError:
            declared = 0
        chunks: list[bytes] = []
        size = 0
        too_large = declared > limit
        try:
            async with asyncio.timeout(settings.RELAY_BODY_READ_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise RequestAborted()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    more = message.get("more_body", False)
                    too_large = too_large or size > limit
                    if too_large:
                        if size > 4 * limit or not more:  # drained (up to a bound): answer now
                            raise BodyRefused.too_large(limit)
                        continue
                    if chunk:
                        chunks.append(chunk)
                    if not more:
                        return b"".join(chunks)
        except TimeoutError:
            if too_large:
                raise BodyRefused.too_large(limit) from None
            raise BodyRefused(
                408,
                f"The request body was not received within "
                f"{settings.RELAY_BODY_READ_TIMEOUT:g} s (RELAY_BODY_READ_TIMEOUT)",
            ) from None

    async def handle(self, scope, receive, send):
        try:
            body = await self.read_bounded_body(scope, receive)
        except RequestAborted:
            return
        except BodyRefused as exc:
            await _send_json(
                send, exc.status, exc.message, _api_of_path(scope["path"]), [(b"connection", b"close")]
            )
            return
        body_file = io.BytesIO(body)
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is not None:
            request._body = body  # bounded above (RELAY_MAX_BODY_BYTES), not by DATA_UPLOAD_MAX_MEMORY_SIZE
        if request is None:
            body_file.close()
            await self.send_response(
                JsonResponse(
                    relay_error_body(error_response.status_code, "Bad request"),
                    status=error_response.status_code,
                ),
                send,
            )
            return

        async def process_request():
            response = await self.run_get_response(request)
            try:  # noqa: SIM105 - per request: a plain try costs less than contextlib.suppress
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass
            return response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:  # noqa: SIM105 - per request (as above)
                    task.result()
                except RequestAborted:
                    pass
            else:
                task.cancel()
                try:  # noqa: SIM105 - per request (as above)
                    await task
                except asyncio.CancelledError:
                    pass
        if not tasks[1].cancelled() and tasks[1].exception() is None:
            response = tasks[1].result()
            for closer in response._resource_closers:
                closer()
            response.closed = True
        body_file.close()


class BodyRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    @classmethod
    def too_large(cls, limit: int) -> "BodyRefused":
        return cls(
            413,
            f"Request body too large: the relay accepts at most {limit} bytes "
            f"({limit / 1048576:g} MiB, RELAY_MAX_BODY_BYTES)",
        )


relay_application = RelayASGIHandler()
metrics.install()


def relay_error_body(status: int, message: str) -> dict:
    from relay.formats import error_body

    return error_body(status, message)


def _api_of_path(path: str) -> str:
    return "messages" if path.endswith("/messages") else "chat"


def _under_control(path: str) -> bool:
    return path == "/control" or path.startswith("/control/")


def _normalised(path: str) -> str:
    """``path`` with repeated slashes collapsed and dot segments resolved (RFC 3986 §5.2.4)."""
    return posixpath.normpath(re.sub(r"/{2,}", "/", path)) if path else path


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
    control = _under_control(path)
    stray_control = not control and _under_control(_normalised(path))  # /./control/x: the API's 404
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
        if stray_control:
            await _send_json(
                send_with_id,
                404,
                f"No such Control API route: {scope.get('method')} {path}. See GET /control/ for the list.",
                _api_of_path(path),
            )
        elif control:
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
            "request",
            extra={
                # no response started: the client went away first (499, as nginx logs it)
                "method": scope.get("method"),
                "path": path,
                "status": seen["status"] if seen["status"] is not None else 499,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "session_id": seen["session_id"],
                "key_prefix": _key_prefix(scope) if control else None,
            },
        )
        logs.REQUEST_ID.reset(token)


async def _send_json(send, status: int, message: str, api: str = "chat", headers: list | None = None) -> None:
    """Answer in the API's JSON error shape from here (before or instead of the relay's handler)."""
    from relay.formats import error_body

    body = json.dumps(error_body(status, message, api)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_500(send, control: bool, request_id: str) -> None:
    try:
        if control:
            await _send_json(
                send,
                500,
                f"Internal error in the relay; the request was not completed (request id {request_id})",
            )
            return
        body = f"Server error (request id {request_id})\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    except Exception:  # noqa: BLE001 - the client is gone
        pass
