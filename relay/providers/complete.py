"""The server's own LLM calls (planner, quarantined LLM, classifiers, policy generation).

``complete()`` sends simple text conversations to any provider and optionally forces structured output:
OpenAI-style providers get ``response_format: json_schema`` (strict), Anthropic a forced tool whose input is
the answer. A schema whose root is not an object is wrapped as ``{"value": <schema>}`` and unwrapped again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..formats import chat as _chat
from ..formats import messages as _messages
from ..formats._json import dumps_str, loads
from ..formats.model import Usage
from .client import post_json
from .settings import UpstreamSettings

ANTHROPIC_DEFAULT_MAX_TOKENS = 8192
_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}


@dataclass(slots=True)
class Completion:
    text: str
    parsed: Any | None
    usage: Usage
    raw: dict[str, Any]


def _wrap(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    if schema.get("type") == "object":
        return schema, False
    return {
        "type": "object",
        "properties": {"value": schema},
        "required": ["value"],
        "additionalProperties": False,
    }, True


async def complete(
    provider: str,
    model: str,
    api_key: str | None,
    *,
    system: str | None,
    messages: list[dict[str, Any]],
    json_schema: dict[str, Any] | None = None,
    schema_name: str = "output",
    params: dict[str, Any] | None = None,
    strict: bool = True,
    settings: UpstreamSettings | None = None,
    headers: Mapping[str, str] | None = None,
) -> Completion:
    """One completion. ``messages`` are ``{"role": "user"|"assistant"|"system", "content": str}``.

    With ``json_schema``, ``parsed`` is the decoded structured answer (None if the model did not produce valid
    JSON — callers decide whether to retry). ``params`` are provider-native extras (see
    :func:`generation_params`). Raises ``UpstreamError``.
    """
    wrapped = False
    if provider == "anthropic":
        sys_parts = [system] if system else []
        conv = []
        for m in messages:
            if m.get("role") == "system":
                sys_parts.append(str(m.get("content") or ""))
            else:
                conv.append({"role": m.get("role", "user"), "content": m.get("content") or ""})
        body: dict[str, Any] = {"model": model, "max_tokens": ANTHROPIC_DEFAULT_MAX_TOKENS, "messages": conv}
        if sys_parts:
            body["system"] = "\n\n".join(sys_parts)
        if params:
            body.update(params)
        if json_schema is not None:
            schema, wrapped = _wrap(json_schema)
            body["tools"] = [
                {
                    "name": schema_name,
                    "description": "Return your answer by calling this tool.",
                    "input_schema": schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": schema_name}
            body.pop("thinking", None)  # Anthropic rejects a forced tool together with extended thinking
        raw = await post_json("anthropic", "messages", body, api_key, settings=settings, headers=headers)
        text = _messages.extract_text(raw)
        parsed = None
        if json_schema is not None:
            for block in raw.get("content") or []:
                if (
                    isinstance(block, dict)
                    and block.get("type") == "tool_use"
                    and block.get("name") == schema_name
                ):
                    parsed = block.get("input")
                    break
            if parsed is None:
                parsed = _parse_json(text)
            if parsed is not None and not text:
                text = dumps_str(parsed)
        usage = _messages.extract_usage(raw)
    else:
        conv = ([{"role": "system", "content": system}] if system else []) + list(messages)
        body = {"model": model, "messages": conv}
        if params:
            body.update(params)
        if json_schema is not None:
            schema, wrapped = _wrap(json_schema)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": strict},
            }
        raw = await post_json(provider, "chat", body, api_key, settings=settings, headers=headers)
        text = _chat.extract_text(raw)
        parsed = _parse_json(text) if json_schema is not None else None
        usage = _chat.extract_usage(raw)
    if wrapped and isinstance(parsed, dict):
        parsed = parsed.get("value")
    return Completion(text=text, parsed=parsed, usage=usage, raw=raw)


def _parse_json(text: str) -> Any | None:
    if not text:
        return None
    t = text.strip()
    if t.startswith("```"):  # tolerate a fenced block
        t = t.strip("`")
        t = t[4:] if t.lower().startswith("json") else t
    try:
        return loads(t)
    except ValueError:
        return None


def generation_params(provider: str, llm: Mapping[str, Any] | None) -> dict[str, Any]:
    """X-Config ``llm.<role>`` generation config -> provider-native request params."""
    if not llm:
        return {}
    reasoning = llm.get("reasoning") if isinstance(llm.get("reasoning"), Mapping) else None
    if provider == "anthropic":
        return _anthropic_params(llm, reasoning)
    out: dict[str, Any] = {}
    for key in (
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "presence_penalty",
        "seed",
        "temperature",
        "top_p",
    ):
        if llm.get(key) is not None:
            out[key] = llm[key]
    if reasoning:
        if provider == "openrouter":
            if not reasoning.get("enabled", True):
                out["reasoning"] = {"enabled": False}
            elif reasoning.get("budget"):
                out["reasoning"] = {"max_tokens": int(reasoning["budget"])}
            elif reasoning.get("effort"):
                out["reasoning"] = {"effort": reasoning["effort"]}
        elif reasoning.get("enabled", True) and reasoning.get("effort"):
            out["reasoning_effort"] = reasoning["effort"]
    return out


def _anthropic_params(llm: Mapping[str, Any], reasoning: Mapping[str, Any] | None) -> dict[str, Any]:
    """Anthropic's names: ``max_tokens``, and reasoning as ``thinking`` with a token budget."""
    out: dict[str, Any] = {}
    for key in ("temperature", "top_p"):
        if llm.get(key) is not None:
            out[key] = llm[key]
    if llm.get("max_completion_tokens") is not None:
        out["max_tokens"] = llm["max_completion_tokens"]
    if reasoning and reasoning.get("enabled", True):
        if reasoning.get("adaptive"):
            out["thinking"] = {"type": "adaptive"}
        elif reasoning.get("budget") or reasoning.get("effort"):
            budget = reasoning.get("budget") or _EFFORT_BUDGET.get(str(reasoning.get("effort")), 8192)
            budget = max(1024, int(budget))
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if out.get("max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS) <= budget:
                out["max_tokens"] = budget + 4096
            out.pop("temperature", None)  # thinking requires the default temperature
            out.pop("top_p", None)
    return out
