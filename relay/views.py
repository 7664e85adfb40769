"""Control API views: thin async functions; the work is in ``relay.pipeline`` and the engines."""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import JsonResponse

from . import pipeline, routes
from .formats import error_body
from .validate_headers import validate_headers


async def index(request):
    return JsonResponse({"service": "sequrity-control", "version": "v1", "routes": routes.all_routes()})


def _database_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


async def health(request):
    try:
        ok = await sync_to_async(_database_ok)()
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok" if ok else "unexpected"})


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


async def api(request, endpoint_type: str, suffix: str, provider: str | None = None):
    route = routes.resolve(endpoint_type, provider, suffix)
    if route is None:
        return not_found(request)
    if request.method != "POST":
        resp = JsonResponse(error_body(405, f"{request.method} is not allowed; use POST", route.api), status=405)
        resp["Allow"] = "POST"
        return resp
    return await pipeline.handle(request, route)


def not_found(request, rest: str = ""):
    return JsonResponse(
        error_body(404, f"No such Control API route: {request.method} {request.path}. See GET /control/ for the list."),
        status=404,
    )
