"""JSON endpoints of the Configure page's policy editor: live diagnostics and the completion vocabulary.

Both answer only the key's owner (404 otherwise) and a signed-out browser gets a JSON 401, not the login
page, since the editor calls them with ``fetch``. Neither saves anything.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from relay.sqrt.diagnostics import MAX_POLICY_CHARS, diagnose
from relay.sqrt.policy import LANGUAGES

from .models import ApiKey

VOCABULARY_EVENTS = 2000  # the key's most recent recorded tool calls that completion learns names from
VOCABULARY_TOOLS = 200
VOCABULARY_ARGS = 50


def _error(message: str, field: str | None = None, status: int = 400) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def _owned_key(request, pk: int) -> ApiKey | JsonResponse:
    if not request.user.is_authenticated:
        return _error("Sign in to use the policy editor.", status=401)
    return get_object_or_404(ApiKey, pk=pk, user=request.user)


def _payload(request) -> dict:
    """The request's fields, from a JSON body or a form body."""
    if (request.content_type or "").startswith("application/json"):
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ValueError("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ValueError("The body must be a JSON object with `code` and `language`.")
        return data
    return request.POST.dict()


@never_cache
@require_POST
def policy_diagnostics(request, pk: int):
    """``{"valid": bool, "diagnostics": [...]}`` for the posted ``code`` in ``language`` (sqrt or cedar)."""
    key = _owned_key(request, pk)
    if isinstance(key, JsonResponse):
        return key
    try:
        data = _payload(request)
    except ValueError as exc:
        return _error(str(exc), "body")
    code = data.get("code", "")
    language = data.get("language") or "sqrt"
    if not isinstance(code, str):
        return _error("`code` must be text.", "code")
    if len(code) > MAX_POLICY_CHARS:
        return _error(f"`code` is too long ({len(code)} characters; at most {MAX_POLICY_CHARS}).", "code")
    if not isinstance(language, str) or language.strip().lower() not in LANGUAGES:
        return _error("`language` must be 'sqrt' or 'cedar'.", "language")
    found = diagnose(code, language.strip().lower())
    return JsonResponse({"valid": not found, "diagnostics": [d.as_dict() for d in found]})


@never_cache
@require_GET
def policy_vocabulary(request, pk: int):
    """The tool names and, per tool, the argument names the key's recorded sessions have used (most frequent
    first), for the editor's completion."""
    key = _owned_key(request, pk)
    if isinstance(key, JsonResponse):
        return key
    return JsonResponse({"tools": recorded_tool_vocabulary(key)})


def recorded_tool_vocabulary(key: ApiKey) -> list[dict]:
    """``[{"name": tool, "args": [names...], "calls": n}, ...]`` from the key's latest recorded tool calls."""
    from collections import Counter

    from sessions.models import SessionEvent

    rows = (
        SessionEvent.objects.filter(session__api_key=key, type="tool_call")
        .order_by("-created_at")
        .values_list("data", flat=True)[:VOCABULARY_EVENTS]
    )
    calls: Counter[str] = Counter()
    args: dict[str, Counter[str]] = {}
    for data in rows:
        tool = data.get("tool") if isinstance(data, dict) else None
        if not isinstance(tool, str) or not tool:
            continue
        calls[tool] += 1
        recorded = data.get("args")
        names = args.setdefault(tool, Counter())
        if isinstance(recorded, dict):
            names.update(name for name in recorded if isinstance(name, str))
    return [
        {"name": tool, "calls": count, "args": [name for name, _ in args[tool].most_common(VOCABULARY_ARGS)]}
        for tool, count in calls.most_common(VOCABULARY_TOOLS)
    ]
