"""The engine's LLM calls: every call is logged with its usage and latency, and a failing call becomes an
:class:`LLMFailure` (the caller decides whether that ends the turn or falls back)."""

from __future__ import annotations

import json
from time import perf_counter
from typing import Any

from .extract import extract_program
from .types import CompletionLike, LLMCaller, LLMFailure, RequestLog


def parsed_reply(c: Any) -> Any:
    """The structured answer of a reply: its ``parsed`` value, else its text read as JSON (inside a fence,
    or the outermost ``{...}``), else None."""
    parsed = getattr(c, "parsed", None)
    if parsed is not None:
        return parsed
    text = (getattr(c, "text", "") or "").strip()
    if text.startswith("```"):
        text = extract_program(text).strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                return None
    return None


class LLMClient:
    """Calls the shell's :class:`LLMCaller` for one role and logs the call in the request's log."""

    def __init__(self, caller: LLMCaller, models: tuple[str, str], log: RequestLog) -> None:
        self.caller = caller
        self.models = models  # (planning model, quarantined model): for the log
        self.log = log

    async def call(
        self,
        role: str,
        system: str,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        **options: Any,
    ) -> CompletionLike:
        t0 = perf_counter()
        try:
            c = await self.caller(role, system=system, messages=messages, json_schema=json_schema, **options)
        except Exception as e:  # noqa: BLE001 - any provider failure becomes an llm_error answer
            self.log.llm_calls.append(
                {
                    "role": role,
                    "model": self.model(role),
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "latency_ms": round((perf_counter() - t0) * 1000, 1),
                    "error": str(e)[:500],
                }
            )
            raise LLMFailure(role, e) from None
        usage = getattr(c, "usage", None)
        self.log.usage.add(usage)
        self.log.llm_calls.append(
            {
                "role": role,
                "model": self.model(role),
                "prompt_tokens": getattr(usage, "prompt_tokens", 0) if usage else 0,
                "completion_tokens": getattr(usage, "completion_tokens", 0) if usage else 0,
                "latency_ms": round((perf_counter() - t0) * 1000, 1),
            }
        )
        return c

    def model(self, role: str) -> str:
        return self.models[1] if role == "qllm" else self.models[0]
