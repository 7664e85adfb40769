"""Guardrails (``X-Features`` classifiers and blockers) on what the engine forwards: tool-call arguments, tool
results, and what the quarantined-side LLMs read.

A guardrail that fails is logged and treated as "no verdict" for tool data (the call or result goes on),
and as "blocked" for what a quarantined-side LLM would read (closed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from relay.guardrails import ClassifierRequest, GuardrailOutcome, Guardrails, text_for_classification
from relay.guardrails.memo import ScanMemo, session_memo

from .llm import LLMClient, parsed_reply
from .types import RequestLog


def build_guardrails(config: Mapping[str, Any]) -> Any:
    """The guardrails ``config["features"]`` enables, or None."""
    feats = config.get("features") or {}
    if not (feats.get("classifiers") or feats.get("blockers")):
        return None
    g = Guardrails.from_features(feats.get("classifiers"), feats.get("blockers"))
    return g if g.enabled else None


class ToolDataGuard:
    """Runs ``guardrails`` (``relay.guardrails.Guardrails`` or an object with its API; None: none enabled)."""

    def __init__(self, guardrails: Any, llm: LLMClient, log: RequestLog) -> None:
        self.guardrails = guardrails
        self.llm = llm
        self.log = log
        self._memo: ScanMemo | None = None

    @property
    def enabled(self) -> bool:
        return self.guardrails is not None

    async def scan(self, value: Any, where: str, tool: str, call_id: str | None) -> GuardrailOutcome | None:
        """The guarded value (``relay.guardrails`` scan outcome), or None when a guardrail failed."""
        g = self.guardrails
        try:
            out: GuardrailOutcome = g.scan_deterministic(value, where=where)

            async def ask(req: ClassifierRequest) -> Any:
                c = await self.llm.call(
                    "qllm", req.system_prompt, [{"role": "user", "content": req.user_prompt}], req.json_schema
                )
                parsed = parsed_reply(c)
                return parsed if parsed is not None else c.text

            # LLM classifier verdicts are remembered by content hash in the session's state (the same content,
            # e.g. a force_to_cache hit or a repeated tool result, is classified once).
            if self._memo is None:
                self._memo = session_memo(g)
            for finding in await g.classify(text_for_classification(out.value), ask, self._memo):
                out = out.with_finding(finding)
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
