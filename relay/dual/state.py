"""The session state of the Dual-LLM engine, typed: what one session remembers between requests.

The engine works on these dataclasses; they become JSON only where the relay stores them (``to_json``), in
the compact encodings of :mod:`relay.dual.encoding` for metadata and values. ``DualState.from_json``
also reads the first stored format (``"v": 1``, short keys such as ``"att"``, ``"pch"``, ``"fb"``,
``"pend"``): sessions live in the session store across a deploy. Anything else (nothing stored, an unknown
version) starts a fresh state, as the engine always did. The count of completed turns is the relay's
(``DualEngine.advance(..., completed_turns=)``): a ``turns_done`` stored by earlier versions is not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.meta import DEFAULT_META, Meta, ValueWithMeta

from .encoding import MetaJSON, StoredValue, meta_dump, meta_load, vwm_dump, vwm_load

STATE_VERSION = 2
FIRST_STATE_VERSION = 1  # the short-key format, read for sessions stored before version 2
MAX_PAST_TURNS = 10  # earlier turns kept for the planner's prompt


def _load_values(data: Mapping[str, StoredValue] | None) -> dict[str, ValueWithMeta]:
    return {name: vwm_load(item) for name, item in (data or {}).items()}


def _dump_values(values: Mapping[str, ValueWithMeta]) -> dict[str, StoredValue]:
    return {name: vwm_dump(v) for name, v in values.items()}


@dataclass(slots=True)
class DeclaredTool:
    """A tool the client declared (the latest declaration; continuations may omit the tools)."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    @classmethod
    def from_json(cls, data: Any) -> DeclaredTool:
        if isinstance(data, list):  # version 1: [name, description, parameters]
            return cls(data[0], data[1], data[2])
        return cls(data["name"], data["description"], data["parameters"])


@dataclass(slots=True)
class PastTurn:
    """An earlier turn as the planner sees it again: trusted text only (the query and its own programs)."""

    query: str
    programs: list[str]
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "programs": self.programs, "status": self.status}

    @classmethod
    def from_json(cls, data: Any) -> PastTurn:
        if isinstance(data, list):  # version 1: [query, programs, status]
            return cls(data[0], list(data[1]), data[2])
        return cls(data["query"], list(data["programs"]), data["status"])


@dataclass(slots=True)
class CachedResult:
    """A client tool result kept for ``force_to_cache`` (as the client sent it)."""

    content: str
    is_error: bool

    def to_json(self) -> dict[str, Any]:
        return {"content": self.content, "is_error": self.is_error}

    @classmethod
    def from_json(cls, data: Any) -> CachedResult:
        if isinstance(data, list):  # version 1: [content, is_error]
            return cls(data[0], bool(data[1]))
        return cls(data["content"], bool(data["is_error"]))


@dataclass(slots=True)
class RecordedResult:
    """The result of one tool call of the current attempt, answered again when the program is replayed.

    ``tool`` is the name the program used; ``ok`` False when the call failed (``value`` is then the error
    message); ``arg_meta``: metadata a policy wrote to the call's argument variables (SQRT ``x.F``)."""

    tool: str
    ok: bool
    value: Any
    meta: Meta
    arg_meta: dict[str, Meta] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tool": self.tool,
            "ok": self.ok,
            "value": self.value,
            "meta": meta_dump(self.meta),
        }
        if self.arg_meta:
            out["arg_meta"] = {name: meta_dump(m) for name, m in self.arg_meta.items()}
        return out

    @classmethod
    def from_json(cls, data: Any) -> RecordedResult:
        if isinstance(data, list):  # version 1: [tool, 1 | 0, value, meta(, arg_meta)]
            tool, ok, value, meta, *rest = data
            arg_meta: Mapping[str, MetaJSON] | None = rest[0] if rest else None
        else:
            tool, ok, value, meta = data["tool"], data["ok"], data["value"], data["meta"]
            arg_meta = data.get("arg_meta")
        return cls(
            tool,
            bool(ok),
            value,
            meta_load(meta),
            {name: meta_load(m) for name, m in arg_meta.items()} if arg_meta else None,
        )


@dataclass(slots=True)
class PendingCall:
    """The tool call waiting for the client's result: the program's ``index``-th call, of ``tool`` (the
    program's name for it), sent as ``call_id``, with the arguments as the program passed them."""

    index: int
    tool: str
    call_id: str | None
    args: dict[str, ValueWithMeta]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tool": self.tool,
            "call_id": self.call_id,
            "args": _dump_values(self.args),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingCall:
        if "i" in data:  # version 1: {i, tool, id, args}
            return cls(data["i"], data["tool"], data["id"], _load_values(data["args"]))
        return cls(data["index"], data["tool"], data["call_id"], _load_values(data["args"]))


@dataclass(slots=True)
class PlannerExchange:
    """A program the planner wrote in this turn, and what it was told about it afterwards."""

    program: str
    feedback: str

    def to_json(self) -> dict[str, str]:
        return {"program": self.program, "feedback": self.feedback}

    @classmethod
    def from_json(cls, data: Any) -> PlannerExchange:
        if isinstance(data, list):  # version 1: [program, feedback]
            return cls(data[0], data[1])
        return cls(data["program"], data["feedback"])


