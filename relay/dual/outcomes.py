"""What a request answers: a tool call for the client, or the turn's final answer (the result document),
and the bookkeeping of a finished turn (whether it closes the session, what later turns' planners see of
it; the relay counts the turns)."""

from __future__ import annotations

from typing import Any

from relay.formats.model import ToolCall
from relay.interpreter.pool import ProgramOutcome
from relay.meta import DEFAULT_META, ValueWithMeta

from .options import EngineSettings
from .result import build_result, render_content
from .state import MAX_PAST_TURNS, DualState, PastTurn, TurnState
from .types import RequestLog, TurnFailure, TurnOutcome


class Outcomes:
    def __init__(self, settings: EngineSettings, log: RequestLog) -> None:
        self.settings = settings
        self.log = log

    def tool_call(self, call: ToolCall) -> TurnOutcome:
        """The turn waits: the client runs ``call`` and sends its result."""
        log = self.log
        return TurnOutcome(
            kind="tool_calls",
            tool_calls=[call],
            usage=log.usage,
            llm_calls=log.llm_calls,
            events=log.events,
            mismatch_detected=log.mismatch,
        )

    def success(
        self, session: DualState, turn: TurnState, res: ProgramOutcome, *, completed_turns: int
    ) -> TurnOutcome:
        final = res.final_return_value or ValueWithMeta(None, DEFAULT_META)
        namespace: dict[str, ValueWithMeta] = res.namespace
        doc = build_result(
            status="success",
            final=final,
            error=None,
            response_format=self.settings.response_format,
            program=turn.program,
            namespace=namespace,
            session_meta=session.session_meta,
            policy_history=turn.policy_checks,
            policy_failure=False,
            mismatch=self.log.mismatch,
        )
        closed = self._complete_turn(session, turn, "success", completed_turns)
        if not closed:
            session.variables = {k: v for k, v in namespace.items() if k != "final_return_value"}
        self.log.events.append({"type": "final", "turn": turn.number, "status": "success", "error": None})
        return self._final(doc, closed, failed=False, code=None, message=None)

    def wants_failure_snapshot(self, turn: TurnState) -> bool:
        """Does a failure answer of ``turn`` show the namespace (which takes one more run of the program)?"""
        return bool(self.settings.response_format.get("include_namespace_snapshot") and turn.program)

    def failure(
        self,
        session: DualState,
        turn: TurnState,
        failure: TurnFailure,
        namespace: dict[str, ValueWithMeta] | None,
        *,
        completed_turns: int,
    ) -> TurnOutcome:
        doc = build_result(
            status="failure",
            final=None,
            error=(failure.code, failure.message),
            response_format=self.settings.response_format,
            program=turn.program,
            namespace=namespace if self.wants_failure_snapshot(turn) else None,
            session_meta=session.session_meta,
            policy_history=turn.policy_checks,
            policy_failure=failure.policy,
            mismatch=self.log.mismatch,
        )
        closed = self._complete_turn(session, turn, failure.code, completed_turns)
        self.log.events.append(
            {
                "type": "final",
                "turn": turn.number,
                "status": "failure",
                "error": {"code": failure.code, "message": failure.message},
            }
        )
        return self._final(doc, closed, failed=True, code=failure.code, message=failure.message)

    def _complete_turn(self, session: DualState, turn: TurnState, status: str, completed_turns: int) -> bool:
        """Keep the turn's programs for later planners; True when the session is closed by this turn (the
        caller counts it: ``completed_turns`` are the turns before it)."""
        if not turn.user_program and turn.program:
            prune = self.settings.fsm.get("prune_failed_steps")
            prune = True if prune is None else bool(prune)
            earlier = (
                turn.completed_steps + turn.rejected_programs
                if self.settings.multistep and not prune
                else turn.completed_steps
            )
            programs = [e.program for e in earlier] + [turn.program]
            session.past_turns.append(PastTurn(turn.query, programs, status))
            session.past_turns = session.past_turns[-MAX_PAST_TURNS:]
        session.turn = None
        max_turns = self.settings.max_turns
        return max_turns is not None and completed_turns + 1 >= max_turns

    def _final(
        self, doc: dict[str, Any], closed: bool, *, failed: bool, code: str | None, message: str | None
    ) -> TurnOutcome:
        content = render_content(doc, strip=bool(self.settings.response_format.get("strip_response_content")))
        log = self.log
        return TurnOutcome(
            kind="final",
            content=content,
            failed=failed,
            error_code=code,
            error_message=message,
            usage=log.usage,
            session_closed=closed,
            llm_calls=log.llm_calls,
            events=log.events,
            mismatch_detected=log.mismatch,
            result=doc,
        )
