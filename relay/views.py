"""Control API views: thin async functions; the work is in ``relay.lifecycle`` and the engines.

Every view answers in the API's JSON error shape whatever fails (``json_errors``): a database or session store
that went away is a 503 with ``Retry-After``, any other unexpected exception a 500; both name the request id
(also the ``X-Request-ID`` header), under which the traceback is in the server log.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse

from sequrity_site.aio import run_sync
from sequrity_site.logs import current_request_id

from . import routes
from .formats import error_body
from .lifecycle import chain
from .session_store import StoreUnavailable
from .validate_headers import validate_headers

logger = logging.getLogger("relay")


def _api_of(request) -> str:
    path = request.path
    return "messages" if path.endswith("/messages") else "chat"


def unexpected_error_response(request, exc: BaseException) -> JsonResponse:
    """Log ``exc`` with its traceback and the request id; the JSON answer names the id."""
    rid = current_request_id()
    if isinstance(exc, DatabaseError):
        logger.error("database unavailable serving %s %s", request.method, request.path, exc_info=exc)
        status, message = 503, "The relay's database is unavailable; retry later"
    elif isinstance(exc, StoreUnavailable):
        logger.error("session store unavailable serving %s %s", request.method, request.path, exc_info=exc)
        status, message = 503, exc.public_message
    else:
        logger.error("unexpected error serving %s %s", request.method, request.path, exc_info=exc)
        status, message = 500, "Internal error in the relay; the request was not completed"
    resp = JsonResponse(error_body(status, f"{message} (request id {rid})", _api_of(request)), status=status)
    if status == 503:
        resp["Retry-After"] = "5"
    return resp


def json_errors(view):
    @functools.wraps(view)
    async def wrapper(request, *args, **kwargs):
        try:
            return await view(request, *args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the point: nothing escapes as an HTML page
            return unexpected_error_response(request, exc)

    return wrapper


@json_errors
async def index(request):
    return JsonResponse({"service": "sequrity-control", "version": "v1", "routes": routes.all_routes()})


def _database_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _database_ready() -> str:
    """A query on a real table (a SQLite file that became garbage still answers ``SELECT 1``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_migrations")
        cursor.fetchone()
    return "ok"


@json_errors
async def health(request):
    """Liveness: the process answers and reaches its database."""
    try:
        ok = await run_sync(_database_ok)  # the relay's DB threads: a broken connection is replaced
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok" if ok else "unexpected"})


# ------------------------------------------------------------------------------------------ readiness


def _check_cache(alias: str) -> None:
    from django.core.cache import caches

    cache = caches[alias]
    key = f"sequrity:ready:{alias}"
    cache.set(key, "1", timeout=30)
    if cache.get(key) != "1":
        raise RuntimeError(f"cache {alias!r} did not return what was written")


def _check_broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "eager"  # no broker configured: tasks run in-process
    from sequrity_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.READINESS_TIMEOUT)
    return "ok"


def _run_checks() -> dict[str, str]:
    results: dict[str, str] = {}
    checks = {
        "database": _database_ready,
        "broker": _check_broker,
        "cache": lambda: _check_cache("default"),
        "session_store": lambda: _check_cache("relay_sessions"),
    }
    for name, check in checks.items():
        try:
            out = check()
            results[name] = out if isinstance(out, str) else "ok"
        except Exception as exc:  # noqa: BLE001
            results[name] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    return results


@json_errors
async def ready(request):
    """Readiness: the database, the Celery broker and both caches (default, relay sessions) answer."""
    try:
        results = await asyncio.wait_for(run_sync(_run_checks), timeout=settings.READINESS_TIMEOUT * 4)
    except TimeoutError:
        results = {"timeout": f"checks took longer than {settings.READINESS_TIMEOUT * 4:.0f} s"}
    ok = all(v in ("ok", "eager") for v in results.values())
    return JsonResponse(
        {"status": "ready" if ok else "unavailable", "checks": results}, status=200 if ok else 503
    )


# ------------------------------------------------------------------------------------------ API


@json_errors
async def validate_headers_view(request):
    if request.method != "POST":
        return JsonResponse(error_body(405, "Use POST"), status=405)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        return JsonResponse(error_body(400, f"Malformed JSON body: {exc}"), status=400)
    if not isinstance(body, dict):
        return JsonResponse(error_body(400, "Request body must be a JSON object"), status=400)
    return JsonResponse(validate_headers(body))


@json_errors
async def api(request, endpoint_type: str, suffix: str, provider: str | None = None):
    route = routes.resolve(endpoint_type, provider, suffix)
    if route is None:
        return not_found(request)
    if request.method != "POST":
        resp = JsonResponse(
            error_body(405, f"{request.method} is not allowed; use POST", route.api), status=405
        )
        resp["Allow"] = "POST"
        return resp
    return await chain.handle(request, route)


def not_found(request, rest: str = ""):
    return JsonResponse(
        error_body(
            404,
            f"No such Control API route: {request.method} {request.path}. See GET /control/ for the list.",
        ),
        status=404,
    )


def server_error(request, *args, **kwargs):
    """``handler500`` for the whole site: JSON under /control, the 500 page elsewhere (plain text if even that
    fails to render). Views under /control catch their own errors (``json_errors``); this is the last line."""
    rid = current_request_id()
    if request.path == "/control" or request.path.startswith("/control/"):
        return JsonResponse(
            error_body(500, f"Internal error in the relay (request id {rid})", _api_of(request)), status=500
        )
    from django.http import HttpResponseServerError
    from django.template import loader

    try:
        body = loader.get_template("500.html").render({"request_id": rid})
    except Exception:  # noqa: BLE001
        body = f"<h1>Server error</h1><p>Request id {rid}</p>"
    return HttpResponseServerError(body)
