"""The builtin types called as functions: ``str``, ``int``, ``float``, ``bool``, ``list``, ``tuple``,
``set``, ``dict`` and ``range``.
"""

from __future__ import annotations

from typing import Any

from ..values import INT_STR_MESSAGE, D, V, VDict, VList, VSet, mm, type_name
from .arguments import bind, int_arg, metas_of, no_kwargs, scalar_arg


def b_str(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "str", args, kwargs, ("object",), 0)
    if x is None:
        return V("")
    return V(it.new_str(it.w.str(x)), it.eff(x))


def int_result(it: Any, r: int) -> int:
    bits = r.bit_length()
    if bits > it.limits.max_int_bits:
        raise it.limit(f"integer would exceed {it.limits.max_int_bits} bits")
    if bits > 4096:
        it.alloc(bits >> 3)
    return r


def _int_parse(it: Any, v: str, base: int) -> int:
    """``int(v, base)`` of a string: CPython parses power-of-two bases of any length (in linear time) and
    refuses more than 4300 digits otherwise (ValueError, with a hint about ``sys`` that means nothing to a
    program); either way the result is held to ``max_int_bits``."""
    if len(v) > 4 * it.limits.max_int_bits + 64:
        raise it.limit(f"integer would exceed {it.limits.max_int_bits} bits")
    try:
        return int_result(it, int(v, base))
    except ValueError as e:
        if "set_int_max_str_digits" in str(e):
            raise ValueError(INT_STR_MESSAGE) from None
        raise


def b_int(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    x, base = bind(it, "int", args, kwargs, ("x", "base"), 0)
    if x is None:
        return V(0)
    v = scalar_arg(it, x, "int")
    if base is not None:
        b = int_arg(it, base, "base")
        if type(v) is not str:
            raise it.err("TypeError", "int() can't convert non-string with explicit base", x.m)
        return V(_int_parse(it, v, b), mm(x.m, base.m))
    t = type(v)
    if t is str:
        return V(_int_parse(it, v, 10), x.m)
    if t is float:
        return V(int_result(it, int(v)), x.m)
    if t is int or t is bool:
        return V(int(v), x.m)
    raise it.err("TypeError", f"int() argument must be a string or a number, not '{type_name(v)}'", x.m)


def b_float(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "float", args, kwargs, ("x",), 0)
    if x is None:
        return V(0.0)
    v = scalar_arg(it, x, "float")
    if type(v) not in (int, float, bool, str):
        raise it.err("TypeError", f"float() argument must be a string or a number, not '{type_name(v)}'", x.m)
    return V(float(v), x.m)


def b_bool(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "bool", args, kwargs, ("x",), 0)
    if x is None:
        return V(False)
    return V(bool(x.v), it.shallow(x))


def b_list(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "list", args, kwargs, ("iterable",), 0)
    if x is None:
        return V(VList())
    elems = it.iter_elems(x)
    it.alloc_slots(len(elems))
    return V(VList(elems), it.shallow(x))


def b_tuple(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "tuple", args, kwargs, ("iterable",), 0)
    if x is None:
        return V(())
    elems = it.iter_elems(x)
    it.alloc_slots(len(elems))
    return V(tuple(elems), it.shallow(x))


def to_set(it: Any, x: V) -> VSet:
    """A VSet of the elements of any iterable (a VSet itself is returned as is)."""
    if type(x.v) is VSet:
        if x.m is D:
            return x.v
        s = VSet(x.v)
        s.sm = mm(x.v.sm, x.m)
        it.alloc_slots(len(s))
        return s
    s = VSet()
    m = it.shallow(x)
    w = it.w
    for e in it.iter_elems(x):
        s.add(it.hkey(e))
        m = mm(m, it.eff(e))
        w.tick()  # hashing a big integer or a long new string costs its size
    if m is not D:
        s.sm = m
    it.alloc_slots(len(s))
    return s


def b_set(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "set", args, kwargs, ("iterable",), 0)
    if x is None:
        return V(VSet())
    s = to_set(it, x)
    if s is x.v:
        s = VSet(s)
        s.sm = x.v.sm
        it.alloc_slots(len(s))
    return V(s)


def b_dict(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    if len(args) > 1:
        raise it.err("TypeError", f"dict expected at most 1 argument, got {len(args)}")
    d = VDict()
    if args:
        it.dict_update(d, args[0])
    for k, v in kwargs.items():
        d[k] = it.store(v)
    it.alloc_slots(len(d))
    return V(d)


def b_range(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "range", kwargs)
    if not 1 <= len(args) <= 3:
        raise it.err("TypeError", f"range expected 1 to 3 arguments, got {len(args)}")
    pa = [int_arg(it, a, "range") for a in args]
    return V(range(*pa), metas_of(it, args))
