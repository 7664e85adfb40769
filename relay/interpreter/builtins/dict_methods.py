"""The methods of ``dict``."""

from __future__ import annotations

from typing import Any

from ..values import D, V, VDict, VList, mm
from .arguments import NONE, no_args, no_kwargs


def _key_v(it: Any, k: Any) -> V:
    return V(it.w.key_value(k))


def d_get(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "get", kwargs)
    if not 1 <= len(args) <= 2:
        raise it.err("TypeError", f"get expected 1 or 2 arguments, got {len(args)}")
    k = args[0]
    d = recv.v
    e = d.get(it.hkey(k))
    base = mm(mm(recv.m, d.sm), it.kmeta(k))
    if e is None:
        e = args[1] if len(args) > 1 else NONE
    return V(e.v, mm(e.m, base))


def d_keys(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "keys", args, kwargs)
    it.alloc_slots(len(recv.v))
    return V(VList([_key_v(it, k) for k in recv.v]), it.shallow(recv))


def d_values(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "values", args, kwargs)
    it.alloc_slots(len(recv.v))
    return V(VList(recv.v.values()), it.shallow(recv))


def d_items(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "items", args, kwargs)
    it.alloc_slots(3 * len(recv.v))
    return V(VList([V((_key_v(it, k), e)) for k, e in recv.v.items()]), it.shallow(recv))


def d_update(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    if len(args) > 1:
        raise it.err("TypeError", f"update expected at most 1 argument, got {len(args)}")
    d = recv.v
    before = len(d)
    if args:
        it.dict_update(d, args[0])
    for k, v in kwargs.items():
        d[k] = it.store(v)
    if kwargs:
        it.touch(d)
        it.check_size(len(d), "dict")
    if len(d) > before:
        it.alloc_slots(len(d) - before)
    return NONE


def d_pop(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "pop", kwargs)
    if not 1 <= len(args) <= 2:
        raise it.err("TypeError", f"pop expected 1 or 2 arguments, got {len(args)}")
    k = args[0]
    d = recv.v
    key = it.hkey(k)
    base = mm(mm(recv.m, d.sm), it.kmeta(k))
    it.touch(d, it.kmeta(k))  # whether anything was removed depends on the key
    if key in d:
        e = d.pop(key)
        return V(e.v, mm(e.m, base))
    if len(args) > 1:
        return V(args[1].v, mm(args[1].m, base))
    raise it.err("KeyError", key, base)


def d_setdefault(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "setdefault", kwargs)
    if not 1 <= len(args) <= 2:
        raise it.err("TypeError", f"setdefault expected 1 or 2 arguments, got {len(args)}")
    k = args[0]
    d = recv.v
    key = it.hkey(k)
    base = mm(mm(recv.m, d.sm), it.kmeta(k))
    it.touch(d, it.kmeta(k))  # whether anything was added depends on the key
    e = d.get(key)
    if e is None:
        e = it.store(args[1] if len(args) > 1 else NONE)
        it.check_size(len(d) + 1, "dict")
        d[key] = e
    return V(e.v, mm(e.m, base))


def d_copy(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "copy", args, kwargs)
    r = VDict(recv.v)
    if recv.v.sm is not D:
        r.sm = recv.v.sm
    it.alloc_slots(len(r))
    return V(r, recv.m)


def d_clear(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "clear", args, kwargs)
    recv.v.clear()
    it.touch(recv.v)
    return NONE


def d_popitem(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "popitem", args, kwargs)
    d = recv.v
    base = mm(recv.m, d.sm)
    if not d:
        raise it.err("KeyError", "popitem(): dictionary is empty", base)
    k, e = d.popitem()
    it.touch(d)
    return V((_key_v(it, k), e), base)


DICT_METHODS: dict[str, Any] = {
    "get": d_get,
    "keys": d_keys,
    "values": d_values,
    "items": d_items,
    "update": d_update,
    "pop": d_pop,
    "setdefault": d_setdefault,
    "copy": d_copy,
    "clear": d_clear,
    "popitem": d_popitem,
}
