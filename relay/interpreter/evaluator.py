"""The AST evaluator: walks a validated program node by node, propagating metadata.

One module, over 700 lines, because it is one object: ``Interp`` is the state of a run (namespace, the
implicit-flow context ``ctx`` and sticky ``pc``, branch regions, step, size and time budgets) and each of its
``s_*``/``e_*`` methods is a row of the ``STMT``/``EXPR`` dispatch tables at the bottom. Every row reads and
updates that shared state on the hot path; split into mixins, the invariants of the context and the budgets
would be spread over files that each need all of them. What is not that state lives apart: the values
(``values``), the deep walks (``walker``), the builtins (``builtins``), validation (``validate``).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from time import perf_counter
from typing import Any, cast

from relay.meta import Meta, ValueWithMeta

from .builtins import ATTRS, METHODS
from .errors import InterpreterError, PolicyDenied, Suspend, ToolError
from .limits import Limits
from .validate import FORBIDDEN_NAMES, MUTATING_METHODS, Program
from .values import (
    CONTAINERS,
    DATETIME_TYPES,
    SCALARS,
    BoundMethod,
    BuiltinFn,
    D,
    ExcClass,
    ExcValue,
    ModuleRef,
    ToolRef,
    TypeRef,
    V,
    VDict,
    VList,
    VSet,
    mm,
    norm,
    sorted_plain,
    type_name,
)
from .walker import Walker

# Python exceptions an operation on program data may raise; they become program exceptions.
PY_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError)
RUN_ENDING = (InterpreterError, Suspend, PolicyDenied, RecursionError, MemoryError)


class ProgErr(Exception):
    """A program-level exception (catchable by try/except). ``exc`` is V(ExcValue, meta)."""

    def __init__(self, exc: V, lineno: int | None) -> None:
        super().__init__()
        self.exc = exc
        self.lineno = lineno


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_BREAK = _Break()
_CONTINUE = _Continue()

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
    ast.MatMult: operator.matmul,
}
_OPSYM = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.MatMult: "@",
}
_CMPOPS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SETOPS = {ast.BitOr: "__or__", ast.BitAnd: "__and__", ast.Sub: "__sub__", ast.BitXor: "__xor__"}
_NUMS = frozenset({int, float, bool})
_PLAIN_EQ_SCALARS = frozenset({int, float, bool, str, type(None)})
_PCT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_SPEC_NUM = re.compile(r"\d+")
SLOT_COST = 32  # allocation units charged per container slot (a V object and its reference)


class Interp:
    """One run of one program. Not reusable, not thread-safe (create one per run)."""

    def __init__(
        self, prog: Program, tools: dict[str, Any], host: Any, limits: Limits, builtins: dict[str, Any]
    ) -> None:
        self.prog = prog
        self.tools = tools
        self.host = host
        self.limits = limits
        self.builtins = builtins
        self.ns: dict[str, V] = {}
        self.ctx: Meta = D  # implicit-flow context: merged metas of the enclosing branch conditions, plus pc
        # Sticky part of the context: decisions on tool data whose consequences cannot be enumerated (a
        # tool or a program-chosen callable may run, a mutation through a tool-chosen reference, a caught
        # exception...) taint everything the run does afterwards. Never lowered within a run.
        self.pc: Meta = D
        # Every meta that entered the run from outside (tool results and errors, context variables, policy
        # rewrites): an upper bound of what any value or exception can depend on.
        self.seen: Meta = D
        self.guarded = 0  # depth of try statements with handlers being executed
        self.absent: dict[str, Meta] = {}  # names unbound after a decision that could have bound them
        self.arity: Meta = D  # set by elts(): the meta of a display's length
        self.jump_ctx: Meta = D  # ctx at the last break/continue
        self.steps = 0
        self.n_calls = 0
        self.alloc_used = 0
        self.lineno: int | None = None
        self.output: list[str] = []
        self.output_chars = 0
        self.handling: list[ProgErr] = []  # exceptions being handled (for bare ``raise``)
        self.max_steps = limits.max_steps
        self.max_loop = limits.max_loop_iterations
        self.max_size = limits.max_value_size
        self.deadline = perf_counter() + limits.wall_time_seconds
        self.w = Walker(limits.max_nesting_depth, limits.max_value_size, self.deadline)

    # ----------------------------------------------------------------------------------------- helpers
    def limit(self, message: str) -> InterpreterError:
        # Reaching a limit here may depend on the data the control flow depends on (a loop's length).
        return InterpreterError("limit", f"Limit exceeded: {message}", self.lineno, self.ctx)

    def refuse(self, message: str) -> InterpreterError:
        return InterpreterError("refused", f"Refused: {message}", self.lineno, self.ctx)

    def err(self, cls: str, message: Any, meta: Meta = D) -> ProgErr:
        """A program exception ``cls(message)`` (no argument when message is None)."""
        exc = ExcValue(self.builtins[cls].v, () if message is None else (message,))
        return ProgErr(V(exc, mm(meta, self.ctx)), self.lineno)

    def py_err(self, e: BaseException, meta: Meta = D) -> ProgErr:
        cls = None
        for k in type(e).__mro__:
            b = self.builtins.get(k.__name__)
            if b is not None and type(b.v) is ExcClass:
                cls = b.v
                break
        if cls is None:
            cls = self.builtins["Exception"].v
        args = tuple(a if type(a) in SCALARS or type(a) is tuple else str(a) for a in e.args)
        return ProgErr(V(ExcValue(cls, args), mm(meta, self.ctx)), self.lineno)

    def tick(self) -> None:
        """One step (statement or comprehension iteration): enforce the step and wall-time limits."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise self.limit(f"more than {self.max_steps} steps executed")
        if perf_counter() > self.deadline:
            raise self.limit(f"wall time of {self.limits.wall_time_seconds} s exceeded")

    def check_size(self, n: int, what: str = "value") -> None:
        if n > self.max_size:
            raise self.limit(f"{what} of size {n} exceeds the maximum of {self.max_size}")

    def alloc(self, n: int) -> None:
        """Count ``n`` units (string chars) against the cumulative allocation budget."""
        self.alloc_used += n
        if self.alloc_used > self.limits.max_total_allocation:
            raise self.limit(
                f"the program allocated more than {self.limits.max_total_allocation} units in total"
            )

    def alloc_slots(self, n: int) -> None:
        """Count ``n`` container slots (each a V object: about SLOT_COST bytes)."""
        self.alloc(SLOT_COST * n)

    def new_str(self, s: str) -> str:
        n = len(s)
        if n > 256:
            self.check_size(n, "string")
            self.alloc(n)
        return s

    def store(self, x: V) -> V:
        """The value as stored by an assignment/mutation under the current implicit-flow context."""
        c = self.ctx
        if c is D or x.m is c:
            return x
        return V(x.v, mm(x.m, c))

    def touch(self, container: Any, meta: Meta = D) -> None:
        """A container's structure changed, depending on ``meta`` and the implicit-flow context."""
        m = mm(meta, self.ctx)
        if m is not D:
            container.sm = mm(container.sm, m)

    def shallow(self, x: V) -> Meta:
        """Meta of a value's identity/truthiness: the reference meta plus, for containers, the structure."""
        v = x.v
        t = type(v)
        if t is VList or t is VDict or t is VSet:
            return mm(x.m, v.sm)
        return x.m

    def eff(self, x: V) -> Meta:
        return self.w.eff(x) if type(x.v) in CONTAINERS else x.m

    def plain(self, x: V) -> Any:
        return self.w.plain(x) if type(x.v) in CONTAINERS else x.v

    def kmeta(self, x: V) -> Meta:
        """The meta of a value used as a dict key or set element: a tuple's elements are part of it."""
        return self.eff(x) if type(x.v) is tuple else x.m

    def hkey(self, x: V) -> Any:
        """A plain hashable key for dict/set operations (TypeError for unhashable values)."""
        v = x.v
        t = type(v)
        if t is str or t is int:
            return v
        if t is tuple:
            # Bounded (a DAG of shared tuples is exponential when expanded; Python hashes plain nested
            # tuples by expanding them): see Walker.hkey.
            return self.w.hkey(
                x, lambda e: self.err("TypeError", f"unhashable type: '{type_name(e.v)}'", mm(x.m, e.m))
            )
        if t is VList or t is VDict or t is VSet or t is ExcValue or t is BoundMethod:
            raise self.err("TypeError", f"unhashable type: '{type_name(v)}'", x.m)
        return v

    def text_of(self, x: V) -> str:
        """``str(x)`` as a program operation: a value with no string form (an integer of more than 4300
        digits) is the program's ValueError, carrying the value's metadata."""
        try:
            return self.w.str(x)
        except ValueError as e:
            raise self.py_err(e, self.eff(x)) from None

    def raise_pc(self, m: Meta) -> None:
        """A decision on ``m`` whose consequences reach the rest of the run."""
        if m is not D:
            self.pc = mm(self.pc, m)
            self.ctx = mm(self.ctx, m)

    def saw(self, m: Meta) -> None:
        """``m`` entered the run from outside; inside a try body it also joins the pc (any exception the
        body may raise, or not raise, can depend on it)."""
        if m is not D:
            self.seen = mm(self.seen, m)
            if self.guarded:
                self.raise_pc(m)

    def enter_region(self, node: ast.AST, cm: Meta) -> Meta:
        """A decision on data with meta ``cm`` governs ``node``'s region: returns the context to restore
        with ``leave_region``. Pure regions are tainted by scope (plus the containers they may mutate, on
        entry); others raise the sticky pc."""
        outer = self.ctx
        if cm is D:
            return outer
        region = self.prog.regions.get(node)
        if region is None or region.sticky:
            self.raise_pc(cm)
        else:
            self.taint_roots(region.roots, cm)
            self.ctx = mm(outer, cm)
        return outer

    def leave_region(self, outer: Meta) -> None:
        self.ctx = outer if self.pc is D else mm(outer, self.pc)

    def taint_roots(self, roots: frozenset[str], m: Meta) -> None:
        """Add ``m`` to the structure meta of the containers ``roots`` name: the only objects a pure region
        can mutate (see validate.Region), so every alias sees the decision whether the region runs or not."""
        ns = self.ns
        for name in roots:
            x = ns.get(name)
            if x is not None:
                t = type(x.v)
                if t is VList or t is VDict or t is VSet:
                    x.v.sm = mm(x.v.sm, m)

    def mutate_through(self, ref: V) -> None:
        """A container is mutated through a reference that depends on data: which container changes
        depends on it (``(a if t else b).append(1)``, ``groups[key].append(x)``)."""
        if ref.m is not D:
            self.check_branch(ref.m)
            self.raise_pc(ref.m)

    def check_branch(self, meta: Meta) -> None:
        message = self.host.check_branch(meta)
        if message:
            raise InterpreterError(
                "control_flow_violation",
                f"Control flow violation detected during program execution: {message}",
                self.lineno,
                meta,
            )

    def iter_elems(self, x: V) -> list[V]:
        """The elements of an iterable, each with element-read meta (sets in sorted order)."""
        v = x.v
        t = type(v)
        base = self.shallow(x)
        if t is VList or t is tuple:
            if base is D:
                return list(v)
            return [V(e.v, mm(e.m, base)) for e in v]
        if t is VDict:
            return [V(k if type(k) is not tuple else self.w.key_value(k), base) for k in v]
        if t is VSet:
            return [V(k if type(k) is not tuple else self.w.key_value(k), base) for k in sorted_plain(v)]
        if t is str:
            self.alloc_slots(len(v))
            return [V(c, base) for c in v]
        if t is range:
            try:
                n = len(v)
            except OverflowError:
                n = self.max_size + 1
            self.check_size(n, "range")
            self.alloc_slots(n)
            return [V(i, base) for i in v]
        raise self.err("TypeError", f"'{type_name(v)}' object is not iterable", x.m)

    def iter_lazy(self, x: V) -> Iterable[V]:
        """Like iter_elems but lazy for ranges (a for loop over range(10**9) is stopped by the loop limit)."""
        v = x.v
        if type(v) is range:
            base = self.shallow(x)
            return (V(i, base) for i in v)
        return self.iter_elems(x)

    def taint_written(self, node: ast.AST, meta: Meta) -> None:
        """Implicit flow through (non-)execution: names written in a branch region get the condition's meta."""
        if meta is D:
            return
        ns = self.ns
        for name in self.prog.written.get(node, ()):
            x = ns.get(name)
            if x is None:
                # Not bound now, but bound had the decision gone the other way: reading it (a NameError,
                # the built-in or tool of that name) depends on the decision.
                self.absent[name] = mm(self.absent.get(name, D), meta)
                continue
            t = type(x.v)
            if t is VList or t is VDict or t is VSet:
                x.v.sm = mm(x.v.sm, meta)
            if x.m is not meta:
                ns[name] = V(x.v, mm(x.m, meta))

    # ------------------------------------------------------------------------------------- statements
    def exec_block(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.lineno = s.lineno
            self.tick()
            STMT[type(s)](self, s)

    def s_expr(self, n: ast.Expr) -> None:
        self.ev(n.value)

    def s_assign(self, n: ast.Assign) -> None:
        val = self.ev(n.value)
        for t in n.targets:
            self.assign(t, val)

    def s_annassign(self, n: ast.AnnAssign) -> None:
        if n.value is not None:
            self.assign(n.target, self.ev(n.value))

    def assign(self, node: ast.expr, val: V) -> None:
        target: Any = node  # dispatched on its exact type below (mypy cannot narrow through ``tt``)
        tt = type(target)
        if tt is ast.Name:
            c = self.ctx
            self.ns[target.id] = val if c is D else V(val.v, mm(val.m, c))
        elif tt is ast.Subscript:
            container = self.ev(target.value)
            if type(target.slice) is ast.Slice:
                self.set_slice(container, target.slice, val)
            else:
                self.setitem(container, self.ev(target.slice), val)
        elif tt is ast.Tuple or tt is ast.List:
            self.unpack(target.elts, val)
        elif tt is ast.Starred:
            raise self.refuse("a starred assignment target must be in a tuple or list")
        else:  # pragma: no cover - the validator refuses attribute targets
            raise self.refuse(f"cannot assign to {tt.__name__}")

    def unpack(self, targets: list[ast.expr], val: V) -> None:
        elems = self.iter_elems(val)
        star = [i for i, t in enumerate(targets) if type(t) is ast.Starred]
        n = len(elems)
        if not star:
            if n != len(targets):
                if n > len(targets):
                    msg = f"too many values to unpack (expected {len(targets)})"
                else:
                    msg = f"not enough values to unpack (expected {len(targets)}, got {n})"
                raise self.err("ValueError", msg, self.shallow(val))
            for t, e in zip(targets, elems, strict=True):
                self.assign(t, e)
            return
        if len(star) > 1:
            raise self.refuse("multiple starred expressions in assignment")
        i = star[0]
        after = len(targets) - i - 1
        if n < len(targets) - 1:
            raise self.err(
                "ValueError",
                f"not enough values to unpack (expected at least {len(targets) - 1}, got {n})",
                self.shallow(val),
            )
        for t, e in zip(targets[:i], elems[:i], strict=True):
            self.assign(t, e)
        self.assign(cast(ast.Starred, targets[i]).value, V(VList(elems[i : n - after]), self.shallow(val)))
        for t, e in zip(targets[i + 1 :], elems[n - after :], strict=True):
            self.assign(t, e)

    def setitem(self, c: V, idx: V, val: V) -> None:
        v = c.v
        t = type(v)
        self.mutate_through(c)
        if t is VDict:
            k = self.hkey(idx)
            if k not in v:
                self.check_size(len(v) + 1, "dict")
                self.alloc_slots(1)
            v[k] = self.store(val)
            self.touch(v, self.kmeta(idx))
        elif t is VList:
            i = idx.v
            if type(i) is not int and type(i) is not bool:
                raise self.err(
                    "TypeError", f"list indices must be integers or slices, not {type_name(i)}", idx.m
                )
            try:
                v[i] = self.store(val)
            except IndexError:
                raise self.err("IndexError", "list assignment index out of range", mm(idx.m, v.sm)) from None
            self.touch(v, idx.m)
        else:
            raise self.err("TypeError", f"'{type_name(v)}' object does not support item assignment", c.m)

    def set_slice(self, c: V, sl: ast.Slice, val: V) -> None:
        v = c.v
        if type(v) is not VList:
            raise self.err("TypeError", f"'{type_name(v)}' object does not support slice assignment", c.m)
        self.mutate_through(c)
        s, sm = self.eval_slice(sl)
        elems = [self.store(e) for e in self.iter_elems(val)]
        self.check_size(len(v) + len(elems), "list")
        self.alloc_slots(len(elems))
        try:
            v[s] = elems
        except ValueError as e:
            raise self.py_err(e, sm) from None
        self.touch(v, mm(sm, self.shallow(val)))

    def s_augassign(self, n: ast.AugAssign) -> None:
        target = n.target
        op = type(n.op)
        if type(target) is ast.Name:
            cur = self.load_name(target.id)
            rhs = self.ev(n.value)
            new = self.inplace(op, cur, rhs)
            c = self.ctx
            self.ns[target.id] = new if c is D else V(new.v, mm(new.m, c))
        elif type(target) is ast.Subscript:
            container = self.ev(target.value)
            if type(target.slice) is ast.Slice:
                raise self.refuse("augmented assignment to a slice is not supported")
            idx = self.ev(target.slice)
            cur = self.subscript(container, idx)
            rhs = self.ev(n.value)
            self.setitem(container, idx, self.inplace(op, cur, rhs))
        else:  # pragma: no cover - validator
            raise self.refuse("unsupported augmented assignment target")

    def inplace(self, op: type[ast.operator], cur: V, rhs: V) -> V:
        v = cur.v
        t = type(v)
        if t is VList or t is VSet or t is VDict:
            self.mutate_through(cur)
        if t is VList and op is ast.Add:
            self.extend(v, rhs)
            return cur
        if t is VSet and op in _SETOPS and type(rhs.v) is VSet:
            res = getattr(set, _SETOPS[op])(v, rhs.v)
            v.clear()
            v.update(res)
            self.check_size(len(v), "set")
            self.touch(v, mm(rhs.m, rhs.v.sm))
            return cur
        if t is VDict and op is ast.BitOr:
            self.dict_update(v, rhs)
            return cur
        return self.binop(op, cur, rhs)

    def extend(self, lst: VList, src: V) -> None:
        elems = self.iter_elems(src)
        self.check_size(len(lst) + len(elems), "list")
        self.alloc_slots(len(elems))
        if self.ctx is D:
            lst.extend(elems)
        else:
            lst.extend([self.store(e) for e in elems])
        self.touch(lst, self.shallow(src))

    def dict_update(self, d: VDict, src: V) -> None:
        sv = src.v
        if type(sv) is VDict:
            base = self.shallow(src)
            for k, e in sv.items():
                d[k] = self.store(e if base is D else V(e.v, mm(e.m, base)))
            self.touch(d, base)
        else:
            for pair in self.iter_elems(src):
                items = self.iter_elems(pair)
                if len(items) != 2:
                    raise self.err(
                        "ValueError",
                        f"dictionary update sequence element has length {len(items)}; 2 is required",
                        pair.m,
                    )
                d[self.hkey(items[0])] = self.store(items[1])
                self.touch(d, self.kmeta(items[0]))
            self.touch(d, self.shallow(src))
        self.check_size(len(d), "dict")

    def s_if(self, n: ast.If) -> None:
        cond = self.ev(n.test)
        cm = self.shallow(cond)
        self.check_branch(cm)
        outer = self.enter_region(n, cm)
        try:
            if cond.v:
                self.exec_block(n.body)
            elif n.orelse:
                self.exec_block(n.orelse)
        finally:
            self.leave_region(outer)
        self.taint_written(n, cm)

    def s_for(self, n: ast.For) -> None:
        src = self.ev(n.iter)
        sm = self.shallow(src)
        self.check_branch(sm)
        outer = self.enter_region(n, sm)
        loop_ctx = self.ctx
        exit_taint = sm
        count = 0
        max_loop = self.max_loop
        target = n.target
        body = n.body
        simple = type(target) is ast.Name
        simple_name = target.id if type(target) is ast.Name else ""
        ns = self.ns
        try:
            for elem in self.iter_lazy(src):
                count += 1
                if count > max_loop:
                    raise self.limit(f"a loop ran more than {max_loop} iterations")
                if self.pc is not D:
                    loop_ctx = mm(loop_ctx, self.pc)
                self.ctx = loop_ctx
                if simple:
                    ns[simple_name] = elem if loop_ctx is D else V(elem.v, mm(elem.m, loop_ctx))
                else:
                    self.assign(target, elem)
                try:
                    self.exec_block(body)
                except _Break:
                    # The break was decided under jump_ctx: the state after the loop depends on it.
                    exit_taint = mm(exit_taint, self.jump_ctx)
                    break
                except _Continue:
                    exit_taint = mm(exit_taint, self.jump_ctx)
                    loop_ctx = mm(loop_ctx, self.jump_ctx)
            else:
                self.ctx = mm(loop_ctx, self.pc)
                if n.orelse:
                    self.exec_block(n.orelse)
        finally:
            self.leave_region(outer)
        self.taint_written(n, exit_taint)

    def s_try(self, n: ast.Try) -> None:
        """Whether the body raises, and where, may depend on any data the run has seen: with handlers, the
        body runs under everything seen so far (and whatever arrives while it runs), and so does the rest
        of the run (whichever way the try went)."""
        run_finally = True
        guarded = bool(n.handlers)
        if guarded:
            if self.seen is not D:
                self.check_branch(self.seen)
                self.raise_pc(self.seen)
            self.guarded += 1
        try:
            try:
                try:
                    self.exec_block(n.body)
                finally:
                    if guarded:
                        self.guarded -= 1
                        guarded = False
            except ProgErr as pe:
                handler = self.match_handler(n.handlers, pe)
                if handler is None:
                    raise
                em = pe.exc.m
                self.check_branch(em)
                self.raise_pc(em)
                self.taint_written(n, em)
                self.handling.append(pe)
                try:
                    if handler.name:
                        self.ns[handler.name] = self.store(pe.exc)
                    self.exec_block(handler.body)
                finally:
                    self.handling.pop()
                    if handler.name:
                        self.ns.pop(handler.name, None)
            else:
                if n.orelse:
                    self.exec_block(n.orelse)
        except RUN_ENDING:
            run_finally = False
            raise
        finally:
            if run_finally and n.finalbody:
                self.exec_block(n.finalbody)

    def match_handler(self, handlers: list[ast.ExceptHandler], pe: ProgErr) -> ast.ExceptHandler | None:
        cls = pe.exc.v.cls
        for h in handlers:
            if h.type is None:
                return h
            tv = self.ev(h.type)
            cands = [e.v for e in tv.v] if type(tv.v) is tuple else [tv.v]
            for c in cands:
                if type(c) is not ExcClass:
                    raise self.err(
                        "TypeError",
                        "catching classes that do not inherit from BaseException is not allowed",
                        tv.m,
                    )
                if cls.is_sub(c):
                    return h
        return None

    def s_raise(self, n: ast.Raise) -> None:
        if n.exc is None:
            if not self.handling:
                raise self.err("RuntimeError", "No active exception to reraise")
            pe = self.handling[-1]
            raise ProgErr(V(pe.exc.v, mm(pe.exc.m, self.ctx)), self.lineno)
        x = self.ev(n.exc)
        if n.cause is not None:
            self.ev(n.cause)
        v = x.v
        if type(v) is ExcClass:
            raise ProgErr(V(ExcValue(v, ()), mm(x.m, self.ctx)), self.lineno)
        if type(v) is ExcValue:
            raise ProgErr(V(v, mm(x.m, self.ctx)), self.lineno)
        # Raising any other value raises Exception(str(value)) so the PLLM sees the value.
        raise ProgErr(
            V(ExcValue(self.builtins["Exception"].v, (self.text_of(x),)), mm(self.eff(x), self.ctx)),
            self.lineno,
        )

    def s_assert(self, n: ast.Assert) -> None:
        cond = self.ev(n.test)
        cm = self.shallow(cond)
        self.check_branch(cm)
        if n.msg is not None:
            outer = self.enter_region(n, cm)  # the message runs only when the assert fails (or not)
            if cond.v:
                self.leave_region(outer)
        if not cond.v:
            if n.msg is not None:
                msg = self.ev(n.msg)
                raise ProgErr(
                    V(
                        ExcValue(self.builtins["AssertionError"].v, (self.text_of(msg),)),
                        mm(mm(cm, self.eff(msg)), self.ctx),
                    ),
                    self.lineno,
                )
            raise self.err("AssertionError", None, cm)

    def s_delete(self, n: ast.Delete) -> None:
        for t in n.targets:
            self.delete(t)

    def delete(self, node: ast.expr) -> None:
        t: Any = node  # dispatched on its exact type below (mypy cannot narrow through ``tt``)
        tt = type(t)
        if tt is ast.Name:
            if t.id not in self.ns:
                raise self.err("NameError", f"name '{t.id}' is not defined", self.absent.get(t.id, D))
            del self.ns[t.id]
        elif tt is ast.Subscript:
            c = self.ev(t.value)
            v = c.v
            self.mutate_through(c)
            if type(t.slice) is ast.Slice:
                if type(v) is not VList:
                    raise self.err("TypeError", f"'{type_name(v)}' object does not support item deletion")
                s, sm = self.eval_slice(t.slice)
                del v[s]
                self.touch(v, sm)
                return
            idx = self.ev(t.slice)
            if type(v) is VDict:
                k = self.hkey(idx)
                if k not in v:
                    raise self.err("KeyError", k, mm(self.kmeta(idx), v.sm))
                del v[k]
            elif type(v) is VList:
                i = idx.v
                if type(i) is not int and type(i) is not bool:
                    raise self.err(
                        "TypeError", f"list indices must be integers or slices, not {type_name(i)}", idx.m
                    )
                try:
                    del v[i]
                except IndexError:
                    raise self.err("IndexError", "list assignment index out of range", idx.m) from None
            else:
                raise self.err("TypeError", f"'{type_name(v)}' object does not support item deletion")
            self.touch(v, self.kmeta(idx))
        elif tt is ast.Tuple or tt is ast.List:
            for e in t.elts:
                self.delete(e)
        else:  # pragma: no cover - validator
            raise self.refuse("cannot delete this target")

    def s_pass(self, n: ast.Pass) -> None:
        pass

    def s_break(self, n: ast.Break) -> None:
        self.jump_ctx = self.ctx  # the context that decided to leave the loop
        raise _BREAK

    def s_continue(self, n: ast.Continue) -> None:
        self.jump_ctx = self.ctx
        raise _CONTINUE

    # ------------------------------------------------------------------------------------ expressions
    def ev(self, n: ast.expr) -> V:
        return EXPR[type(n)](self, n)

    def e_const(self, n: ast.Constant) -> V:
        return V(n.value)

    def e_name(self, n: ast.Name) -> V:
        return self.load_name(n.id)

    def load_name(self, name: str) -> V:
        x = self.ns.get(name)
        if x is not None:
            return x
        return self.load_global(name)

    def load_global(self, name: str) -> V:
        am = self.absent.get(name, D) if self.absent else D
        if name in self.tools:
            return V(ToolRef(name), am)
        b = self.builtins.get(name)
        if b is not None:
            return b if am is D else V(b.v, mm(b.m, am))
        if name in FORBIDDEN_NAMES:
            raise self.refuse(f"'{name}' is not available in this interpreter")
        raise self.err("NameError", f"name '{name}' is not defined", am)

    def e_attr(self, n: ast.Attribute) -> V:
        return self.get_attr(self.ev(n.value), n.attr)

    def get_attr(self, recv: V, name: str) -> V:
        v = recv.v
        t = type(v)
        getter = ATTRS.get(t, {}).get(name)
        if getter is not None:
            got: V = getter(self, recv)
            return got
        impl = METHODS.get(t, {}).get(name)
        if impl is not None:
            return V(BoundMethod(name, recv, impl), recv.m)
        if t is ModuleRef or t is TypeRef:
            a = v.attrs.get(name)
            if a is not None:
                if type(a) is str:  # a refusal message (datetime.now, ...)
                    raise self.refuse(a)
                return V(a, recv.m) if type(a) is not V else V(a.v, mm(a.m, recv.m))
        if t is VDict and name in v:  # parse_with_ai results are dicts: allow result.field
            e = v[name]
            return V(e.v, mm(mm(e.m, recv.m), v.sm))
        allowed = sorted(set(ATTRS.get(t, {})) | set(METHODS.get(t, {})))
        hint = f"; available: {', '.join(allowed)}" if allowed else ""
        # (for a dict, whether the key exists is part of its structure)
        raise self.err(
            "AttributeError", f"'{type_name(v)}' object has no attribute '{name}'{hint}", self.shallow(recv)
        )

    def e_subscript(self, n: ast.Subscript) -> V:
        c = self.ev(n.value)
        if type(n.slice) is ast.Slice:
            s, sm = self.eval_slice(n.slice)
            return self.get_slice(c, s, sm)
        return self.subscript(c, self.ev(n.slice))

    def subscript(self, c: V, idx: V) -> V:
        v = c.v
        t = type(v)
        if t is VDict:
            k = idx.v
            if type(k) is not str and type(k) is not int:
                k = self.hkey(idx)
            e = v.get(k)
            km = idx.m if type(k) is not tuple else self.kmeta(idx)
            if e is None:
                raise self.err("KeyError", k, mm(mm(c.m, v.sm), km))
            m = mm(mm(mm(e.m, c.m), v.sm), km)
            return V(e.v, m)
        if t is VList or t is tuple or t is str or t is range:
            i = idx.v
            if type(i) is not int and type(i) is not bool:
                raise self.err(
                    "TypeError",
                    f"{type_name(v)} indices must be integers or slices, not {type_name(i)}",
                    idx.m,
                )
            try:
                e = v[i]
            except IndexError:
                raise self.err(
                    "IndexError", f"{type_name(v)} index out of range", mm(self.shallow(c), idx.m)
                ) from None
            if t is VList:
                return V(e.v, mm(mm(mm(e.m, c.m), v.sm), idx.m))
            if t is tuple:
                return V(e.v, mm(mm(e.m, c.m), idx.m))
            return V(e, mm(c.m, idx.m))
        raise self.err("TypeError", f"'{type_name(v)}' object is not subscriptable", c.m)

    def eval_slice(self, sl: ast.Slice) -> tuple[slice, Meta]:
        parts: list[Any] = []
        m = D
        for p in (sl.lower, sl.upper, sl.step):
            if p is None:
                parts.append(None)
                continue
            x = self.ev(p)
            if x.v is not None and type(x.v) not in (int, bool):
                raise self.err("TypeError", "slice indices must be integers or None", x.m)
            parts.append(x.v)
            m = mm(m, x.m)
        if parts[2] == 0:
            raise self.err("ValueError", "slice step cannot be zero", m)
        return slice(*parts), m

    def get_slice(self, c: V, s: slice, sm: Meta) -> V:
        v = c.v
        t = type(v)
        m = mm(self.shallow(c), sm)
        if t is VList:
            r = VList(v[s])
            self.alloc_slots(len(r))
            return V(r, m)
        if t is tuple or t is range:
            return V(v[s], m)
        if t is str:
            return V(self.new_str(v[s]), m)
        raise self.err("TypeError", f"'{type_name(v)}' object is not subscriptable", c.m)

    def e_slice(self, n: ast.Slice) -> V:
        raise self.refuse("multi-dimensional slicing is not supported")

    def e_starred(self, n: ast.Starred) -> V:
        raise self.refuse("a starred expression is only allowed in a call, a display or an assignment target")

    # -- operators
    def e_binop(self, n: ast.BinOp) -> V:
        a = self.ev(n.left)
        b = self.ev(n.right)
        return self.binop(type(n.op), a, b)

    def binop(self, op: type[ast.operator], a: V, b: V) -> V:  # noqa: C901 - a table by operand types, hot path
        av = a.v
        bv = b.v
        ta = type(av)
        tb = type(bv)
        m = mm(a.m, b.m)
        if ta in _NUMS and tb in _NUMS:
            if ta is not float and tb is not float:
                self.int_guard(op, av, bv)
            try:
                r = _BINOPS[op](av, bv)
            except PY_ERRORS as e:
                raise self.py_err(e, m) from None
            tr = type(r)
            if tr is int:
                if not -0x1000 < r < 0x1000 and r.bit_length() > 4096:
                    # any big integer counts against the limits: its size, and its memory (~bits/8 bytes)
                    bits = r.bit_length()
                    if bits > self.limits.max_int_bits:
                        raise self.limit(f"integer result would exceed {self.limits.max_int_bits} bits")
                    self.alloc(bits >> 3)
            elif tr is complex:  # (-8) ** 0.5: there are no complex numbers in the subset
                raise self.err(
                    "ValueError",
                    "complex numbers are not supported (negative number raised to a fractional power)",
                    m,
                )
            return V(r, m)
        if ta is str:
            if tb is str and op is ast.Add:
                self.check_size(len(av) + len(bv), "string")
                return V(self.new_str(av + bv), m)
            if op is ast.Mod:
                return self.percent_format(a, b)
        if op is ast.Mult and (
            ta in (str, VList, tuple) and tb in (int, bool) or tb in (str, VList, tuple) and ta in (int, bool)
        ):
            seq, k = (a, bv) if ta in (str, VList, tuple) else (b, av)
            size = len(seq.v) * max(k, 0)
            self.check_size(size if size < 10**18 else 10**18, type_name(seq.v))  # (never print a huge int)
            if type(seq.v) is str:
                self.alloc(size)
            else:
                self.alloc_slots(size)
            r = seq.v * k if size else seq.v[:0]  # ([] * 10**100 would overflow a C size)
            if type(seq.v) is VList:
                return V(VList(r), mm(mm(self.shallow(seq), a.m), b.m))
            return V(r, m)
        if op is ast.Add:
            if ta is VList and tb is VList:
                self.check_size(len(av) + len(bv), "list")
                self.alloc_slots(len(av) + len(bv))
                r = VList(av)
                r.extend(bv)
                return V(r, mm(self.shallow(a), self.shallow(b)))
            if ta is tuple and tb is tuple:
                self.check_size(len(av) + len(bv), "tuple")
                self.alloc_slots(len(av) + len(bv))
                return V(av + bv, m)
        if ta is VSet and tb is VSet and op in _SETOPS:
            r = VSet(getattr(set, _SETOPS[op])(av, bv))
            r.sm = mm(av.sm, bv.sm)
            self.alloc_slots(len(r))
            return V(r, m)
        if ta is VDict and tb is VDict and op is ast.BitOr:
            r = VDict(av)
            r.sm = mm(av.sm, bv.sm)
            r.update(bv)
            self.check_size(len(r), "dict")
            self.alloc_slots(len(r))
            return V(r, m)
        if ta in CONTAINERS or tb in CONTAINERS or ta not in SCALARS or tb not in SCALARS:
            raise self.err(
                "TypeError",
                f"unsupported operand type(s) for {_OPSYM[op]}: '{type_name(av)}' and '{type_name(bv)}'",
                m,
            )
        try:
            r = _BINOPS[op](av, bv)
        except PY_ERRORS as e:
            raise self.py_err(e, m) from None
        if type(r) not in SCALARS:  # pragma: no cover - defensive
            raise self.err("TypeError", f"unsupported operand type(s) for {_OPSYM[op]}", m)
        if type(r) is str:
            self.new_str(r)
        return V(r, m)

    def int_guard(self, op: type[ast.operator], a: int, b: int) -> None:
        maxbits = self.limits.max_int_bits
        if op is ast.Pow:
            if b > 0 and a not in (0, 1, -1) and b * int(a).bit_length() > maxbits:
                raise self.limit(f"integer power result would exceed {maxbits} bits")
        elif op is ast.Mult:
            if int(a).bit_length() + int(b).bit_length() > maxbits:
                raise self.limit(f"integer product would exceed {maxbits} bits")
        elif op is ast.LShift and b > 0 and int(a).bit_length() + b > maxbits:
            raise self.limit(f"integer shift result would exceed {maxbits} bits")

    def check_spec(self, spec: str) -> None:
        """Refuse format specs whose width/precision would allocate more than the value-size limit."""
        for num in _SPEC_NUM.findall(spec):
            if len(num) > 7 or int(num) > self.max_size:
                raise self.limit(f"format width/precision {num[:12]} exceeds the maximum value size")

    def percent_format(self, a: V, b: V) -> V:
        fmt = a.v
        # The result's size is bounded before it is built: widths/precisions + the arguments' string forms
        # (a mapping's value once per field that names it; repr/ascii at most 10 characters per character).
        est = len(fmt)
        keyed: list[str | None] = []
        wide = False
        for m_ in _PCT_SPEC.finditer(fmt):
            for g in m_.groups():
                if g == "*":
                    raise self.refuse("'*' width in %-formatting is not supported")
                if g and (len(g) > 7 or int(g) > self.max_size):
                    raise self.limit("%-format width/precision exceeds the maximum value size")
                if g:
                    est += int(g)
            text = m_.group(0)
            keyed.append(text[2 : text.find(")")] if text.startswith("%(") else None)
            if text[-1] in "ra":
                wide = True

        def arg(x: V) -> Any:
            if type(x.v) in CONTAINERS or type(x.v) is ExcValue:
                return self.new_str(self.w.str(x))
            return x.v

        size = self.w.str_size
        bv = b.v
        if type(bv) is tuple:
            args: Any = tuple(arg(e) for e in bv)
            est += sum(size(e) for e in args)
        elif type(bv) is VDict:
            args = {k: arg(e) for k, e in bv.items()}
            big = max((size(e) for e in args.values()), default=0)
            for k in keyed:
                est += size(args[k]) if k is not None and k in args else big
        else:
            args = arg(b)
            est += size(args)
        m = mm(a.m, self.eff(b))
        if (est * 10 if wide else est) > self.max_size:
            raise self.limit(f"%-format result would exceed the maximum value size of {self.max_size}")
        try:
            r = fmt % args
        except PY_ERRORS as e:
            if "set_int_max_str_digits" in str(e):
                raise self.err(
                    "ValueError", "Exceeds the limit (4300 digits) for integer string conversion", m
                ) from None
            raise self.py_err(e, m) from None
        return V(self.new_str(r), m)

    def fmt_arg(self, x: V) -> Any:
        t = type(x.v)
        if t in CONTAINERS or t is ExcValue:
            return self.w.str(x)
        return x.v

    def format_value(self, x: V, spec: str, conv: int) -> str:
        """One f-string / str.format field: conversion (!r !s !a) then the format spec (size-checked; a long
        result counts against the allocation budget, so many fields cannot build a huge string)."""
        if spec:
            self.check_spec(spec)
        v = x.v
        t = type(v)
        if t in DATETIME_TYPES and len(spec) > 10_000:  # a datetime's spec is a strftime format
            raise self.limit("strftime format too long")
        try:
            if conv == 114:
                s: Any = self.w.repr(x)
            elif conv == 97:
                s = ascii(self.w.str(x))
            elif conv == 115 or not (t is str or t in _NUMS or t in DATETIME_TYPES):
                s = self.w.str(x)
            elif not spec:
                s = v if t is str else self.w.str(x)
            else:
                s = v
            if spec:
                s = format(s, spec)
        except PY_ERRORS as e:
            if "set_int_max_str_digits" in str(e):
                raise self.err(
                    "ValueError", "Exceeds the limit (4300 digits) for integer string conversion", x.m
                ) from None
            raise self.py_err(e, x.m) from None
        if len(s) > 256:
            self.check_size(len(s), "string")
            self.alloc(len(s))
        text: str = s
        return text

    def e_unaryop(self, n: ast.UnaryOp) -> V:
        x = self.ev(n.operand)
        op = type(n.op)
        if op is ast.Not:
            return V(not x.v, self.shallow(x))
        v = x.v
        if type(v) in _NUMS or (type(v) is timedelta and op is not ast.Invert):
            try:
                if op is ast.USub:
                    return V(-v, x.m)
                if op is ast.UAdd:
                    return V(+v, x.m)
                if type(v) is not float:
                    return V(~v, x.m)
            except PY_ERRORS as e:
                raise self.py_err(e, x.m) from None
        sym = {ast.USub: "-", ast.UAdd: "+", ast.Invert: "~"}[op]
        raise self.err("TypeError", f"bad operand type for unary {sym}: '{type_name(v)}'", x.m)

    def e_boolop(self, n: ast.BoolOp) -> V:
        is_and = type(n.op) is ast.And
        branching = n in self.prog.branching_boolops
        values = n.values
        m = D
        outer = self.ctx
        try:
            for i, e in enumerate(values):
                x = self.ev(e)
                if i == len(values) - 1:
                    return x if m is D else V(x.v, mm(x.m, m))
                sm = self.shallow(x)
                if branching:
                    self.check_branch(sm)
                if sm is not D:
                    # whether the later operands run is decided here (taken or not)
                    self.enter_region(n, sm)
                if bool(x.v) is not is_and:
                    return x if m is D else V(x.v, mm(x.m, m))
                m = mm(m, sm)
                self.ctx = mm(self.ctx, m)
        finally:
            self.leave_region(outer)
        raise AssertionError("unreachable")  # pragma: no cover

    def e_compare(self, n: ast.Compare) -> V:
        left = self.ev(n.left)
        m = D
        last = len(n.ops) - 1
        outer = self.ctx
        try:
            for i, (op, rn) in enumerate(zip(n.ops, n.comparators, strict=True)):
                right = self.ev(rn)
                r, cm = self.compare(type(op), left, right)
                m = mm(m, cm)
                if i < last and m is not D:
                    # ``a < b < f(x)``: whether the rest runs is decided here (taken or not)
                    if n in self.prog.branching_boolops:
                        self.check_branch(m)
                    self.enter_region(n, m)
                if not r:
                    return V(False, m)
                left = right
            return V(True, m)
        finally:
            if last:
                self.leave_region(outer)

    def compare(self, op: type[ast.cmpop], a: V, b: V) -> tuple[bool, Meta]:
        av = a.v
        bv = b.v
        f = _CMPOPS.get(op)
        if f is not None:
            ta = type(av)
            tb = type(bv)
            if ta in CONTAINERS or tb in CONTAINERS:
                pa, pb = self.plain(a), self.plain(b)
                m = mm(self.eff(a), self.eff(b))
            else:
                pa, pb = av, bv
                m = mm(a.m, b.m)
            try:
                return bool(f(pa, pb)), m
            except PY_ERRORS as e:
                raise self.py_err(e, m) from None
        if op is ast.In or op is ast.NotIn:
            r, m = self.contains(b, a)
            return (r if op is ast.In else not r), m
        # is / is not: identity for None/bools/containers, equality of same-typed scalars otherwise
        if av is None or bv is None or type(av) is bool or type(bv) is bool or type(av) in CONTAINERS:
            same = av is bv
        else:
            same = type(av) is type(bv) and av == bv
        return (same if op is ast.Is else not same), mm(self.shallow(a), self.shallow(b))

    def contains(self, c: V, x: V) -> tuple[bool, Meta]:
        v = c.v
        t = type(v)
        if t is str:
            if type(x.v) is not str:
                raise self.err(
                    "TypeError", f"'in <string>' requires string as left operand, not {type_name(x.v)}", x.m
                )
            return x.v in v, mm(c.m, x.m)
        if t is VDict or t is VSet:
            return self.hkey(x) in v, mm(mm(c.m, v.sm), self.kmeta(x))
        if t is VList or t is tuple:
            # Walker.index: bounded (a long string repeated a million times costs a million comparisons)
            found = self.w.index(v, x) >= 0
            return found, mm(self.eff(c), self.eff(x))
        if t is range:
            # Python scans a range element by element for anything but an int: decide it in O(1)
            xv = x.v
            tx = type(xv)
            if tx is int or tx is bool:
                found = xv in v
            elif tx is float:
                found = xv.is_integer() and int(xv) in v
            else:
                found = False
            return found, mm(c.m, x.m)
        raise self.err("TypeError", f"argument of type '{type_name(v)}' is not iterable", c.m)

    def e_ifexp(self, n: ast.IfExp) -> V:
        cond = self.ev(n.test)
        cm = self.shallow(cond)
        self.check_branch(cm)
        outer = self.enter_region(n, cm)
        try:
            x = self.ev(n.body if cond.v else n.orelse)
        finally:
            self.leave_region(outer)
        return x if cm is D else V(x.v, mm(x.m, cm))

    # -- displays
    def e_list(self, n: ast.List) -> V:
        items = self.elts(n.elts)
        r = VList(items)
        if self.arity is not D:
            r.sm = self.arity
        return V(r)

    def e_tuple(self, n: ast.Tuple) -> V:
        items = self.elts(n.elts)
        return V(tuple(items), self.arity)

    def elts(self, nodes: list[ast.expr]) -> list[V]:
        """The display's elements; ``self.arity`` is left as the meta of how many there are (the starred
        sources' shapes)."""
        out = []
        am = D
        for e in nodes:
            if type(e) is ast.Starred:
                src = self.ev(e.value)
                out.extend(self.iter_elems(src))
                am = mm(am, self.shallow(src))
            else:
                out.append(self.ev(e))
        if len(out) > 64:
            self.check_size(len(out), "display")
            self.alloc_slots(len(out))
        self.arity = am
        return out

    def e_set(self, n: ast.Set) -> V:
        s = VSet()
        items = self.elts(n.elts)
        m = self.arity
        for x in items:
            s.add(self.hkey(x))
            m = mm(m, self.eff(x))
        if m is not D:
            s.sm = m
        return V(s)

    def e_dict(self, n: ast.Dict) -> V:
        d = VDict()
        km = D
        for kn, vn in zip(n.keys, n.values, strict=True):
            if kn is None:
                src = self.ev(vn)
                if type(src.v) is not VDict:
                    raise self.err("TypeError", f"'{type_name(src.v)}' object is not a mapping", src.m)
                self.dict_update(d, src)
                continue
            k = self.ev(kn)
            val = self.ev(vn)
            d[self.hkey(k)] = val
            if k.m is not D or type(k.v) is tuple:
                km = mm(km, self.eff(k))
        if km is not D:
            d.sm = mm(d.sm, km)
        if len(d) > 64:
            self.check_size(len(d), "dict")
            self.alloc_slots(len(d))
        return V(d)

    def e_joinedstr(self, n: ast.JoinedStr) -> V:
        parts: list[Any] = []
        m = D
        p: Any  # an ast.Constant (its str) or an ast.FormattedValue, told apart by exact type below
        for p in n.values:
            if type(p) is ast.Constant:
                parts.append(p.value)
                continue
            x = self.ev(p.value)
            spec = ""
            if p.format_spec is not None:
                sv = self.ev(p.format_spec)
                spec = sv.v
                m = mm(m, sv.m)
            parts.append(self.format_value(x, spec, p.conversion))
            m = mm(m, self.eff(x))
        s = "".join(parts)
        if len(s) > 256:
            self.check_size(len(s), "string")
            self.alloc(len(s))
        return V(s, m)

    # -- comprehensions
    def e_listcomp(self, n: ast.ListComp) -> V:
        out = VList()
        sm = self.comprehension(n, lambda: out.append(self.ev(n.elt)))
        if sm is not D:
            out.sm = sm
        return V(out)

    def e_setcomp(self, n: ast.SetComp) -> V:
        out = VSet()
        metas = [D]

        def add() -> None:
            x = self.ev(n.elt)
            out.add(self.hkey(x))
            metas[0] = mm(metas[0], self.eff(x))

        sm = self.comprehension(n, add)
        sm = mm(sm, metas[0])
        if sm is not D:
            out.sm = sm
        return V(out)

    def e_dictcomp(self, n: ast.DictComp) -> V:
        out = VDict()
        metas = [D]

        def add() -> None:
            k = self.ev(n.key)
            val = self.ev(n.value)
            out[self.hkey(k)] = val
            if k.m is not D or type(k.v) is tuple:
                metas[0] = mm(metas[0], self.eff(k))

        sm = self.comprehension(n, add)
        sm = mm(sm, metas[0])
        if sm is not D:
            out.sm = sm
        return V(out)

    def comprehension(
        self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp | ast.DictComp, emit: Any
    ) -> Meta:
        """Run the generators, calling ``emit`` per element; returns the structure meta of the result
        (iteration sources and filter conditions). Comprehension variables do not leak."""
        gens = node.generators
        names: set[str] = set()
        for g in gens:
            for t in ast.walk(g.target):
                if type(t) is ast.Name:
                    names.add(t.id)
        saved = {k: self.ns.get(k) for k in names}
        outer = self.ctx
        acc = [D]
        produced = [0]
        try:
            self._gen(node, gens, 0, emit, acc, produced)
        finally:
            self.leave_region(outer)
            for k, x in saved.items():
                if x is None:
                    self.ns.pop(k, None)
                else:
                    self.ns[k] = x
        return acc[0]

    def _gen(
        self,
        node: ast.expr,
        gens: list[ast.comprehension],
        i: int,
        emit: Any,
        acc: list[Any],
        produced: list[Any],
    ) -> None:
        g = gens[i]
        src = self.ev(g.iter)
        sm = self.shallow(src)
        self.check_branch(sm)
        acc[0] = mm(acc[0], sm)
        self.enter_region(node, sm)
        level_ctx = self.ctx
        count = 0
        last = i == len(gens) - 1
        for elem in self.iter_lazy(src):
            count += 1
            if count > self.max_loop:
                raise self.limit(f"a comprehension ran more than {self.max_loop} iterations")
            self.tick()
            self.ctx = level_ctx if self.pc is D else mm(level_ctx, self.pc)
            self.assign(g.target, elem)
            ok = True
            for cond in g.ifs:
                c = self.ev(cond)
                cm = self.shallow(c)
                self.check_branch(cm)
                acc[0] = mm(acc[0], cm)
                self.enter_region(node, cm)
                if not c.v:
                    ok = False
                    break
            if not ok:
                continue
            if last:
                produced[0] += 1
                if produced[0] > self.max_size:
                    raise self.limit("comprehension result too large")
                self.alloc_slots(1)
                emit()
            else:
                self._gen(node, gens, i + 1, emit, acc, produced)
        self.ctx = level_ctx if self.pc is D else mm(level_ctx, self.pc)

    # -- calls
    def e_call(self, n: ast.Call) -> V:
        f = n.func
        if type(f) is ast.Attribute:
            recv = self.ev(f.value)
            args, kwargs, kwm = self.call_args(n)
            return self.call_method(recv, f.attr, args, kwargs, kwm)
        if type(f) is ast.Name:
            name = f.id
            callee = self.ns.get(name)
            if callee is None:
                if name in self.tools and name not in self.absent:
                    args, kwargs, kwm = self.call_args(n)
                    return self.call_tool(name, args, kwargs, kwm)
                callee = self.load_global(name)
        else:
            callee = self.ev(f)
        args, kwargs, kwm = self.call_args(n)
        return self.call_value(callee, args, kwargs, kwm)

    def call_args(self, n: ast.Call) -> tuple[list[V], dict[str, V], Meta]:
        """Positional and keyword arguments, plus the meta of keyword names taken from data (``**src``)."""
        kwm = D
        args: list[V] = []
        for a in n.args:
            if type(a) is ast.Starred:
                src = self.ev(a.value)
                args.extend(self.iter_elems(src))
                kwm = mm(kwm, self.shallow(src))
            else:
                args.append(self.ev(a))
        kwargs: dict[str, V] = {}
        for kw in n.keywords:
            if kw.arg is None:
                src = self.ev(kw.value)
                if type(src.v) is not VDict:
                    raise self.err(
                        "TypeError", f"argument after ** must be a mapping, not {type_name(src.v)}", src.m
                    )
                base = self.shallow(src)
                kwm = mm(kwm, base)
                for k, e in src.v.items():
                    if type(k) is not str:
                        raise self.err("TypeError", "keywords must be strings", base)
                    if k in kwargs:
                        raise self.err("TypeError", "got multiple values for a keyword argument", kwm)
                    kwargs[k] = V(e.v, mm(e.m, base))
            else:
                if kw.arg in kwargs:
                    raise self.err("TypeError", f"got multiple values for keyword argument '{kw.arg}'", kwm)
                kwargs[kw.arg] = self.ev(kw.value)
        return args, kwargs, kwm

    def call_method(self, recv: V, name: str, args: list[V], kwargs: dict[str, V], kwm: Meta = D) -> V:
        t = type(recv.v)
        table = METHODS.get(t)
        impl = table.get(name) if table is not None else None
        if impl is None:
            if t is VDict:
                # ``d.f(...)`` would call whatever the dict holds (a tool, a bound method): the program's
                # text must show which callable it calls.
                raise self.refuse(
                    f"calling a dict entry as a method ('.{name}(...)') is not supported; "
                    f"write {name} = d['{name}'] and call {name}(...)"
                )
            return self.call_value(self.get_attr(recv, name), args, kwargs, kwm)
        if name in MUTATING_METHODS and (t is VList or t is VDict or t is VSet):
            self.mutate_through(recv)
            if kwm is not D:  # ``d.update(**src)``: the keys come from src
                self.touch(recv.v, kwm)
        outer = self.ctx
        if kwm is not D:  # everything the call does or raises depends on its shape
            self.ctx = mm(outer, kwm)
        try:
            r = impl(self, recv, args, kwargs)
        except PY_ERRORS as e:
            raise self.py_err(e, mm(self.args_meta(recv, args, kwargs), kwm)) from None
        finally:
            self.ctx = outer if self.pc is D else mm(outer, self.pc)
        return r if kwm is D else self.with_kwm(r, kwm)

    def with_kwm(self, r: V, kwm: Meta) -> V:
        """A result computed with keyword names taken from data (``**src``) depends on them."""
        if type(r.v) in (VList, VDict, VSet):
            r.v.sm = mm(r.v.sm, kwm)
        return V(r.v, mm(r.m, kwm))

    def call_key(self, key: V, e: V) -> V:
        """A ``key=`` function of sorted/min/max/list.sort: built-in functions, types and unbound methods
        only (a tool or a bound method would run with effects in an order chosen by the data)."""
        f = key.v
        if key.m is not D:
            self.check_branch(key.m)
            self.raise_pc(key.m)
        if type(f) is ToolRef or (
            type(f) is BoundMethod and (f.recv is not None or f.name in MUTATING_METHODS)
        ):
            raise self.refuse(
                "key= must be a built-in function, a type or an unbound method such as str.lower "
                "(not a tool or a bound method)"
            )
        return self.call_value(key, [e], {})

    def args_meta(self, recv: V | None, args: list[V], kwargs: dict[str, V]) -> Meta:
        m = self.shallow(recv) if recv is not None else D
        for a in args:
            m = mm(m, self.shallow(a))
        for a in kwargs.values():
            m = mm(m, self.shallow(a))
        return m

    def call_value(self, fv: V, args: list[V], kwargs: dict[str, V], kwm: Meta = D) -> V:
        f = fv.v
        t = type(f)
        if fv.m is not D:
            # The callee was chosen by data (``{"pay": send_money}[s](...)``, a ternary, a variable
            # assigned under a branch): calling it is a branch on that data.
            self.check_branch(fv.m)
            self.raise_pc(fv.m)
        if t is ToolRef:
            r = self.call_tool(f.name, args, kwargs, kwm)
        elif t is BoundMethod and f.recv is None:
            if not args:
                raise self.err("TypeError", f"unbound method {f.name}() needs an argument")
            r = self.call_method(args[0], f.name, args[1:], kwargs, kwm)
        elif t is BuiltinFn or t is TypeRef:
            impl = f.impl
            if impl is None:
                raise self.err("TypeError", f"cannot create '{f.name}' instances")
            outer = self.ctx
            if kwm is not D:  # everything the call does or raises depends on its shape
                self.ctx = mm(outer, kwm)
            try:
                r = impl(self, args, kwargs)
            except PY_ERRORS as e:
                raise self.py_err(e, mm(self.args_meta(None, args, kwargs), kwm)) from None
            finally:
                self.ctx = outer if self.pc is D else mm(outer, self.pc)
            if kwm is not D:
                r = self.with_kwm(r, kwm)
        elif t is BoundMethod:
            r = self.call_method(f.recv, f.name, args, kwargs, kwm)
        elif t is ExcClass:
            if kwargs:
                raise self.err("TypeError", f"{f.name}() takes no keyword arguments", kwm)
            m = kwm
            for a in args:
                m = mm(m, self.eff(a))
            pargs = tuple(
                a.v if type(a.v) in SCALARS and type(a.v) is not ExcValue else self.text_of(a) for a in args
            )
            return V(ExcValue(f, pargs), mm(m, fv.m))
        else:
            raise self.err("TypeError", f"'{type_name(f)}' object is not callable", fv.m)
        if fv.m is not D:
            r = V(r.v, mm(r.m, fv.m))
        return r

    def call_tool(self, name: str, args: list[V], kwargs: dict[str, V], kwm: Meta = D) -> V:
        spec = self.tools[name]
        params = list(spec.params)
        listed = ", ".join(params) or "(none)"
        # A bad signature is the program's fault, but with ``**data`` the names come from the data: the
        # message then names only what the program and the tool declare, and carries the data's meta.
        em = mm(kwm, self.ctx)
        if len(args) > len(params):
            raise InterpreterError(
                "runtime",
                f"tool {name} takes at most {len(params)} positional argument(s) but "
                f"{len(args)} were given; parameters are: {listed}",
                self.lineno,
                em,
            )
        bound = dict(zip(params, args, strict=False))
        for k, a in kwargs.items():
            if k not in params:
                what = "an argument whose name came from data" if kwm is not D else k
                raise InterpreterError(
                    "runtime",
                    f"tool {name} has no parameter {what}; parameters are: {listed}",
                    self.lineno,
                    em,
                )
            if k in bound:
                raise InterpreterError(
                    "runtime", f"tool {name} got multiple values for parameter {k}", self.lineno, em
                )
            bound[k] = a
        missing = [r for r in spec.required if r not in bound]
        if missing:
            raise InterpreterError(
                "runtime",
                f"tool {name} is missing required parameter(s): {', '.join(missing)}; "
                f"parameters are: {listed}",
                self.lineno,
                em,
            )
        ctx = mm(self.ctx, kwm)
        call_args: dict[str, ValueWithMeta] = {}
        all_meta = D
        for p in params:
            arg = bound.get(p)
            if arg is None:
                continue
            value, m = self.w.json_meta(arg)
            m = mm(m, ctx)
            all_meta = mm(all_meta, m)
            call_args[p] = ValueWithMeta(value, m)
        index = self.n_calls
        self.n_calls += 1
        t0 = perf_counter()
        try:
            result = self.host.call_tool(name, call_args, index)
        except ToolError as e:
            meta = norm(e.meta) if e.meta is not None else all_meta
            self.saw(meta)
            exc = ExcValue(self.builtins["ToolError"].v, (str(e.message),))
            raise ProgErr(V(exc, mm(meta, self.ctx)), self.lineno) from None
        except Suspend as s:
            if s.tool_name is None:
                s.tool_name = name
            if s.kwargs is None:
                s.kwargs = call_args
            if s.call_index is None:
                s.call_index = index
            s.context_meta = ctx  # the call happens under this context (also with no arguments)
            raise
        finally:
            self.deadline += perf_counter() - t0
            self.w.deadline = self.deadline
        if not isinstance(result, ValueWithMeta):
            raise InterpreterError(
                "internal",
                f"host.call_tool({name!r}) returned {type(result).__name__}, expected ValueWithMeta",
                self.lineno,
            )
        updates = getattr(self.host, "last_arg_meta", None)
        if updates:
            self.apply_arg_meta(bound, updates)
        meta = norm(result.meta)
        self.saw(meta)
        return self.w.wrap(result.value, meta)

    def apply_arg_meta(self, bound: dict[str, V], updates: dict[str, Meta]) -> None:
        """SQRT ``x.F`` targets: the policy rewrote the metadata of the variable passed as argument x.

        The program's names that hold the argument are rebound to a new V: V objects are shared (by
        aliases, containers, and built-in values such as ``str`` that every run uses) and never mutated.
        """
        for p, meta in updates.items():
            a = bound.get(p)
            if a is None or not isinstance(meta, Meta):
                continue
            meta = norm(meta)
            self.saw(meta)
            for name, x in list(self.ns.items()):
                if x is a:
                    self.ns[name] = V(a.v, meta)


STMT: dict[type[ast.stmt], Callable[[Interp, Any], None]] = {
    ast.Expr: Interp.s_expr,
    ast.Assign: Interp.s_assign,
    ast.AugAssign: Interp.s_augassign,
    ast.AnnAssign: Interp.s_annassign,
    ast.If: Interp.s_if,
    ast.For: Interp.s_for,
    ast.Try: Interp.s_try,
    ast.Raise: Interp.s_raise,
    ast.Pass: Interp.s_pass,
    ast.Break: Interp.s_break,
    ast.Continue: Interp.s_continue,
    ast.Assert: Interp.s_assert,
    ast.Delete: Interp.s_delete,
}
EXPR: dict[type[ast.expr], Callable[[Interp, Any], V]] = {
    ast.Constant: Interp.e_const,
    ast.Name: Interp.e_name,
    ast.Attribute: Interp.e_attr,
    ast.Subscript: Interp.e_subscript,
    ast.Slice: Interp.e_slice,
    ast.Starred: Interp.e_starred,
    ast.BinOp: Interp.e_binop,
    ast.UnaryOp: Interp.e_unaryop,
    ast.BoolOp: Interp.e_boolop,
    ast.Compare: Interp.e_compare,
    ast.IfExp: Interp.e_ifexp,
    ast.Call: Interp.e_call,
    ast.List: Interp.e_list,
    ast.Tuple: Interp.e_tuple,
    ast.Set: Interp.e_set,
    ast.Dict: Interp.e_dict,
    ast.JoinedStr: Interp.e_joinedstr,
    ast.ListComp: Interp.e_listcomp,
    ast.GeneratorExp: Interp.e_listcomp,
    ast.SetComp: Interp.e_setcomp,
    ast.DictComp: Interp.e_dictcomp,
}
