"""What every management API view shares: bearer access-token authentication, the JSON error shape,
pagination and throttles.

Errors, whatever fails, are one shape::

    {
        "detail": "policy: codes.code: line 2, column 9: ...",
        "code": "invalid",
        "errors": [
            {"field": "policy", "message": "codes.code: line 2, column 9: ...", "line": 2, "column": 9}
        ],
    }

``errors`` names the request field of each problem (``null`` when none is to blame) and, for a policy that
does not compile, its line and column. 401 without a valid token (``WWW-Authenticate: Bearer``), 404 for an
object that does not exist *or is not the caller's*, 429 with ``Retry-After`` when a client is throttled.
"""

from __future__ import annotations

import logging
import math
import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from apikeys import tokens
from apikeys.validation import DocumentsInvalid

logger = logging.getLogger("apikeys.api")

# --- authentication ------------------------------------------------------------------------------------------


class AccessTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer sqat-...``: a personal access token (``apikeys.tokens``). Relay keys (``sq-``)
    are refused with a message saying so."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Bearer <access token>'."
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid access token.") from None
        if token.startswith("sq-"):
            raise exceptions.AuthenticationFailed(
                "This is a relay key: the management API needs a personal access token (sqat-...)."
            )
        record = tokens.authenticate(token)
        if record is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked access token.")
        return record.user, record

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.api.common.AccessTokenAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sqat-…",
            "description": "A personal access token (dashboard → API tokens, or `manage.py create_access_token`).",
        }


# --- throttles ------------------------------------------------------------------------------------------------


class _RateFromSettings:
    """Rates read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` per request (so settings overrides apply)."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_RateFromSettings, UserRateThrottle):
    """Requests per token owner (``api_user``)."""

    scope = "api_user"


class AnonThrottle(_RateFromSettings, AnonRateThrottle):
    """Requests without a valid token, per client address (``api_anon``): the public schema and docs, and
    failed authentications (counted by :meth:`ApiViewMixin.handle_exception`), against token guessing."""

    scope = "api_anon"


class GenerateThrottle(_RateFromSettings, SimpleRateThrottle):
    """Policy generations per user (``api_generate``): each one costs LLM calls."""

    scope = "api_generate"

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


# --- errors ---------------------------------------------------------------------------------------------------


class FieldErrors(exceptions.APIException):
    """A 400 (or another status) with structured ``errors`` items (``field``, ``message``, ``line``, ``column``)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid input."
    default_code = "invalid"

    def __init__(self, errors: list[dict], *, status_code: int | None = None, code: str | None = None):
        self.errors = [
            error_item(e.get("field"), e.get("message", ""), e.get("line"), e.get("column")) for e in errors
        ]
        if status_code:
            self.status_code = status_code
        super().__init__(summary(self.errors) or self.default_detail, code or self.default_code)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's state does not allow this."
    default_code = "conflict"


class UpstreamFailed(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The upstream provider could not be reached."
    default_code = "upstream_error"


def error_item(field, message, line=None, column=None) -> dict:
    return {"field": field or None, "message": str(message), "line": line, "column": column}


def summary(errors: list[dict]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)


_LINE_COLUMN = re.compile(r"\bline (\d+), column (\d+): ")


def message_position(message: str) -> tuple[int | None, int | None]:
    """Line and column of a policy compiler message (``relay.sqrt.PolicyCompileError``'s sentence)."""
    match = _LINE_COLUMN.search(message)
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _flatten(data, path: str = ""):
    if isinstance(data, dict):
        for name, value in data.items():
            name = "" if name in (api_settings.NON_FIELD_ERRORS_KEY, "non_field_errors") else str(name)
            yield from _flatten(value, f"{path}.{name}" if path and name else (path or name))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _flatten(value, f"{path}[{i}]" if isinstance(value, dict | list) else path)
    else:
        yield path, str(data)


def exception_handler(exc, context):
    """DRF's exception handler, with every error in the shape of the module docstring."""
    from rest_framework.views import set_rollback  # not at import: rest_framework.views imports this module

    headers = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or ("Not found.",)))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        if isinstance(exc, FieldErrors):
            errors = exc.errors
            detail, code = str(exc.detail), getattr(exc.detail, "code", None) or exc.default_code
        elif isinstance(exc.detail, dict | list):
            errors = [error_item(field, message) for field, message in _flatten(exc.detail)]
            detail, code = summary(errors) or "Invalid input.", "invalid"
        else:
            errors = []
            detail, code = str(exc.detail), getattr(exc.detail, "code", None) or exc.default_code
        status_code = exc.status_code
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.exception("database unavailable")
        status_code, headers["Retry-After"] = 503, "5"
        detail, code, errors = "The database is unavailable; try again shortly.", "unavailable", []
    else:  # logged with its traceback (and the request id), answered in the API's shape
        logger.exception("management API error")
        status_code, detail, code, errors = 500, "Internal server error.", "server_error", []
    set_rollback()
    return Response(
        {"detail": detail, "code": str(code), "errors": errors}, status=status_code, headers=headers
    )


REVOKED = "This key is revoked; its configuration can no longer be changed."


def documents_invalid(exc: DocumentsInvalid) -> FieldErrors:
    """The validation's errors as the API's: the request field, the message (naming the document's own field
    path), and for a policy that does not compile its line and column."""
    items = []
    for doc, messages in exc.errors.items():
        for message in messages:
            line, column = message_position(message) if doc == "policy" else (None, None)
            items.append(
                {
                    "field": doc if doc in ("features", "policy", "config", "arch") else None,
                    "message": message,
                    "line": line,
                    "column": column,
                }
            )
    return FieldErrors(items)


# --- views ----------------------------------------------------------------------------------------------------


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ApiViewMixin:
    # For every management API view: failed authentications count against the client's ``api_anon`` rate, so
    # guessing tokens ends in 429s. (A comment, not a docstring: the schema would show it as every view's.)

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            throttle = AnonThrottle()
            if throttle.rate and not throttle.allow_request(self.request, self):
                exc = exceptions.Throttled(throttle.wait())
        return super().handle_exception(exc)


@csrf_exempt
def not_found(request, *args, **kwargs):
    """The last route under /api/. A path missing only its trailing slash is served by the view it names (no
    redirect: a POST would not follow one); anything else is the API's JSON 404, not the dashboard's page."""
    if not request.path_info.endswith("/"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            return match.func(request, *match.args, **match.kwargs)
    return JsonResponse({"detail": "Not found.", "code": "not_found", "errors": []}, status=404)


def positive_int(value) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None
