"""The entry point: ``run_program`` plus the Host protocol, ToolSpec and RunResult."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from relay.meta import DEFAULT_META, Meta, ValueWithMeta

from .builtins import BUILTIN_NAMES, BUILTINS
from .errors import InterpreterError, PolicyDenied, Suspend
from .evaluator import Interp, ProgErr
from .limits import DEFAULT_LIMITS, Limits
from .validate import compile_program
from .values import CONTAINERS, V, mm, norm
from .walker import Walker

STATUSES = ("success", "suspended", "error", "policy_denied", "control_flow_violation")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the program may call. ``params`` is ordered (JSON-schema ``properties`` order): positional
    arguments are mapped onto it."""

    name: str
    params: list[str]
    required: list[str] = field(default_factory=list)
    description: str = ""

    @classmethod
    def from_json_schema(
        cls, name: str, parameters: dict[str, Any] | None, description: str | None = ""
    ) -> ToolSpec:
        """Build from a function tool's JSON schema (``{"type": "object", "properties": ..., "required"}``)."""
        parameters = parameters or {}
        props = parameters.get("properties") or {}
        return cls(name, list(props), list(parameters.get("required") or []), description or "")


@runtime_checkable
class Host(Protocol):
    """Supplied by the caller (the dual-LLM orchestrator, or a test)."""

    def call_tool(self, name: str, kwargs: dict[str, ValueWithMeta], call_index: int) -> ValueWithMeta:
        """Every tool call, in program order (``call_index`` = 0-based ordinal in this run). Return the result
        with its metadata, or raise Suspend / PolicyDenied / ToolError."""
        ...

    def check_branch(self, meta: Meta) -> str | None:
        """Branching meta-policy: a non-None message aborts with a control-flow violation."""
        ...


@dataclass(eq=False)
class RunResult:
    status: str  # one of STATUSES
    error: InterpreterError | None = None
    suspended: Suspend | None = None  # the Suspend raised by the host, when status == "suspended"
    denial: PolicyDenied | None = None  # the PolicyDenied raised by the host, when status == "policy_denied"
    steps: int = 0  # statements executed (+ comprehension iterations)
    tool_calls: int = 0  # tool calls made in this run (answered from a record or not)
    output: list[str] = field(default_factory=list)  # captured print() output
    variables: dict[str, V] = field(default_factory=dict, repr=False)  # raw interpreter values
    limits: Limits = field(default=DEFAULT_LIMITS, repr=False)
    # The run's sticky implicit-flow context at its end: every variable's value may depend on it (a name
    # not assigned because a branch on tool data was not taken is as informative as one that was).
    pc: Meta = DEFAULT_META

    def _serialize(self, x: V, left: list[Any] | None = None) -> ValueWithMeta:
        # the same value under several names (final_return_value = a) is converted once
        cache = self.__dict__.setdefault("_serialized", {})
        hit = cache.get(id(x))
        if hit is not None and hit[0] is x:
            cached: ValueWithMeta = hit[1]
            return cached
        vm = self._serialize_uncached(x, left)
        cache[id(x)] = (x, vm)
        return vm

    def _serialize_uncached(self, x: V, left: list[Any] | None = None) -> ValueWithMeta:
        vm = self._serialize_raw(x, left)
        if self.pc is DEFAULT_META or self.pc == DEFAULT_META:
            return vm
        return ValueWithMeta(vm.value, mm(vm.meta, self.pc))

    def _serialize_raw(self, x: V, left: list[Any] | None = None) -> ValueWithMeta:
        """``left``: ``[nodes, meta]``, a node budget shared by several values (the namespace snapshot), spent
        as they go, and the merged meta of the values it was spent on."""
        w = Walker(self.limits.max_nesting_depth, self.limits.max_value_size)
        budget = None if left is None else max(min(w.max_nodes, left[0]), 0)
        try:
            value, meta = w.json_meta(x, budget)
        except (InterpreterError, RecursionError) as e:
            # (a namespace snapshot never fails; final_return_value was checked by run_program)
            meta = x.m if type(x.v) not in CONTAINERS or type(x.v) is tuple else mm(x.m, x.v.sm)
            if left is not None:  # the shared budget ran out because of the values before this one
                meta = mm(meta, left[1])
            return ValueWithMeta(f"<unserializable value: {getattr(e, 'reason', None) or e}>", meta)
        finally:
            if left is not None and budget is not None:
                left[0] -= budget - w.budget
        if left is not None:
            left[1] = mm(left[1], meta)
        return ValueWithMeta(value, meta)

    @cached_property
    def final_return_value(self) -> ValueWithMeta | None:
        """The program variable ``final_return_value`` (JSON-safe, with its merged metadata), if bound."""
        x = self.variables.get("final_return_value")
        return None if x is None else self._serialize(x)

    @cached_property
    def namespace(self) -> dict[str, ValueWithMeta]:
        """All program variables (context variables included), JSON-safe: sets/tuples -> lists (sets
        sorted), other objects -> str; each with the merge of its metadata."""
        # Bounded as a whole (2x the value-size limit in nodes): many names for one huge value stay cheap.
        left: list[Any] = [2 * self.limits.max_value_size, DEFAULT_META]  # nodes left, metas spent
        # Values that do not depend on tool data go first: whether one of them still fits the shared
        # budget must not depend on how large a tool-derived value was.
        items = list(self.variables.items())
        clean = {name for name, x in items if self._untainted(x)}
        done = {name: self._serialize(x, left) for name, x in items if name in clean}
        done.update({name: self._serialize(x, left) for name, x in items if name not in clean})
        return {name: done[name] for name, _ in items}

    def _untainted(self, x: V) -> bool:
        if self.pc != DEFAULT_META:
            return False
        try:
            return Walker(self.limits.max_nesting_depth, self.limits.max_value_size).eff(x) == DEFAULT_META
        except (InterpreterError, RecursionError):
            return False


