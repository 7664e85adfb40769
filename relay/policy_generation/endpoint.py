"""``POST /control/policy-gen/{provider?}/v1/generate``: the stage that answers it (no session)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from ..formats.model import Usage
from ..lifecycle.call import Call, RelayError
from ..lifecycle.stages import resolve_credentials
from ..providers import complete
from .generator import SYSTEM_PROMPT, GenerateError, generate, parse_request


async def generate_policy(call: Call, request: HttpRequest) -> JsonResponse:
    try:
        req = parse_request(call.body)
    except GenerateError as exc:
        raise RelayError(exc.status, exc.message, "bad_request") from None
    await resolve_credentials(call, request)  # policy generation has no session: nothing is remembered
    provider, model = call.route.provider, call.models[0]

    async def ask(messages: list[dict[str, Any]]) -> tuple[str, Usage]:
        result = await complete(provider, model, call.api_key, system=SYSTEM_PROMPT, messages=messages)
        return result.text, result.usage

    try:
        policy, usage = await generate(req, ask)
    except GenerateError as exc:
        raise RelayError(exc.status, exc.message, "generation_failed") from None
    call.usage = usage
    return JsonResponse({"policies": policy, "usage": usage.as_dict()})
