"""The dashboard's "Generate policy" helper: a SQRT policy from a description, for the user to review.

It runs the same machinery as ``/control/policy-gen`` (compiled before it is returned, retried on compile
errors), with the user's provider key when given, else the first enabled server-managed credential.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from relay.policy_generation.generator import SYSTEM_PROMPT, GenerateError, GenerateRequest, generate

from .models import ProviderCredential

PROVIDER_ORDER = ("openrouter", "openai", "anthropic", "sequrity_azure")


@dataclass
class GenerationFailed(Exception):
    message: str

    def __str__(self) -> str:
        return self.message


def _tools(raw: str) -> list[dict]:
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise GenerationFailed(f"tools: invalid JSON ({exc})") from None
    if not isinstance(data, list):
        raise GenerationFailed("tools: expected a JSON array of tool definitions")
    out = []
    for i, tool in enumerate(data):
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise GenerationFailed(f"tools[{i}]: each tool needs a name")
        out.append(
            {
                "name": fn["name"],
                "description": fn.get("description") or "",
                "parameters": fn.get("parameters") or fn.get("input_schema") or {},
            }
        )
    return out


def _credential(provider: str | None, api_key: str | None, model: str | None) -> tuple[str, str, str]:
    from . import crypto

    if api_key:
        if not provider or not model:
            raise GenerationFailed("With your own provider key, choose the provider and the model.")
        return provider, api_key, model
    creds = {c.provider: c for c in ProviderCredential.objects.filter(enabled=True)}
    for name in [provider] if provider else PROVIDER_ORDER:
        cred = creds.get(name)
        if cred and cred.allowed_models:
            chosen = model if model in cred.allowed_models else cred.allowed_models[0]
            return name, crypto.decrypt(cred.encrypted_api_key), chosen
    raise GenerationFailed(
        "No server-managed provider credential is configured (an operator adds one in the "
        "admin); or enter your own provider key."
    )


def do_generate_policy(
    *,
    description: str,
    tools_json: str = "",
    provider: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> str:
    if not description.strip():
        raise GenerationFailed("description: describe what the policy should allow or deny")
    tools = _tools(tools_json)
    provider, key, model = _credential(provider or None, api_key or None, model or None)
    from relay.providers import call_from_sync_code, complete

    async def ask(messages):
        result = await complete(provider, model, key, system=SYSTEM_PROMPT, messages=messages)
        return result.text, result.usage

    req = GenerateRequest(type="oai_chat_completion", model=model, description=description, tools=tools)
    try:
        policy, _ = call_from_sync_code(generate, req, ask)
    except GenerateError as exc:
        raise GenerationFailed(exc.message) from None
    except Exception as exc:  # noqa: BLE001 - upstream failures are shown to the user, not raised
        raise GenerationFailed(f"The policy model could not be reached: {exc}") from None
    return policy