def _wrap_context(it: Interp, value: Any) -> V:
    if isinstance(value, ValueWithMeta):
        return it.w.wrap(value.value, norm(value.meta))
    return it.w.wrap(value)


def _final_value_error(it: Interp, limits: Limits) -> InterpreterError | None:
    """``final_return_value`` must have a JSON form: one that has none (an integer of more than 4300 digits,
    NaN, infinity: kind "runtime") or is too large or too deep to convert (kind "limit") is the program's
    error, which the planner can fix; never a crash of the caller or invalid JSON in the answer."""
    x = it.ns.get("final_return_value")
    if x is None:
        return None
    try:
        # within the run's own deadline (host time excluded): converting is part of the run
        Walker(limits.max_nesting_depth, limits.max_value_size, it.deadline).json_meta(x)
        return None
    except RecursionError:
        e = InterpreterError("limit", "Limit exceeded: value nested too deeply")
    except InterpreterError as err:
        e = err
    try:
        meta = mm(e.meta, Walker(limits.max_nesting_depth, limits.max_value_size).eff(x))
    except (InterpreterError, RecursionError):
        meta = mm(e.meta, x.m)
    # the line of the program's last assignment to final_return_value (the planner's starting point)
    lines = [
        n.lineno
        for n in ast.walk(ast.Module(body=it.prog.body, type_ignores=[]))
        if isinstance(n, ast.Name) and n.id == "final_return_value" and isinstance(n.ctx, ast.Store)
    ]
    lineno = max(lines) if lines else None
    reason = getattr(e, "reason", None)
    if reason is not None:
        return InterpreterError(
            "runtime", f"final_return_value cannot be represented as JSON: {reason}", lineno, meta
        )
    message = e.message.replace("Limit exceeded: ", "Limit exceeded: final_return_value: ", 1)
    return InterpreterError(e.kind, message, lineno, meta)


def run_program(  # noqa: C901 - one branch per way a run ends (each exception is an outcome)
    source: str,
    *,
    tools: dict[str, ToolSpec],
    host: Host,
    context_vars: dict[str, ValueWithMeta] | None = None,
    limits: Limits | None = None,
) -> RunResult:
    """Run ``source`` to completion, suspension or failure. Never raises: every outcome is a RunResult."""
    limits = limits or DEFAULT_LIMITS
    try:
        # A tool named like a built-in (``format``, ``sum``) is the tool: calls to it are not pure.
        names = BUILTIN_NAMES if tools.keys().isdisjoint(BUILTIN_NAMES) else BUILTIN_NAMES.difference(tools)
        prog = compile_program(source, limits.max_nesting_depth, names)
    except InterpreterError as e:
        return RunResult("error", error=e, limits=limits)
    except Exception as e:  # pragma: no cover - defensive
        return RunResult(
            "error", error=InterpreterError("internal", f"parser failure: {e!r}", cause=e), limits=limits
        )
    it = Interp(prog, tools, host, limits, BUILTINS)
    status = "success"
    error: InterpreterError | None = None
    suspended = denial = None
    try:
        for name, value in (context_vars or {}).items():
            x = it.ns[name] = _wrap_context(it, value)
            it.saw(it.eff(x))
        it.exec_block(prog.body)
    except ProgErr as pe:
        exc = pe.exc.v
        msg = exc.message()
        status = "error"
        error = InterpreterError(
            "runtime", f"{exc.cls.name}: {msg}" if msg else exc.cls.name, pe.lineno, pe.exc.m
        )
    except Suspend as s:
        status = "suspended"
        suspended = s
    except PolicyDenied as d:
        status = "policy_denied"
        denial = d
        error = InterpreterError("policy_denied", d.message, it.lineno)
    except InterpreterError as e:
        error = e
        if e.lineno is None and it.lineno is not None:
            error = InterpreterError(e.kind, e.message, it.lineno, e.meta, e.cause)
        status = "control_flow_violation" if e.kind == "control_flow_violation" else "error"
    except RecursionError:
        status = "error"
        error = InterpreterError("limit", "Limit exceeded: expression or value nested too deeply", it.lineno)
    except MemoryError:
        status = "error"
        error = InterpreterError("limit", "Limit exceeded: out of memory", it.lineno)
    except Exception as e:  # a bug in the interpreter or an unexpected exception from the host
        status = "error"
        error = InterpreterError("internal", f"internal error: {type(e).__name__}: {e}", it.lineno, cause=e)
    if status == "success":
        error = _final_value_error(it, limits)
        if error is not None:
            status = "error"
    pc = it.pc
    if error is not None and error.kind != "syntax":
        # Whether and where the run failed may depend on everything its control flow depended on there
        # (the scoped context: a loop over tool data that hits a limit) and on the sticky pc. A limit or a
        # refusal met while running names sizes and values it does not track: it may depend on anything
        # the run has seen.
        error.meta = mm(mm(error.meta, pc), it.ctx)
        if error.kind in ("limit", "refused"):
            error.meta = mm(error.meta, it.seen)
        # The variables of a failed run (a multi-step program's next step sees them) are as they were
        # when it stopped, which depends on why it stopped.
        pc = mm(pc, error.meta)
    return RunResult(
        status,
        error=error,
        suspended=suspended,
        denial=denial,
        steps=it.steps,
        tool_calls=it.n_calls,
        output=it.output,
        variables=it.ns,
        limits=limits,
        pc=pc,
    )
