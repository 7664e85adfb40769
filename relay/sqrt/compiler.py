"""Semantic checks (let names, set algebra, metadata writes) and compilation of the AST into Python closures.

Every predicate becomes ``fn(env) -> bool``, every set expression ``fn(env) -> set`` (constant-folded when
static), every update ``fn(env) -> None``. ``let`` is a by-name macro: its body is compiled at each use
site for that site's context (check rule / result block / session block), memoised per (name, context).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from relay.meta import (
    DEFAULT_META,
    EMPTY,
    UNIVERSAL,
    Meta,
    MetaSet,
    ValueWithMeta,
    set_intersect,
    set_minus,
    set_union,
    set_xor,
)
from relay.regex import ClientPattern

from . import ast as A
from .errors import PolicyCompileError
from .parser import matcher_set, source_line
from .values import (
    MatcherSet,
    set_contains,
    set_equals,
    set_overlaps,
    set_subset,
    set_superset,
    set_with,
    set_without,
    values_equal,
)

# Contexts of a use site: which metadata `@F` denotes and what may be written.
CHECK = "check"
RESULT = "result"
SESSION_BEFORE = "session_before"
SESSION_AFTER = "session_after"

META_FIELDS = ("producers", "consumers", "tags")
# Before the tool ran, @result fields are {}.
NO_RESULT_META = Meta(EMPTY, EMPTY, EMPTY)


class Env:
    """Mutable evaluation state of one phase of one tool call."""

    __slots__ = ("args", "session", "result", "result_value", "arg_updates", "dual", "control")

    def __init__(
        self,
        args: dict[str, ValueWithMeta],
        session: Meta,
        result: Meta,
        result_value: Any,
        dual: bool,
        control: Meta | None = None,
    ) -> None:
        self.args = args
        self.session = session
        self.result = result
        self.result_value = result_value
        self.arg_updates: dict[str, Meta] = {}
        self.dual = dual
        # The dual-LLM program's control context at the call: whether this tool is called at all may
        # depend on it. Every argument already carries it; ``@args`` aggregations include it so that a call
        # without arguments shows it too. None when there is none.
        self.control = control


@dataclass
class SetCode:
    fn: Callable[[Env], Any]
    static: Any = None  # the constant value when ``is_static``
    is_static: bool = False
    has_matchers: bool = False


@dataclass
class CompiledRule:
    level: str
    verdict: str
    text: str
    description: str | None
    fn: Callable[[Env], bool] | None  # None = always

    def entry(self, policy: str) -> dict[str, Any]:
        return {
            "policy": policy,
            "rule": self.text,
            "enforcement": self.level,
            "description": self.description,
        }


@dataclass
class CompiledStmt:
    fn: Callable[[Env], None]
    description: str | None
    line: int
    col: int


@dataclass
class CompiledTool:
    """One policy (tool block or shorthand) of the program."""

    display: str
    tool_id: str
    is_regex: bool
    regex: ClientPattern | None  # relay.regex: RE2, linear time
    priority: int
    description: str | None
    index: int
    hard_deny: list[CompiledRule] = field(default_factory=list)
    hard_allow: list[CompiledRule] = field(default_factory=list)
    soft: list[CompiledRule] = field(default_factory=list)
    has_allow: bool = False
    has_hard_allow: bool = False
    before: list[CompiledStmt] = field(default_factory=list)
    result: list[CompiledStmt] = field(default_factory=list)
    after: list[CompiledStmt] = field(default_factory=list)

    hard_deny_fns: tuple[Callable[[Env], bool], ...] = ()
    hard_allow_fns: tuple[Callable[[Env], bool], ...] = ()
    soft_fns: tuple[Callable[[Env], bool], ...] = ()
    has_rules: bool = False

    def finalize(self) -> None:
        """Precompute the rule-condition tuples scanned by the engine (``always`` = a constant-true function)."""
        self.hard_deny_fns = tuple(r.fn or _always for r in self.hard_deny)
        self.hard_allow_fns = tuple(r.fn or _always for r in self.hard_allow)
        self.soft_fns = tuple(r.fn or _always for r in self.soft)
        self.has_rules = bool(self.hard_deny or self.hard_allow or self.soft)


def _always(env: Env) -> bool:
    return True


def _constant(value: Any) -> Callable[[Env], Any]:
    """The code of a constant-folded set expression."""
    return lambda env: value


def _meta_setter(name: str) -> Callable[[Meta, Any], Meta]:
    if name == "tags":
        return lambda m, v: Meta(m.producers, m.consumers, v)
    if name == "producers":
        return lambda m, v: Meta(v, m.consumers, m.tags)
    return lambda m, v: Meta(m.producers, v, m.tags)


_SETTERS = {f: _meta_setter(f) for f in META_FIELDS}
_GETTERS = {f: attrgetter(f) for f in META_FIELDS}
_ASSIGN = {
    "=": None,
    "|=": set_union,
    "&=": set_intersect,
    "-=": set_minus,
    "^=": set_xor,
}
_SETOPS = {"union": set_union, "intersect": set_intersect, "minus": set_minus, "xor": set_xor}
_OPWORD = {"union": "|", "intersect": "&", "minus": "-", "xor": "^"}


def _chain(n: A.Node, t: str) -> list[A.Node]:
    """Operands of a left-nested chain of the same logical operator, in order."""
    out = []
    while n.t == t:
        out.append(n.a[1])
        n = n.a[0]
    out.append(n)
    out.reverse()
    return out


def _setop_chain(n: A.Node, op: str) -> list[A.Node]:
    out = []
    while n.t == "setop" and n.a[0] == op:
        out.append(n.a[2])
        n = n.a[1]
    out.append(n)
    out.reverse()
    return out


class Compiler:
    def __init__(self, program: A.Program) -> None:
        self.program = program
        self.source = program.source
        self.lets: dict[str, A.LetDecl] = {}
        for let in program.lets:
            self.lets[let.name] = let  # a later declaration replaces an earlier one (§4.1)
        self._kinds: dict[str, str] = {}
        self._memo: dict[tuple[str, str, str], Any] = {}  # (pred|set, let name, context) -> code

    # ------------------------------------------------------------ errors
    def error(self, message: str, line: int, col: int) -> PolicyCompileError:
        return PolicyCompileError(message, line, col, source_line(self.source, line))

    # ------------------------------------------------------------ let kinds
    def let_kind(self, name: str, node: A.Node, stack: tuple[str, ...] = ()) -> str:
        """'pred', 'set' or 'domain' for a let reference; raises on unknown names and cycles."""
        if name in self._kinds:
            return self._kinds[name]
        let = self.lets.get(name)
        if let is None:
            if name in ("true", "false"):
                return "pred"
            raise self.error(
                f"unknown name '{name}' (there is no `let {name} = …;` in the policy)", node.line, node.col
            )
        if name in stack:
            cycle = " -> ".join(stack[stack.index(name) :] + (name,))
            raise self.error(f"cyclic let definitions: {cycle}", node.line, node.col)
        body = let.body
        if isinstance(body, A.Domain):
            kind = "domain"
        elif body.kind in (A.PRED, A.BOOL):
            kind = "pred"
        elif body.kind in (A.SET, A.ACC):
            kind = "set"
        else:  # REF
            kind = self.let_kind(body.a[0], body, stack + (name,))
        self._kinds[name] = kind
        return kind

    @staticmethod
    def _refs(node: A.Node, out: list[A.Node]) -> list[A.Node]:
        """All ``ref`` nodes inside an expression (iteratively; trees may be deep)."""
        stack: list[Any] = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, A.Node):
                if n.t == "ref":
                    out.append(n)
                else:
                    stack.extend(x for x in n.a if isinstance(x, A.Node))
        return out

    def check_cycles(self) -> None:
        deps = {
            name: self._refs(let.body, []) if isinstance(let.body, A.Node) else []
            for name, let in self.lets.items()
        }
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done

        for root in self.lets:
            if state.get(root):
                continue
            path = [root]
            state[root] = 1
            iters = [iter(deps[root])]
            while iters:
                ref = next(iters[-1], None)
                if ref is None:
                    state[path.pop()] = 2
                    iters.pop()
                    continue
                name = ref.a[0]
                if name not in self.lets:
                    continue
                if state.get(name) == 1:
                    cycle = " -> ".join(path[path.index(name) :] + [name])
                    raise self.error(f"cyclic let definitions: {cycle}", ref.line, ref.col)
                if not state.get(name):
                    state[name] = 1
                    path.append(name)
                    iters.append(iter(deps[name]))

    def check_let_bodies(self) -> None:
        """Validate every let body (names, cycles, kinds, matcher algebra), used or not."""
        self.check_cycles()
        for name, let in self.lets.items():
            kind = self.let_kind(name, A.Node("ref", (name,), A.REF, let.line, let.col, 0, 0))
            if not isinstance(let.body, A.Node) or let.body.kind == A.REF:
                continue
            if kind == "pred":
                self.pred(let.body, CHECK)
            elif kind == "set":
                self.set(let.body, CHECK)

    # ------------------------------------------------------------ predicates
    def pred(self, n: A.Node, ctx: str) -> Callable[[Env], bool]:  # noqa: C901 - one case per node type
        t = n.t
        if t in ("or", "and"):
            # a left-nested chain `a or b or c ...` becomes one loop (no deep closure nesting)
            parts = [self.pred(x, ctx) for x in _chain(n, t)]
            if len(parts) == 2:
                a, b = parts
                return (lambda env: a(env) or b(env)) if t == "or" else (lambda env: a(env) and b(env))
            if t == "or":

                def any_of(env: Env) -> bool:
                    for p in parts:  # noqa: SIM110 - a plain loop: any() over a generator is ~3x slower here
                        if p(env):
                            return True
                    return False

                return any_of

            def all_of(env: Env) -> bool:
                for p in parts:  # noqa: SIM110 - a plain loop: all() over a generator is ~3x slower here
                    if not p(env):
                        return False
                return True

            return all_of
        if t == "not":
            a = self.pred(n.a[0], ctx)
            return lambda env: not a(env)
        if t == "bool":
            value = n.a[0]
            return (lambda env: True) if value else (lambda env: False)
        if t == "ref":
            return self.pred_ref(n, ctx)
        if t == "in":
            return self.c_in(n, ctx)
        if t == "veq":
            a, b = self.value(n.a[0], ctx), self.value(n.a[1], ctx)
            return lambda env: values_equal(a(env), b(env))
        if t in ("overlaps", "subset", "superset", "seteq"):
            return self.c_set(t, n, ctx)
        if t == "isempty":
            operand = self.set(n.a[0], ctx).fn
            return lambda env: (s := operand(env)) is not UNIVERSAL and not s
        if t == "isuniversal":
            operand = self.set(n.a[0], ctx).fn
            return lambda env: operand(env) is UNIVERSAL
        raise self.error(f"expected a condition, found {t}", n.line, n.col)  # pragma: no cover

    def pred_ref(self, n: A.Node, ctx: str) -> Callable[[Env], bool]:
        name = n.a[0]
        if name in ("true", "false"):  # §4.1: the boolean constants, even if a let has that name
            return (lambda env: True) if name == "true" else (lambda env: False)
        kind = self.let_kind(name, n)
        if kind != "pred":
            what = "a set" if kind == "set" else "a type domain"
            raise self.error(f"'{name}' is {what}, but a condition is expected here", n.line, n.col)
        key = ("pred", name, ctx)
        fn = self._memo.get(key)
        if fn is None:
            body = self.lets[name].body
            assert isinstance(body, A.Node)  # a domain's kind is "domain", refused above
            fn = self.pred(body, ctx)
            self._memo[key] = fn
        return fn

    def c_in(self, n: A.Node, ctx: str) -> Callable[[Env], bool]:
        left = self.value(n.a[0], ctx)
        right = self.set(n.a[1], ctx)
        if right.is_static:
            s = right.static
            if s is UNIVERSAL:
                return lambda env: True
            if type(s) is MatcherSet:
                contains = s.contains
                return lambda env: contains(left(env))
            return lambda env: (v := left(env)).__class__ is str and v in s
        rf = right.fn
        return lambda env: set_contains(rf(env), left(env))

    def c_set(self, t: str, n: A.Node, ctx: str) -> Callable[[Env], bool]:
        left = self.set(n.a[0], ctx).fn
        right = self.set(n.a[1], ctx)
        if right.is_static and type(right.static) is frozenset:
            b = right.static
            if t == "overlaps":
                nonempty = bool(b)
                return lambda env: nonempty if (a := left(env)) is UNIVERSAL else not a.isdisjoint(b)
            if t == "subset":
                return lambda env: False if (a := left(env)) is UNIVERSAL else a <= b
            if t == "superset":
                return lambda env: True if (a := left(env)) is UNIVERSAL else a >= b
            return lambda env: False if (a := left(env)) is UNIVERSAL else a == b
        op = {"overlaps": set_overlaps, "subset": set_subset, "superset": set_superset, "seteq": set_equals}[
            t
        ]
        if right.is_static:
            b = right.static
            return lambda env: op(left(env), b)
        rf = right.fn
        return lambda env: op(left(env), rf(env))

    # ------------------------------------------------------------ values
    def value(self, n: A.Node, ctx: str) -> Callable[[Env], Any]:
        t = n.t
        if t == "argval":
            name = n.a[0]
            return lambda env: a.value if (a := env.args.get(name)) is not None else None
        if t == "resval":
            return lambda env: env.result_value
        if t == "sesval":
            return lambda env: None
        if t in ("lit", "bool"):
            v = n.a[0]
            return lambda env: v
        raise self.error("expected a value", n.line, n.col)  # pragma: no cover

    # ------------------------------------------------------------ sets
    def set(self, n: A.Node, ctx: str) -> SetCode:  # noqa: C901 - one case per node type
        t = n.t
        if t == "setlit":
            s = n.a[0]
            return SetCode(lambda env: s, s, True, type(s) is MatcherSet)
        if t == "paren":
            return self.set(n.a[0], ctx)
        if t == "argmeta":
            name, fld = n.a
            get = _GETTERS[fld]
            default = get(DEFAULT_META)
            return SetCode(lambda env: get(a.meta) if (a := env.args.get(name)) is not None else default)
        if t in ("resmeta", "sesmeta", "ctxmeta"):
            fld = n.a[0]
            which = "result" if t == "resmeta" or (t == "ctxmeta" and ctx == RESULT) else "session"
            get = _GETTERS[fld]
            if which == "result":
                return SetCode(lambda env: get(env.result))
            return SetCode(lambda env: get(env.session))
        if t == "agg":
            fld, op = n.a
            get = _GETTERS[fld]
            if op == "union":

                def agg_union(env: Env) -> MetaSet:
                    r = EMPTY if env.control is None else get(env.control)
                    for a in env.args.values():
                        r = set_union(r, get(a.meta))
                    return r

                return SetCode(agg_union)

            def agg_inter(env: Env) -> MetaSet:
                r = UNIVERSAL if env.control is None else get(env.control)
                for a in env.args.values():
                    r = set_intersect(r, get(a.meta))
                return r

            return SetCode(agg_inter)
        if t == "setop":
            op = n.a[0]
            nodes = _setop_chain(n, op)  # a left-nested chain `a | b | c ...`, folded in one loop
            codes = [self.set(x, ctx) for x in nodes]
            for side, code in zip(nodes, codes, strict=True):
                if code.has_matchers:
                    raise self.error(
                        "a set holding regexes, wildcards, numbers or type domains can only be tested against "
                        f"(`in`, `overlaps`, `subset of`, `superset of`, `==`), not combined with `{_OPWORD[op]}`",
                        side.line,
                        side.col,
                    )
            f = _SETOPS[op]
            if all(c.is_static for c in codes):
                v = codes[0].static
                for c in codes[1:]:
                    v = f(v, c.static)
                return SetCode(_constant(v), v, True)
            if len(codes) == 2:
                lf, rf = codes[0].fn, codes[1].fn
                return SetCode(lambda env: f(lf(env), rf(env)))
            fns = [c.fn for c in codes]
            first, rest = fns[0], fns[1:]

            def fold(env: Env) -> Any:
                v = first(env)
                for g in rest:
                    v = f(v, g(env))
                return v

            return SetCode(fold)
        if t in ("with", "without"):
            base_node, el = n.a
            base = self.set(base_node, ctx)
            if base.has_matchers:
                raise self.error(
                    f"a set holding regexes, wildcards, numbers or type domains cannot be used with `{t}`",
                    base_node.line,
                    base_node.col,
                )
            if el.kind != "str":
                raise self.error(
                    f"`{t}` takes a plain string element, not {el.text} (matchers cannot be stored in metadata)",
                    el.line,
                    el.col,
                )
            with_or_without = set_with if t == "with" else set_without
            s = el.value
            if base.is_static:
                v = with_or_without(base.static, s)
                return SetCode(lambda env: v, v, True)
            bf = base.fn
            return SetCode(lambda env: with_or_without(bf(env), s))
        if t == "ref":
            return self.set_ref(n, ctx)
        raise self.error(f"expected a set expression, found {t}", n.line, n.col)  # pragma: no cover

    def set_ref(self, n: A.Node, ctx: str) -> SetCode:
        name = n.a[0]
        if name in ("true", "false") and name not in self.lets:
            raise self.error(
                f"'{name}' is a boolean, but a set is expected here (there is no `let {name} = …;`)",
                n.line,
                n.col,
            )
        kind = self.let_kind(name, n)
        if kind == "pred":
            raise self.error(f"'{name}' is a condition, but a set is expected here", n.line, n.col)
        key = ("set", name, ctx)
        code = self._memo.get(key)
        if code is None:
            body = self.lets[name].body
            if isinstance(body, A.Domain):
                s = matcher_set([body], "{" + body.text + "}")
                code = SetCode(lambda env: s, s, True, True)
            else:
                code = self.set(body, ctx)
            self._memo[key] = code
        return code

    # ------------------------------------------------------------ statements
    def update(self, u: A.Update, ctx: str) -> Callable[[Env], None]:
        target = u.target
        if target == "ctx":
            target = "result" if ctx == RESULT else "session"
        if target == "result" and ctx == SESSION_BEFORE:
            raise self.error(
                f"cannot write @result.{u.field} in a `session before` block: the tool has not run yet",
                u.line,
                u.col,
            )
        rhs = self.set(u.expr, ctx)
        if rhs.has_matchers:
            raise self.error(
                "regexes, wildcards, numbers and type domains cannot be stored in metadata; "
                'only plain strings (or "*") can be assigned',
                u.expr.line,
                u.expr.col,
            )
        combine = _ASSIGN[u.op]
        get, put = _GETTERS[u.field], _SETTERS[u.field]
        rf = rhs.fn
        if target == "result":

            def upd_result(env: Env) -> None:
                v = rf(env)
                env.result = put(env.result, v if combine is None else combine(get(env.result), v))

            return upd_result
        if target == "session":

            def upd_session(env: Env) -> None:
                v = rf(env)
                env.session = put(env.session, v if combine is None else combine(get(env.session), v))

            return upd_session
        name = u.arg
        assert name is not None  # the parser gives every `x.tags` update its argument name

        def upd_arg(env: Env) -> None:
            if not env.dual:  # no program variables in single-LLM (§6.8)
                return
            v = rf(env)
            a = env.args.get(name)
            meta = a.meta if a is not None else DEFAULT_META
            new = put(meta, v if combine is None else combine(get(meta), v))
            env.args[name] = ValueWithMeta(a.value if a is not None else None, new)
            env.arg_updates[name] = new

        return upd_arg

    def stmt(self, s: A.Stmt, ctx: str) -> CompiledStmt:
        ups = [self.update(u, ctx) for u in s.updates]
        if s.cond is None:
            if len(ups) == 1:
                fn = ups[0]
            else:

                def fn(env: Env) -> None:
                    for u in ups:
                        u(env)

        else:
            cond = self.pred(s.cond, ctx)

            def fn(env: Env) -> None:
                if cond(env):
                    for u in ups:
                        u(env)

        return CompiledStmt(fn, s.description, s.line, s.col)

    # ------------------------------------------------------------ program
    def compile_tools(self) -> list[CompiledTool]:
        out = []
        for i, tp in enumerate(self.program.tools):
            ct = CompiledTool(tp.display, tp.tool_id, tp.is_regex, tp.regex, tp.priority, tp.description, i)
            for r in tp.rules:
                fn = None if r.cond is None else self.pred(r.cond, CHECK)
                cr = CompiledRule(r.level, r.verdict, r.text, r.description, fn)
                if r.verdict == "allow":
                    ct.has_allow = True
                    if r.level == "hard":
                        ct.has_hard_allow = True
                if r.level == "hard":
                    (ct.hard_deny if r.verdict == "deny" else ct.hard_allow).append(cr)
                else:
                    ct.soft.append(cr)
            for b in tp.blocks:
                ctx = {"result": RESULT, "session_before": SESSION_BEFORE, "session_after": SESSION_AFTER}[
                    b.kind
                ]
                target = {RESULT: ct.result, SESSION_BEFORE: ct.before, SESSION_AFTER: ct.after}[ctx]
                for s in b.stmts:
                    target.append(self.stmt(s, ctx))
            ct.finalize()
            out.append(ct)
        return out
