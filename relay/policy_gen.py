"""``POST /control/policy-gen/{provider?}/v1/generate``: the Django side of ``relay.policygen``."""

from __future__ import annotations

from django.http import JsonResponse

from .pipeline import Call, RelayError, resolve_credentials
from .policygen import SYSTEM_PROMPT, GenerateError, generate, parse_request
from .providers import complete


async def handle_generate(call: Call, request) -> JsonResponse:
    try:
        req = parse_request(call.body)
    except GenerateError as exc:
        raise RelayError(exc.status, exc.message, "bad_request") from None
    call.state = {}  # policy generation has no session (§13): nothing is stored
    await resolve_credentials(call, request)
    provider, model = call.route.provider, call.models[0]

    async def ask(messages):
        result = await complete(provider, model, call.api_key, system=SYSTEM_PROMPT, messages=messages)
        return result.text, result.usage

    try:
        policy, usage = await generate(req, ask)
    except GenerateError as exc:
        raise RelayError(exc.status, exc.message, "generation_failed") from None
    finally:
        call.state = None
    call.usage = usage
    return JsonResponse({"policies": policy, "usage": usage.as_dict()})
