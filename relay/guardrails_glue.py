"""Guardrails in single-LLM sessions (``relay.guardrails`` wired to the session's LLM and log).

Tool results the client sends: PII redacted and URLs/paths masked before the model sees them, LLM
classifiers (toxicity, healthcare, finance) run on the session's model; a blocking hit replaces the result
with a notice. Proposed tool calls: arguments scanned the same way; a blocked call is refused, a redacted
one reaches the client redacted. Every finding becomes a tag of the value's metadata, so SQRT policies can
act on it (``body.tags overlaps {"pii"}``, or ``-> session @tags |= @result.tags``), and is logged with the
session for the inspector.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .formats.model import Usage
from .meta import DEFAULT_META, Meta


@dataclass
class Scan:
    text: str
    value: Any
    tags: frozenset = frozenset()
    block_reason: str | None = None

    @property
    def meta(self) -> Meta:
        return DEFAULT_META.with_tags(*self.tags) if self.tags else DEFAULT_META


@dataclass
class SessionGuardrails:
    scanner: Any = None
    pending_argument_rewrites: dict[str, dict] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    @classmethod
    def for_state(cls, state: dict) -> SessionGuardrails:
        features = state["config"]["features"]
        if not features["classifiers"] and not features["blockers"]:
            return cls()
        from .guardrails import Guardrails

        return cls(Guardrails.from_features(features["classifiers"], features["blockers"]))

    def _log(self, call, outcome, where: str) -> None:
        from .pipeline import session_event

        for f in outcome.findings:
            session_event(call, "guardrail", guardrail=f.guardrail, action=f.action, detail=f.detail, where=where)

    async def _scan(self, call, value: Any, where: str):
        """Deterministic detectors, then the LLM classifiers on the session's model."""
        from .guardrails import text_for_classification
        from .providers import complete

        outcome = self.scanner.scan_deterministic(value, where=where)
        for req in self.scanner.classifier_requests(text_for_classification(outcome.value)):
            try:
                reply = await complete(call.route.provider, call.models[0], call.api_key, system=req.system_prompt,
                                       messages=[{"role": "user", "content": req.user_prompt}],
                                       json_schema=req.json_schema, schema_name="classification")
                self.usage.add(reply.usage)
                finding = self.scanner.interpret_classification(req.name, reply.parsed)
            except Exception as exc:  # noqa: BLE001 - a failed classification is logged, not fatal
                finding = self.scanner.classification_error(req.name, exc)
            outcome = outcome.with_finding(finding)
        self._log(call, outcome, where)
        return outcome

    async def scan_result(self, call, call_id: str, text: str) -> Scan:
        if self.scanner is None:
            return Scan(text, None)
        try:
            value, is_json = json.loads(text), True
        except ValueError:
            value, is_json = text, False
        outcome = await self._scan(call, value, "tool_result")
        if not outcome.findings:
            return Scan(text, value)
        if outcome.blocked:
            notice = f"[tool result withheld: {outcome.block_reason}]"
            return Scan(notice, notice, frozenset(outcome.tags), outcome.block_reason)
        new_text = json.dumps(outcome.value) if is_json else outcome.value
        return Scan(new_text, outcome.value, frozenset(outcome.tags))

    async def scan_arguments(self, call, tool_call) -> Scan:
        """Tags for the call's arguments and a block reason, or None; records redacted arguments."""
        if self.scanner is None:
            return Scan("", tool_call.arguments)
        outcome = await self._scan(call, tool_call.arguments or {}, "tool_args")
        if not outcome.findings:
            return Scan("", tool_call.arguments)
        reason = f"Tool call to '{tool_call.name}' is blocked: {outcome.block_reason}" if outcome.blocked else None
        if outcome.value is not tool_call.arguments and not outcome.blocked:
            self.pending_argument_rewrites[tool_call.id] = outcome.value
        return Scan("", outcome.value, frozenset(outcome.tags), reason)
