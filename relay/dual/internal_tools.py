"""The internal tools, run by the engine itself: ``parse_with_ai`` and ``verify_hypothesis`` (the quarantined
LLM, role ``qllm``, reads data the planner must never see and answers in a fixed shape), ``set_policy``
(adds SQRT to the session's policy) and ``complete_turn`` (multistep planning: the turn is answered).

Their results go through the policy's result phase and are recorded like a client tool's.
"""

from __future__ import annotations

import json
from typing import Any

from relay.meta import DEFAULT_META, ValueWithMeta, merge_all
from relay.sqrt import PolicyCompileError

from . import prompts as P
from .guard import ToolDataGuard
from .llm import LLMClient, parsed_reply
from .policy import SessionPolicy
from .replay import RecordResult
from .schema import SchemaError, coerce, normalise_output_schema, validate
from .state import DualState, TurnState
from .types import RequestLog

QLLM_ATTEMPTS = 3  # parse_with_ai: first try + 2 retries when the reply does not match the schema
VERIFY_ATTEMPTS = 2


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


class InternalTools:
    def __init__(
        self,
        llm: LLMClient,
        guard: ToolDataGuard,
        policy: SessionPolicy,
        record: RecordResult,
        log: RequestLog,
    ) -> None:
        self.llm = llm
        self.guard = guard
        self.policy = policy
        self.record = record
        self.log = log

    async def run(
        self, session: DualState, turn: TurnState, tool: str, kwargs: dict[str, ValueWithMeta]
    ) -> None:
        """Run the internal ``tool``, then the policy's result phase; record the result."""
        pe = self.policy.engine(session)
        in_meta = merge_all(v.meta for v in kwargs.values())
        ok = True
        value: Any
        if tool == "parse_with_ai":
            value, ok = await self.parse_with_ai(kwargs)
            meta = in_meta.with_tags("__tool/parse_with_ai")
        elif tool == "verify_hypothesis":
            value, ok = await self.verify_hypothesis(kwargs)
            meta = in_meta.with_tags("__tool/verify_hypothesis")
        elif tool == "set_policy":
            value, ok = self.set_policy(session, kwargs)
            meta = in_meta
        else:  # complete_turn
            value, meta = None, DEFAULT_META
        dec = pe.after_call(tool, kwargs, ValueWithMeta(value, meta), session.session_meta)
        session.session_meta = dec.session_meta
        if dec.record:
            turn.policy_checks.append(dec.record)
        self.record(turn, tool, ok, value, dec.result_meta, dec.arg_meta_updates)
        self.log.events.append(
            {
                "type": "tool_result",
                "turn": turn.number,
                "call_id": None,
                "tool": tool,
                "ok": ok,
                "meta": dec.result_meta.to_json(),
                "internal": True,
            }
        )

    async def parse_with_ai(self, kwargs: dict[str, ValueWithMeta]) -> tuple[Any, bool]:
        """Structured data from text: the quarantined LLM answers in ``output_schema`` (checked, retried)."""
        query = kwargs.get("query")
        text = _as_text(query.value if query is not None else "")
        spec = kwargs.get("output_schema")
        try:
            schema, wrapped = normalise_output_schema(spec.value if spec is not None else None)
        except SchemaError as e:
            return f"parse_with_ai: invalid output_schema: {e}", False
        shown = await self.guard.llm_input(text, "parse_with_ai")
        if shown is None:
            return "parse_with_ai: the input was blocked by guardrails", False
        messages = [{"role": "user", "content": shown}]
        last = ""
        for _ in range(QLLM_ATTEMPTS):
            c = await self.llm.call("qllm", P.QLLM_SYSTEM, messages, schema)
            parsed = parsed_reply(c)
            if parsed is None:
                last = "the reply is not valid JSON"
            else:
                parsed = coerce(parsed, schema)
                err = validate(parsed, schema)
                if err is None:
                    return (parsed.get("value") if wrapped else parsed), True
                last = err
            messages = messages + [
                {"role": "assistant", "content": c.text or ""},
                {
                    "role": "user",
                    "content": f"Your answer does not match the required JSON schema ({last}). "
                    "Answer again with JSON matching the schema exactly.",
                },
            ]
        return f"parse_with_ai: the model did not produce output matching output_schema ({last})", False

    async def verify_hypothesis(self, kwargs: dict[str, ValueWithMeta]) -> tuple[Any, bool]:
        """Does the hypothesis hold for the data? The quarantined LLM answers true or false."""
        hyp = kwargs.get("hypothesis")
        data = kwargs.get("data")
        text = (
            hyp.value
            if hyp is not None and isinstance(hyp.value, str)
            else json.dumps(hyp.value if hyp else None, default=str)
        )
        body = f"Hypothesis: {text}"
        if data is not None:
            body += f"\n\nData:\n{_as_text(data.value)}"
        shown = await self.guard.llm_input(body, "verify_hypothesis")
        if shown is None:
            return "verify_hypothesis: the input was blocked by guardrails", False
        for _ in range(VERIFY_ATTEMPTS):
            c = await self.llm.call(
                "qllm", P.VERIFY_SYSTEM, [{"role": "user", "content": shown}], P.VERIFY_SCHEMA
            )
            parsed = parsed_reply(c)
            if isinstance(parsed, dict) and isinstance(parsed.get("holds"), bool):
                return parsed["holds"], True
        return "verify_hypothesis: the model did not produce a valid answer", False

    def set_policy(self, session: DualState, kwargs: dict[str, ValueWithMeta]) -> tuple[Any, bool]:
        """Only policy text written in the program itself (default metadata) is accepted."""
        code = kwargs.get("code")
        if code is None or not isinstance(code.value, str):
            return "set_policy: code must be a string", False
        if code.meta != DEFAULT_META:
            return "set_policy: only policy text written in the program itself is accepted", False
        try:
            self.policy.add(session, code.value)
        except PolicyCompileError as e:
            return f"set_policy: {e}", False
        return None, True
