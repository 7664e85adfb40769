"""The Dual-LLM engine: drives one request of a session through its parts (see the package docstring for
the contract).

Parts: :mod:`~relay.dual.state` (the session and turn state), :mod:`~relay.dual.history` (the history
check), :mod:`~relay.dual.toolset` (which tools a turn sees; the tool filter), :mod:`~relay.dual.planner`
(plan, select) with :mod:`~relay.dual.feedback` (what the planner is told), :mod:`~relay.dual.replay`
(running the program), :mod:`~relay.dual.tool_calls` (checks, results, cache) with
:mod:`~relay.dual.internal_tools`, :mod:`~relay.dual.review` and :mod:`~relay.dual.outcomes` (the answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.formats.model import DecodedRequest, ToolCall, ToolResult
from relay.interpreter import Limits
from relay.interpreter.pool import ProgramOutcome
from relay.meta import DEFAULT_META, Meta, ValueWithMeta
from relay.toolcalls.guard import guardrails_for

from . import feedback as F
from .guard import ToolDataGuard
from .history import ConversationHistory
from .internal_tools import InternalTools
from .llm import LLMClient
from .options import EngineSettings
from .outcomes import Outcomes
from .planner import Planner
from .policy import SessionPolicy
from .replay import ProgramReplay
from .result import CONTROL_FLOW_MESSAGE
from .review import Reviewer
from .state import DualState, PlannerExchange, TurnState
from .tool_calls import DeniedCall, ToolCalls, check_results
from .toolset import ToolSet
from .types import DualError, LLMCaller, LLMFailure, RequestLog, TurnFailure, TurnOutcome

RETRYABLE_ERRORS = ("syntax", "refused", "runtime", "limit")  # a new program may succeed
REVIEW_REJECTED = "the review LLM judged that the answer does not fulfil the request"


def request_context_vars(ctx: Mapping[Any, Any] | None) -> dict[str, ValueWithMeta] | None:
    """The request's ``context_vars`` (LangGraph endpoint): ``{name: value}`` or ``{name: {"value", "meta"}}``."""
    if not ctx:
        return None
    out = {}
    for name, item in ctx.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise DualError(400, f"context_vars: invalid variable name {name!r}")
        if isinstance(item, dict) and "value" in item and set(item) <= {"value", "meta", "value_type"}:
            try:
                meta = Meta.from_json(item["meta"]) if item.get("meta") is not None else DEFAULT_META
            except ValueError as e:
                raise DualError(400, f"context_vars.{name}: {e}") from None
            out[name] = ValueWithMeta(item["value"], meta)
        else:
            out[name] = ValueWithMeta(item, DEFAULT_META)
    return out