@dataclass(slots=True)
class TurnState:
    """The turn in progress: one user request, planned (and re-planned) until it ends."""

    number: int
    query: str  # what the planner is asked (the user's request, with inlined system/developer text)
    allowed_tools: list[str] | None = None  # the tool filter's choice; None: every declared tool
    attempt: int = 1  # counts every program the planner wrote for this turn
    failed_attempts: int = 0
    program: str | None = None  # the current attempt's program
    user_program: bool = False  # the program came with the request (LangGraph endpoint), not from the planner
    context_vars: dict[str, ValueWithMeta] | None = None  # this attempt's own context variables
    recorded: list[RecordedResult] = field(default_factory=list)  # tool results of the current attempt
    pending_call: PendingCall | None = None
    rejected_programs: list[PlannerExchange] = field(
        default_factory=list
    )  # failed or rejected, with feedback
    completed_steps: list[PlannerExchange] = field(
        default_factory=list
    )  # multistep: steps that ran to the end
    policy_checks: list[dict[str, Any]] = field(default_factory=list)  # the policy-check history of the turn

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "query": self.query,
            "allowed_tools": self.allowed_tools,
            "attempt": self.attempt,
            "failed_attempts": self.failed_attempts,
            "program": self.program,
            "user_program": self.user_program,
            "context_vars": None if self.context_vars is None else _dump_values(self.context_vars),
            "recorded": [r.to_json() for r in self.recorded],
            "pending_call": None if self.pending_call is None else self.pending_call.to_json(),
            "rejected_programs": [e.to_json() for e in self.rejected_programs],
            "completed_steps": [e.to_json() for e in self.completed_steps],
            "policy_checks": self.policy_checks,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TurnState:
        if "n" in data:
            return cls._from_first_format(data)
        pending = data.get("pending_call")
        context = data.get("context_vars")
        return cls(
            number=data["number"],
            query=data["query"],
            allowed_tools=data.get("allowed_tools"),
            attempt=data.get("attempt", 1),
            failed_attempts=data.get("failed_attempts", 0),
            program=data.get("program"),
            user_program=bool(data.get("user_program")),
            context_vars=None if context is None else _load_values(context),
            recorded=[RecordedResult.from_json(r) for r in data.get("recorded") or []],
            pending_call=None if pending is None else PendingCall.from_json(pending),
            rejected_programs=[PlannerExchange.from_json(e) for e in data.get("rejected_programs") or []],
            completed_steps=[PlannerExchange.from_json(e) for e in data.get("completed_steps") or []],
            policy_checks=list(data.get("policy_checks") or []),
        )

    @classmethod
    def _from_first_format(cls, data: Mapping[str, Any]) -> TurnState:
        pending = data.get("pend")
        context = data.get("ctx")
        return cls(
            number=data["n"],
            query=data["q"],
            allowed_tools=data.get("tools"),
            attempt=data.get("att", 1),
            failed_attempts=data.get("fail", 0),
            program=data.get("prog"),
            user_program=bool(data.get("user")),
            context_vars=None if context is None else _load_values(context),
            recorded=[RecordedResult.from_json(r) for r in data.get("rec") or []],
            pending_call=None if not pending else PendingCall.from_json(pending),
            rejected_programs=[PlannerExchange.from_json(e) for e in data.get("fb") or []],
            completed_steps=[PlannerExchange.from_json(e) for e in data.get("steps") or []],
            policy_checks=list(data.get("pch") or []),
        )


@dataclass(slots=True)
class DualState:
    """Everything the engine keeps of one session between requests."""

    session_meta: Meta = DEFAULT_META  # SQRT session metadata
    history: list[str] = field(default_factory=list)  # a digest per conversation message (history mismatch)
    tools: list[DeclaredTool] = field(default_factory=list)
    variables: dict[str, ValueWithMeta] = field(default_factory=dict)  # left by the last successful turn
    past_turns: list[PastTurn] = field(default_factory=list)
    added_policy: str = ""  # SQRT the programs added with set_policy
    tool_result_cache: dict[str, CachedResult] = field(default_factory=dict)  # force_to_cache
    turn: TurnState | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "session_meta": meta_dump(self.session_meta),
            "history": self.history,
            "tools": [t.to_json() for t in self.tools],
            "variables": _dump_values(self.variables),
            "past_turns": [p.to_json() for p in self.past_turns],
            "added_policy": self.added_policy,
            "tool_result_cache": {key: c.to_json() for key, c in self.tool_result_cache.items()},
            "turn": None if self.turn is None else self.turn.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> DualState:
        """The stored state; a fresh one when nothing (or an unknown version) is stored."""
        if not data:
            return cls()
        if data.get("version") == STATE_VERSION:
            names = (
                "session_meta",
                "history",
                "variables",
                "past_turns",
                "added_policy",
                "tool_result_cache",
            )
        elif data.get("v") == FIRST_STATE_VERSION:
            names = ("smeta", "hist", "vars", "past", "xpol", "cache")
        else:
            return cls()
        meta, history, variables, past, added_policy, cache = (data.get(n) for n in names)
        turn = data.get("turn")
        return cls(
            session_meta=meta_load(meta),
            history=list(history or []),
            tools=[DeclaredTool.from_json(t) for t in data.get("tools") or []],
            variables=_load_values(variables),
            past_turns=[PastTurn.from_json(p) for p in past or []],
            added_policy=added_policy or "",
            tool_result_cache={key: CachedResult.from_json(c) for key, c in (cache or {}).items()},
            turn=None if turn is None else TurnState.from_json(turn),
        )

    def context_variables(self, turn: TurnState) -> dict[str, ValueWithMeta]:
        """The variables a program of ``turn`` starts with: the session's, then the attempt's own."""
        items = dict(self.variables)
        if turn.context_vars:
            items.update(turn.context_vars)
        items.pop("final_return_value", None)
        return items
