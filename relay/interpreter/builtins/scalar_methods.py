"""The methods and attributes of the other value types: ``range``, ``float``, ``int`` and exceptions."""

from __future__ import annotations

from typing import Any

from ..values import V, mm
from .arguments import no_args, one_arg
from .python_calls import attr_getter


def _range_int(x: Any) -> Any:
    """The int a range can hold equal to ``x``, or None (Python scans the range for anything else)."""
    t = type(x)
    if t is int or t is bool:
        return x
    if t is float and x.is_integer():
        return int(x)
    return None


def r_count(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "count", args, kwargs)
    k = _range_int(x.v)
    return V(0 if k is None else recv.v.count(k), mm(recv.m, x.m))


def r_index(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "index", args, kwargs)
    k = _range_int(x.v)
    if k is None or k not in recv.v:
        raise it.err("ValueError", "value is not in range", mm(recv.m, x.m))
    return V(recv.v.index(k), mm(recv.m, x.m))


def e_args(it: Any, recv: V) -> V:
    return V(tuple(V(it.w.key_value(a)) for a in recv.v.args), recv.m)


def f_is_integer(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "is_integer", args, kwargs)
    return V(float(recv.v).is_integer(), recv.m)


def i_bit_length(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "bit_length", args, kwargs)
    return V(recv.v.bit_length(), recv.m)


RANGE_METHODS: dict[str, Any] = {"count": r_count, "index": r_index}
FLOAT_METHODS: dict[str, Any] = {"is_integer": f_is_integer}
INT_METHODS: dict[str, Any] = {"bit_length": i_bit_length}
RANGE_ATTRS: dict[str, Any] = {n: attr_getter(n) for n in ("start", "stop", "step")}
EXCEPTION_ATTRS: dict[str, Any] = {"args": e_args}