class DualEngine:
    """One session's dual-LLM engine for one request. See :mod:`relay.dual` for the contract.

    ``_run`` (one run of the program) and ``_record`` (a tool result recorded for replay) are the hooks a
    subclass may extend (the relay does, for its metrics and session log); every run and every recorded
    result goes through them.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        session_id: str,
        llm: LLMCaller,
        models: tuple[str, str],
        guardrails: Any = "auto",
        limits: Limits | None = None,
    ) -> None:
        self.config = config
        self.session_id = session_id
        self.settings = settings = EngineSettings.from_config(config)
        self.log = log = RequestLog()
        self.llm = LLMClient(llm, (models[0], models[-1]) if models else ("", ""), log)
        if guardrails == "auto":
            guardrails = guardrails_for(config.get("features") or {})
        self.guard = ToolDataGuard(guardrails, self.llm, log)
        self.policy = SessionPolicy(settings.policy)
        self.history = ConversationHistory(settings.fsm.get("history_mismatch_policy") or "continue", log)
        self.tools = ToolSet(settings, self.llm, log)
        self.planner = Planner(settings, self.llm, self.tools, log)
        self.replay = ProgramReplay(self.tools, self.policy, limits)
        internal = InternalTools(self.llm, self.guard, self.policy, self._record, log)
        self.tool_calls = ToolCalls(
            settings, session_id, self.tools, self.policy, self.guard, internal, self._record, self.llm, log
        )
        self.reviewer = Reviewer(settings, self.llm, log)
        self.outcomes = Outcomes(settings, log)
        self._failure_snapshot: tuple[TurnState, dict[str, ValueWithMeta] | None] | None = None
        self.completed_turns = 0  # the session's, given to ``advance``

    @property
    def events(self) -> list[dict[str, Any]]:
        """The current request's inspector events (so far)."""
        return self.log.events

    # -------------------------------------------------------------------------------------- hooks
    async def _run(self, session: DualState, turn: TurnState) -> ProgramOutcome:
        return await self.replay.run(session, turn)

    def _record(
        self,
        turn: TurnState,
        tool: str,
        ok: bool,
        value: Any,
        meta: Meta,
        arg_meta: dict[str, Meta] | None = None,
    ) -> None:
        self.replay.record(turn, tool, ok, value, meta, arg_meta)

    # -------------------------------------------------------------------------------------- entry
    async def advance(
        self, state: dict[str, Any], request: DecodedRequest, *, completed_turns: int
    ) -> TurnOutcome:
        """Handle one request; ``state`` (the session's stored JSON, ``{}`` when new) is updated in place.

        ``completed_turns``: the session's turns completed before this request (the caller counts them, one
        per final answer): a new turn is number ``completed_turns + 1``, and ``max_n_turns`` is checked
        against it."""
        self.log.reset()
        self.completed_turns = completed_turns
        session = DualState.from_json(state)
        try:
            return await self._advance(session, request)
        finally:
            self.replay.forget()
            state.clear()
            state.update(session.to_json())

    async def _advance(self, session: DualState, request: DecodedRequest) -> TurnOutcome:
        self.policy.engine(session)  # a stored policy that does not compile is a request error
        checked = self.history.check(session, request)
        turn = session.turn
        if turn is not None and checked.restart_turn:
            turn = session.turn = None
        trailing = request.trailing_tool_results
        pending = turn.pending_call if turn is not None else None
        if checked.restart_turn:
            outcome = await self._new_turn(session, request)
        elif turn is not None and pending is not None and trailing:
            outcome = await self._continue(session, turn, check_results(turn, trailing))
        elif pending is not None and request.last_role != "user":
            raise DualError(400, f"Missing tool result for tool call id '{pending.call_id}'")
        else:
            if request.last_role == "tool" and trailing:
                raise DualError(
                    400,
                    f"Unexpected tool result for tool call id '{trailing[0].call_id}': no tool call of "
                    "this session is waiting for a result",
                )
            outcome = await self._new_turn(session, request)
        self.history.remember(session, request, checked, outcome)
        return outcome

    async def _new_turn(self, session: DualState, request: DecodedRequest) -> TurnOutcome:
        if request.user_query is None:
            raise DualError(400, "The request contains no user message")
        self.tools.store(session, request.tools)
        settings = self.settings
        turn = session.turn = TurnState(number=self.completed_turns + 1, query=self.planner.query(request))
        if settings.max_turns is not None and turn.number > settings.max_turns:
            return self._fail(
                session,
                turn,
                TurnFailure(
                    "max_turns_exceeded",
                    f"Maximum number of turns ({settings.max_turns}) reached for this session.",
                ),
            )
        if settings.clear_session_meta in ("every_turn", "every_attempt"):
            session.session_meta = DEFAULT_META
        try:
            if settings.endpoint == "lang-graph" and request.user_provided_program:
                turn.user_program = True
                turn.program = request.user_provided_program
                turn.context_vars = request_context_vars(request.context_vars)
                self.log.events.append(
                    {
                        "type": "program",
                        "turn": turn.number,
                        "attempt": 1,
                        "program": turn.program,
                        "source": "user_provided_program",
                    }
                )
            else:
                await self.tools.filter_for_turn(session, turn)
                await self.planner.plan(session, turn)
            return await self._drive(session, turn)
        except TurnFailure as f:
            return self._fail(session, turn, f)
        except LLMFailure as e:
            return self._fail(session, turn, TurnFailure("llm_error", f"LLM call failed ({e.role}): {e.exc}"))

    async def _continue(self, session: DualState, turn: TurnState, result: ToolResult) -> TurnOutcome:
        """The client sent the result of the call the turn waits for."""
        assert turn.pending_call is not None
        try:
            await self.tool_calls.accept(session, turn, turn.pending_call, result)
            return await self._drive(session, turn)
        except TurnFailure as f:
            return self._fail(session, turn, f)
        except LLMFailure as e:
            return self._fail(session, turn, TurnFailure("llm_error", f"LLM call failed ({e.role}): {e.exc}"))

    def _fail(self, session: DualState, turn: TurnState, failure: TurnFailure) -> TurnOutcome:
        snapshot = self._failure_snapshot
        namespace = snapshot[1] if snapshot is not None and snapshot[0] is turn else None
        return self.outcomes.failure(session, turn, failure, namespace, completed_turns=self.completed_turns)

    # ------------------------------------------------------------------------------------ the loop
    async def _drive(self, session: DualState, turn: TurnState) -> TurnOutcome:
        try:
            return await self._drive_loop(session, turn)
        except (TurnFailure, LLMFailure):
            # The failure answer's namespace snapshot: the program as the failure left it (one more run).
            self._failure_snapshot = (turn, await self._failure_namespace(session, turn))
            raise

    async def _failure_namespace(
        self, session: DualState, turn: TurnState
    ) -> dict[str, ValueWithMeta] | None:
        if not self.outcomes.wants_failure_snapshot(turn):
            return None
        try:
            res = await self._run(session, turn)
            namespace: dict[str, ValueWithMeta] = res.namespace
            return namespace
        except Exception:  # noqa: BLE001 - best effort
            return None

    async def _drive_loop(self, session: DualState, turn: TurnState) -> TurnOutcome:
        """Run the program until the turn waits for the client or ends; re-plan when an attempt fails."""
        while True:
            res = await self._run(session, turn)
            status = res.status
            if status == "suspended":
                step = await self.tool_calls.at_call(session, turn, res)
                if isinstance(step, ToolCall):
                    return self.outcomes.tool_call(step)
                if isinstance(step, DeniedCall):
                    await self._next_attempt(
                        session, turn, res, step.feedback, failed=True, reason=step.reason
                    )
                continue
            if status == "success":
                if self._needs_next_step(turn):
                    await self._next_attempt(
                        session, turn, res, F.next_step_feedback(res.namespace), failed=False
                    )
                    continue
                review = await self.reviewer.review(turn, res)
                if review is not None:
                    await self._next_attempt(session, turn, res, review, failed=True, reason=REVIEW_REJECTED)
                    continue
                return self.outcomes.success(session, turn, res, completed_turns=self.completed_turns)
            if status == "control_flow_violation":
                if self.settings.retry_on_policy_violation and not turn.user_program:
                    fb = F.control_flow_feedback(res.error.lineno if res.error else "?")
                    await self._next_attempt(session, turn, res, fb, failed=True, reason=CONTROL_FLOW_MESSAGE)
                    continue
                raise TurnFailure("control_flow_violation", CONTROL_FLOW_MESSAGE, policy=True)
            if status == "policy_denied":  # not raised by our host, kept for completeness
                raise TurnFailure(
                    "policy_violation", res.denial.message if res.denial else "Tool call denied", policy=True
                )
            err = res.error
            if err is None or err.kind not in RETRYABLE_ERRORS or turn.user_program:
                raise TurnFailure("execution_error", err.message if err else "program failed")
            await self._next_attempt(
                session, turn, res, self._error_feedback(session, turn, res), failed=True, reason=err.message
            )

    def _needs_next_step(self, turn: TurnState) -> bool:
        """Multistep planning with ``complete_turn``: a program that did not call it is one step of several."""
        if not self.settings.steps_until_complete_turn or turn.user_program:
            return False
        if any(r.tool == "complete_turn" for r in turn.recorded):
            return False
        return turn.attempt < self.settings.max_steps  # steps exhausted: the last step's value is the answer

    def _error_feedback(self, session: DualState, turn: TurnState, res: ProgramOutcome) -> str:
        assert res.error is not None
        level = self.settings.planner_prompt.get("debug_info_level") or "normal"
        specs, _ = self.tools.specs(session, turn)
        return F.run_error_feedback(
            res.error,
            res.namespace,
            turn.program or "",
            specs,
            level=level,
            calls_run_again=bool(turn.recorded) and not self.settings.multistep,
        )

    async def _next_attempt(
        self,
        session: DualState,
        turn: TurnState,
        res: ProgramOutcome,
        feedback: str,
        *,
        failed: bool,
        reason: str | None = None,
    ) -> None:
        """Plan again, with ``feedback`` on the last program (raises ``TurnFailure`` when no attempt is left)."""
        settings = self.settings
        if failed:
            turn.failed_attempts += 1
            if turn.failed_attempts >= settings.max_failed_steps:
                raise TurnFailure(
                    "max_steps_exceeded",
                    f"Maximum number of failed PLLM steps ({settings.max_failed_steps}) reached. "
                    f"Last error: {reason}",
                )
        if turn.attempt >= settings.max_steps:
            raise TurnFailure(
                "max_steps_exceeded",
                f"Maximum number of PLLM steps ({settings.max_steps}) reached."
                + (f" Last error: {reason}" if reason else ""),
            )
        exchange = PlannerExchange(turn.program or "", feedback)
        if settings.multistep:
            # Each step builds on the previous one: its variables (also those of a failed step, up to the
            # failing line) stay defined for the next program, and its calls are not repeated.
            turn.context_vars = {k: v for k, v in res.namespace.items() if k != "final_return_value"}
            (turn.rejected_programs if failed else turn.completed_steps).append(exchange)
        else:
            turn.rejected_programs.append(exchange)
        turn.attempt += 1
        turn.recorded = []
        self.replay.forget()
        if settings.clear_session_meta == "every_attempt":
            session.session_meta = DEFAULT_META
        await self.planner.plan(session, turn)
