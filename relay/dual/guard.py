"""Guardrails (``X-Features`` classifiers and blockers) on what the engine forwards: tool-call arguments, tool
results, and what the quarantined-side LLMs read.

A guardrail that fails is logged and treated as "no verdict" for tool data (the call or result goes on),
and as "blocked" for what a quarantined-side LLM would read (closed).
"""

from __future__ import annotations

import json
from typing import Any

from relay.guardrails import ClassifierRequest, GuardrailOutcome
from relay.guardrails.memo import session_memo
from relay.toolcalls.guard import ToolGuard

from .llm import LLMClient, parsed_reply
from .types import RequestLog


class ToolDataGuard:
    """Runs ``guardrails`` (``relay.guardrails.Guardrails`` or an object with its API; None: none enabled)
    through the scan both architectures share (``relay.toolcalls.guard.ToolGuard.scan_value``), with the
    engine's own failure handling and log events."""

    def __init__(self, guardrails: Any, llm: LLMClient, log: RequestLog) -> None:
        self.guardrails = guardrails
        self.llm = llm
        self.log = log
        self._guard: ToolGuard | None = None

    @property
    def enabled(self) -> bool:
        return self.guardrails is not None

    async def scan(self, value: Any, where: str, tool: str, call_id: str | None) -> GuardrailOutcome | None:
        """The guarded value (``relay.guardrails`` scan outcome), or None when a guardrail failed."""
        try:
            out: GuardrailOutcome = await self._tool_guard().scan_value(value, where)
        except Exception as e:  # noqa: BLE001 - a guardrail bug must not break the turn
            self.log.events.append(
                {
                    "type": "guardrail",
                    "where": where,
                    "tool": tool,
                    "call_id": call_id,
                    "error": f"{type(e).__name__}: {e}",
                }
            )
            return None
        if out.findings or out.blocked:
            self.log.events.append({"type": "guardrail", "tool": tool, "call_id": call_id, **out.to_log()})
        return out

    def _tool_guard(self) -> ToolGuard:
        """The shared scan, made on first use. LLM classifier verdicts are remembered by content hash in the
        session's state (``relay.guardrails.memo``: the same content, e.g. a force_to_cache hit or a repeated
        tool result, is classified once)."""
        if self._guard is None:
            self._guard = ToolGuard(self.guardrails, session_memo(self.guardrails), ask=self._ask)
        return self._guard

    async def _ask(self, req: ClassifierRequest) -> Any:
        """A classifier's question, on the QLLM."""
        c = await self.llm.call(
            "qllm", req.system_prompt, [{"role": "user", "content": req.user_prompt}], req.json_schema
        )
        parsed = parsed_reply(c)
        return parsed if parsed is not None else c.text

    async def llm_input(self, text: str, tool: str) -> str | None:
        """What a quarantined-side LLM (parse_with_ai, verify_hypothesis, the tool-error detector) may see:
        the configured guardrails apply to it as to every message the relay sends to an LLM, whoever
        produced the data (tool results, or context variables the client passed). None when they block it,
        or fail (closed)."""
        if self.guardrails is None:
            return text
        out = await self.scan(text, "tool_result", tool, None)
        if out is None or out.blocked:
            return None
        v = out.value
        return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
