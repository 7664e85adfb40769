"""Deterministic replay: the Host that makes suspend/resume work.

The orchestrator stores the program and the ordered list of tool results received so far. To resume it
runs the program again from the top with a ReplayHost: calls with ``call_index < len(recorded)`` are
answered from the record (never re-issued), the first new call goes to ``live`` (or suspends).

    host = ReplayHost(recorded, live=orchestrator_host)   # live: a Host, a callable, or None
    result = run_program(program, tools=tools, host=host)
    store(host.recorded)        # earlier results + results of new calls answered live (e.g. parse_with_ai)
    if result.status == "suspended":
        ...                     # send result.suspended.tool_name / .kwargs to the client; when its
                                # result arrives, append it (ValueWithMeta) to the stored record

Recorded entries are ValueWithMeta, ToolError (re-raised on replay) or RecordedCall(tool_name, result),
whose tool name is checked against the replayed call (ReplayMismatch, status "error", kind "replay").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from relay.meta import Meta, ValueWithMeta

from .errors import ReplayMismatch, Suspend, ToolError


@dataclass(frozen=True, slots=True)
class RecordedCall:
    tool_name: str
    result: ValueWithMeta | ToolError
    arg_meta: dict[str, Meta] | None = None
    """Metadata the policy wrote to the call's argument variables (SQRT ``x.F`` targets), re-applied on replay."""


class ReplayHost:
    def __init__(
        self,
        recorded: Sequence[ValueWithMeta | ToolError | RecordedCall] = (),
        live: Any = None,
        *,
        check_branch: Callable[[Meta], str | None] | None = None,
    ) -> None:
        self.recorded: list[ValueWithMeta | ToolError | RecordedCall] = list(recorded)
        self.initial = len(self.recorded)
        self.live = live
        self._check_branch = check_branch
        self.replayed = 0  # calls answered from the record in this run
        self.live_calls = 0  # calls passed to ``live`` in this run
        self.last_arg_meta: dict[str, Meta] | None = None  # read by the interpreter after each call

    @property
    def new_results(self) -> list[ValueWithMeta | ToolError | RecordedCall]:
        return self.recorded[self.initial :]

    def call_tool(self, name: str, kwargs: dict[str, ValueWithMeta], call_index: int) -> ValueWithMeta:
        self.last_arg_meta = None
        if call_index < len(self.recorded):
            entry = self.recorded[call_index]
            if isinstance(entry, RecordedCall):
                self.last_arg_meta = entry.arg_meta
                if entry.tool_name != name:
                    raise ReplayMismatch(
                        f"replay mismatch at tool call {call_index}: the record has {entry.tool_name!r} but "
                        f"the program calls {name!r}"
                    )
                entry = entry.result
            self.replayed += 1
            if isinstance(entry, ToolError):
                raise entry
            return entry
        if call_index != len(self.recorded):
            raise ReplayMismatch(f"tool call {call_index} skips recorded results")
        if self.live is None:
            raise Suspend(name, kwargs, call_index)
        self.live_calls += 1
        fn = getattr(self.live, "call_tool", self.live)
        try:
            result: ValueWithMeta = fn(name, kwargs, call_index)
        except ToolError as e:
            self.recorded.append(RecordedCall(name, e))
            raise
        self.recorded.append(RecordedCall(name, result))
        return result

    def check_branch(self, meta: Meta) -> str | None:
        if self._check_branch is not None:
            return self._check_branch(meta)
        cb = getattr(self.live, "check_branch", None)
        return cb(meta) if cb is not None else None
