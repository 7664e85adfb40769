"""The methods of ``set``."""

from __future__ import annotations

from typing import Any

from relay.meta import Meta

from ..values import D, V, VSet, min_plain, mm
from .arguments import NONE, no_args, no_kwargs, one_arg
from .constructors import to_set


def _set_result(it: Any, s: VSet, m: Meta) -> V:
    it.check_size(len(s), "set")
    it.alloc_slots(len(s))
    return V(s, m)


def st_add(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "add", args, kwargs)
    s = recv.v
    s.add(it.hkey(x))
    it.check_size(len(s), "set")
    it.touch(s, it.eff(x))
    return NONE


def st_update(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "update", kwargs)
    s = recv.v
    before = len(s)
    for a in args:
        o = to_set(it, a)
        it.w.tick(1 + (len(o) >> 6))
        s |= o
        it.touch(s, o.sm)
        it.check_size(len(s), "set")
    if len(s) > before:
        it.alloc_slots(len(s) - before)
    return NONE


def _set_op(name: str) -> Any:
    op = getattr(set, name)

    def impl(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
        no_kwargs(it, name, kwargs)
        r = VSet(recv.v)
        m = recv.v.sm
        for a in args:
            o = to_set(it, a)
            it.w.tick(1 + ((len(r) + len(o)) >> 6))  # s.union(*[s] * 10**6): each argument costs |r| + |o|
            r = VSet(op(r, o))
            it.check_size(len(r), "set")
            m = mm(m, o.sm)
        if m is not D:
            r.sm = m
        return _set_result(it, r, recv.m)

    return impl


def _set_pred(name: str) -> Any:
    op = getattr(set, name)

    def impl(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
        x = one_arg(it, name, args, kwargs)
        o = to_set(it, x)
        return V(op(recv.v, o), mm(mm(recv.m, recv.v.sm), o.sm))

    return impl


def st_discard(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "discard", args, kwargs)
    recv.v.discard(it.hkey(x))
    it.touch(recv.v, it.kmeta(x))
    return NONE


def st_remove(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "remove", args, kwargs)
    k = it.hkey(x)
    if k not in recv.v:
        raise it.err("KeyError", k, mm(mm(recv.m, recv.v.sm), it.kmeta(x)))
    recv.v.discard(k)
    it.touch(recv.v, it.kmeta(x))
    return NONE


def st_pop(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "pop", args, kwargs)
    s = recv.v
    base = mm(recv.m, s.sm)
    if not s:
        raise it.err("KeyError", "pop from an empty set", base)
    k = min_plain(s)  # deterministic: the smallest element
    s.discard(k)
    it.touch(s)
    return V(it.w.key_value(k), base)


def st_copy(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "copy", args, kwargs)
    r = VSet(recv.v)
    if recv.v.sm is not D:
        r.sm = recv.v.sm
    return _set_result(it, r, recv.m)


def st_clear(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "clear", args, kwargs)
    recv.v.clear()
    it.touch(recv.v)
    return NONE


SET_METHODS: dict[str, Any] = {
    "add": st_add,
    "update": st_update,
    "union": _set_op("union"),
    "intersection": _set_op("intersection"),
    "difference": _set_op("difference"),
    "symmetric_difference": _set_op("symmetric_difference"),
    "discard": st_discard,
    "remove": st_remove,
    "pop": st_pop,
    "copy": st_copy,
    "clear": st_clear,
    "issubset": _set_pred("issubset"),
    "issuperset": _set_pred("issuperset"),
    "isdisjoint": _set_pred("isdisjoint"),
}
