"""OpenAPI schema additions (drf-spectacular): the error responses every operation can give, in the shape of
``apikeys.api.common`` (a postprocessing hook, so views do not repeat them)."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error response. `errors` names the request field of each problem (null when no field "
    "is to blame) and, for a policy that does not compile, its line and column (else null).",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                    "line": {"type": "integer", "nullable": True},
                    "column": {"type": "integer", "nullable": True},
                },
                "required": ["field", "message", "line", "column"],
            },
        },
    },
    "required": ["detail", "code", "errors"],
}

_DESCRIPTIONS = {
    "400": "Invalid input: `errors` names each field.",
    "401": "No valid access token (`WWW-Authenticate: Bearer`).",
    "404": "No such object, or not yours; or an invalid page.",
    "409": "The object's state does not allow this (e.g. the key is revoked).",
    "422": "No valid policy could be generated.",
    "429": "Throttled: retry after `Retry-After` seconds.",
    "502": "The provider could not be reached.",
    "503": "The database is unavailable: retry after `Retry-After` seconds.",
}

_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"schema": {"type": "string"}}}


def _error(code: str) -> dict:
    response = {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if code in ("429", "503"):
        response["headers"] = _RETRY_AFTER
    if code == "401":
        response["headers"] = _WWW_AUTHENTICATE
    return response


def add_error_responses(result, generator, request, public):
    """Document 400/401/404/429/503 (and the operation's own 409/422/502) on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            codes = ["400", "429", "503"]
            if operation.get("security") != [{}] and path.startswith("/api/v1/"):
                codes.append("401")
            if "{" in path or method == "get":
                codes.append("404")
            for code in codes + [c for c in operation.pop("x-errors", [])]:
                responses.setdefault(code, _error(code))
    return result
