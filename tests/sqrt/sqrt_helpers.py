"""Helpers for the SQRT engine tests (framework-free)."""

from __future__ import annotations

from relay.meta import DEFAULT_META, UNIVERSAL, Meta, ValueWithMeta, make_set
from relay.sqrt import PolicyCompileError, PolicyEngine, compile_policy


def M(P=(), C=None, G=()) -> Meta:
    """Meta written as in sqrt.md §11: P{…} C{…} G{…}; omitted parts are the defaults."""
    return Meta(make_set(P), UNIVERSAL if C is None else make_set(C), make_set(G))


def V(value=None, P=(), C=None, G=()) -> ValueWithMeta:
    return ValueWithMeta(value, M(P, C, G))


def S(*tags) -> Meta:
    """A session meta with these tags."""
    return M(G=tags)


def engine(src: str | None, **kw) -> PolicyEngine:
    return PolicyEngine(compile_policy(src) if src is not None else None, **kw)


def check(src: str | None, tool: str, session: Meta = DEFAULT_META, kw: dict | None = None, **args):
    """The CallDecision of one call; keyword args become arguments (plain values get the default meta)."""
    eng = engine(src, **(kw or {}))
    return eng.before_call(
        tool, {k: v if isinstance(v, ValueWithMeta) else ValueWithMeta(v) for k, v in args.items()}, session
    )


def verdict(src, tool, session=DEFAULT_META, kw=None, **args) -> str:
    return check(src, tool, session, kw, **args).verdict


def full_call(
    eng: PolicyEngine, tool: str, args: dict, session: Meta = DEFAULT_META, result_value=None, wrapper=None
):
    """before_call, then (if allowed) after_call with the initial result meta. Returns (CallDecision, ResultDecision|None)."""
    args = {k: v if isinstance(v, ValueWithMeta) else ValueWithMeta(v) for k, v in args.items()}
    d = eng.before_call(tool, args, session)
    if not d.allowed:
        return d, None
    initial = eng.initial_result_meta(args)
    value = result_value
    if wrapper is not None:
        from relay.sqrt import unwrap_manual_result

        value, initial = unwrap_manual_result(wrapper, initial)
    r = eng.after_call(tool, args, ValueWithMeta(value, initial), d.session_meta)
    return d, r


def compile_error(src: str, language: str = "sqrt") -> PolicyCompileError:
    try:
        compile_policy(src, language)
    except PolicyCompileError as exc:
        return exc
    raise AssertionError(f"expected a compile error for {src!r}")


def tags(meta: Meta) -> set:
    return set(meta.tags) if meta.tags is not UNIVERSAL else {"*"}
