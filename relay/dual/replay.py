"""Running a turn's program, by replay: it runs from the top each time, the tool calls it already made are
answered from the turn's recorded results (never re-issued, no policy re-evaluation), and the first new
call suspends the run (``relay.interpreter.ReplayHost``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.interpreter import Limits, RecordedCall, ToolError
from relay.interpreter.pool import ProgramJob, ProgramOutcome, get_runner
from relay.meta import Meta, ValueWithMeta

from .policy import SessionPolicy
from .state import DualState, RecordedResult, TurnState
from .toolset import ToolSet

RecordResult = Callable[[TurnState, str, bool, Any, Meta, "dict[str, Meta] | None"], None]
"""Records the result of a program's tool call: (turn, program tool name, ok, value, meta, arg_meta)."""


def _recorded_call(r: RecordedResult) -> RecordedCall:
    result = ValueWithMeta(r.value, r.meta) if r.ok else ToolError(r.value, r.meta)
    return RecordedCall(r.tool, result, r.arg_meta or None)


class ProgramReplay:
    def __init__(self, tools: ToolSet, policy: SessionPolicy, limits: Limits | None) -> None:
        self.tools = tools
        self.policy = policy
        self.limits = limits
        self._calls: list[RecordedCall] | None = (
            None  # the turn's recorded results, as the interpreter takes them
        )

    def recorded_calls(self, turn: TurnState) -> list[RecordedCall]:
        if self._calls is None:
            self._calls = [_recorded_call(r) for r in turn.recorded]
        return self._calls

    def record(
        self,
        turn: TurnState,
        tool: str,
        ok: bool,
        value: Any,
        meta: Meta,
        arg_meta: dict[str, Meta] | None = None,
    ) -> None:
        """Add the result of the program's next tool call (``tool``: the program's name for it)."""
        entry = RecordedResult(tool, ok, value, meta, arg_meta or None)
        turn.recorded.append(entry)
        if self._calls is not None:
            self._calls.append(_recorded_call(entry))

    def forget(self) -> None:
        """The recorded results changed outside :meth:`record` (a new attempt, the next request)."""
        self._calls = None

    async def run(self, session: DualState, turn: TurnState) -> ProgramOutcome:
        """Run (replay) the turn's program off the event loop: in the relay, a worker process with a hard time
        and memory bound (``relay.interpreter.pool``); a run stopped there is a "limit" error like any other.
        The outcome reads like a RunResult (status, error, suspended, final_return_value, namespace, ...)."""
        specs, _ = self.tools.specs(session, turn)
        branch = self.policy.engine(session)
        ctx = session.context_variables(turn)
        context_vars = {k: ValueWithMeta(v.value, v.meta) for k, v in ctx.items()} if ctx else None
        job = ProgramJob(
            turn.program or "",
            specs,
            list(self.recorded_calls(turn)),
            context_vars,
            self.limits,
            branch=branch,
        )
        return await get_runner().run(job)
