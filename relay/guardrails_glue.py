"""Guardrails in single-LLM sessions: deterministic scans of tool results and proposed tool-call arguments.

Findings are logged as session events; PII is redacted in what the model and the client receive; URL and
file blockers mask results and block calls. (The LLM classifiers — toxicity and topic guardrails — are
wired where an LLM call is available; see ``relay.guardrails``.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SessionGuardrails:
    scanner: Any = None
    pending_argument_rewrites: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def for_state(cls, state: dict) -> SessionGuardrails:
        features = state["config"]["features"]
        if not features["classifiers"] and not features["blockers"]:
            return cls()
        try:
            from .guardrails import Guardrails
        except ImportError:
            return cls()
        return cls(Guardrails.from_features(features["classifiers"], features["blockers"]))

    def _log(self, call, outcome, where: str) -> None:
        from .pipeline import session_event

        for f in outcome.findings:
            session_event(call, "guardrail", guardrail=f.guardrail, action=f.action, detail=f.detail, where=where)

    def scan_result(self, call, call_id: str, text: str) -> str:
        if self.scanner is None:
            return text
        try:
            value = json.loads(text)
            is_json = True
        except ValueError:
            value, is_json = text, False
        outcome = self.scanner.scan_deterministic(value, where="tool_result")
        if not outcome.findings:
            return text
        self._log(call, outcome, "tool_result")
        return json.dumps(outcome.value) if is_json else outcome.value

    def scan_arguments(self, call, tool_call) -> str | None:
        """Returns a block reason, or None; records redacted arguments for the answer."""
        if self.scanner is None:
            return None
        outcome = self.scanner.scan_deterministic(tool_call.arguments or {}, where="tool_args")
        if not outcome.findings:
            return None
        self._log(call, outcome, "tool_args")
        if outcome.blocked:
            return f"Tool call to '{tool_call.name}' is blocked: {outcome.block_reason}"
        self.pending_argument_rewrites[tool_call.id] = outcome.value
        return None
