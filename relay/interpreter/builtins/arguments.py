"""Binding a call's arguments, checking them, and wrapping plain results.

Shared by every builtin function and method: ``it`` is the running Interp, arguments are ``V``.
"""

from __future__ import annotations

from typing import Any

from relay.meta import Meta

from ..values import CONTAINERS, D, V, VList, mm, type_name

NONE = V(None)
NUMBERS = (int, float, bool)
PY_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError)  # = evaluator.PY_ERRORS


def bind(
    it: Any, fname: str, args: list[V], kwargs: dict[str, V], params: tuple[str, ...], nreq: int
) -> list[Any]:
    """Map positional and keyword arguments onto ``params`` (the first ``nreq`` required).

    The first ``nreq`` are ``V``, the others ``V`` or None (typed Any: no annotation can say which)."""
    if len(args) > len(params):
        raise it.err("TypeError", f"{fname}() takes at most {len(params)} argument(s) ({len(args)} given)")
    out: list[V | None] = list(args) + [None] * (len(params) - len(args))
    for k, v in kwargs.items():
        try:
            i = params.index(k)
        except ValueError:
            raise it.err("TypeError", f"{fname}() got an unexpected keyword argument '{k}'") from None
        if out[i] is not None:
            raise it.err("TypeError", f"{fname}() got multiple values for argument '{k}'")
        out[i] = v
    for i in range(nreq):
        if out[i] is None:
            raise it.err("TypeError", f"{fname}() missing required argument '{params[i]}'")
    return out


def no_kwargs(it: Any, fname: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise it.err("TypeError", f"{fname}() takes no keyword arguments")


def metas_of(it: Any, xs: Any) -> Meta:
    m = D
    for x in xs:
        if x is not None:
            m = mm(m, it.eff(x))
    return m


def scalar_arg(it: Any, x: V, fname: str) -> Any:
    v = x.v
    if type(v) in CONTAINERS:
        raise it.err("TypeError", f"{fname}() argument must be a scalar, not '{type_name(v)}'", x.m)
    return v


def int_arg(it: Any, x: V, what: str) -> int:
    v = x.v
    if type(v) is not int and type(v) is not bool:
        raise it.err(
            "TypeError", f"'{type_name(v)}' object cannot be interpreted as an integer ({what})", x.m
        )
    return v


def one_arg(it: Any, fname: str, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, fname, kwargs)
    if len(args) != 1:
        raise it.err("TypeError", f"{fname}() takes exactly one argument ({len(args)} given)")
    return args[0]


def no_args(it: Any, fname: str, args: list[V], kwargs: dict[str, V]) -> None:
    if args or kwargs:
        raise it.err("TypeError", f"{fname}() takes no arguments ({len(args) + len(kwargs)} given)")


def check_size_capped(it: Any, n: int, what: str) -> None:
    """``it.check_size`` for a size that may be astronomically large (never printed in full)."""
    it.check_size(n if n < 10**18 else 10**18, what)


def wrap_result(it: Any, r: Any, m: Meta) -> V:
    """Wrap the plain result of a str/datetime method (str, bool, int, list/tuple of str, datetime...)."""
    t = type(r)
    if t is str:
        return V(it.new_str(r), m)
    if t is list or isinstance(r, tuple):
        if t is list:
            it.check_size(len(r), "list")
        it.alloc_slots(len(r))
        chars = sum(len(e) for e in r if type(e) is str)  # split/partition copy the characters
        if chars > 256:
            it.alloc(chars)
        if t is list:
            return V(VList([V(e) for e in r]), m)
        return V(tuple([V(e) for e in r]), m)
    return V(r, m)
