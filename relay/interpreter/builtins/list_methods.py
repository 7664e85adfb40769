"""The methods of ``list`` (and those ``tuple`` shares with it)."""

from __future__ import annotations

from typing import Any

from ..values import D, V, VList, mm, type_name
from .arguments import NONE, bind, int_arg, metas_of, no_args, no_kwargs, one_arg
from .functions import sort_order


def l_append(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "append", args, kwargs)
    lst = recv.v
    if len(lst) >= it.max_size:
        raise it.limit(f"list would exceed {it.max_size} elements")
    it.alloc_slots(1)
    lst.append(it.store(x))
    if it.ctx is not D:
        it.touch(lst)
    return NONE


def l_extend(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    it.extend(recv.v, one_arg(it, "extend", args, kwargs))
    return NONE


def l_insert(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "insert", kwargs)
    if len(args) != 2:
        raise it.err("TypeError", f"insert expected 2 arguments, got {len(args)}")
    i = int_arg(it, args[0], "insert")
    lst = recv.v
    if len(lst) >= it.max_size:
        raise it.limit(f"list would exceed {it.max_size} elements")
    it.alloc_slots(1)
    lst.insert(i, it.store(args[1]))
    it.touch(lst, args[0].m)
    return NONE


def l_pop(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    (i,) = bind(it, "pop", args, kwargs, ("index",), 0)
    lst = recv.v
    idx = -1 if i is None else int_arg(it, i, "pop")
    im = D if i is None else i.m
    if not lst:
        raise it.err("IndexError", "pop from empty list", mm(recv.m, lst.sm))
    try:
        e = lst.pop(idx)
    except IndexError:
        raise it.err("IndexError", "pop index out of range", mm(mm(recv.m, lst.sm), im)) from None
    it.touch(lst, im)
    return V(e.v, mm(mm(mm(e.m, recv.m), lst.sm), im))


def _find(it: Any, lst: list[V] | tuple[V, ...], x: V) -> int:
    i: int = it.w.index(lst, x)
    return i


def l_remove(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "remove", args, kwargs)
    lst = recv.v
    i = _find(it, lst, x)
    if i < 0:
        raise it.err("ValueError", "list.remove(x): x not in list", mm(it.eff(recv), it.eff(x)))
    del lst[i]
    it.touch(lst, mm(it.eff(x), it.eff(recv)))
    return NONE


def l_index(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "index", kwargs)
    if not 1 <= len(args) <= 3:
        raise it.err("TypeError", f"index expected 1 to 3 arguments, got {len(args)}")
    seq = recv.v
    start = int_arg(it, args[1], "index") if len(args) > 1 else 0
    stop = int_arg(it, args[2], "index") if len(args) > 2 else len(seq)
    sub = seq[start:stop]
    i = _find(it, sub, args[0])
    m = mm(it.eff(recv), metas_of(it, args))
    if i < 0:
        raise it.err("ValueError", f"{it.w.repr(args[0])[:80]} is not in {type_name(seq)}", m)
    return V(i + (start if start >= 0 else max(len(seq) + start, 0)), m)


def l_count(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    x = one_arg(it, "count", args, kwargs)
    n = it.w.index(recv.v, x, count=True)
    return V(n, mm(it.eff(recv), it.eff(x)))


def l_sort(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    if args:
        raise it.err("TypeError", "sort() takes no positional arguments")
    key, reverse = bind(it, "sort", [], kwargs, ("key", "reverse"), 0)
    lst = recv.v
    elems = list(lst)
    order, m = sort_order(it, elems, key, reverse)
    lst[:] = [elems[i] for i in order]
    it.touch(lst, m)
    return NONE


def l_reverse(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "reverse", args, kwargs)
    recv.v.reverse()
    it.touch(recv.v)
    return NONE


def l_copy(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "copy", args, kwargs)
    it.alloc_slots(len(recv.v))
    return V(VList(recv.v), it.shallow(recv))


def l_clear(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_args(it, "clear", args, kwargs)
    recv.v.clear()
    it.touch(recv.v)
    return NONE


LIST_METHODS: dict[str, Any] = {
    "append": l_append,
    "extend": l_extend,
    "insert": l_insert,
    "pop": l_pop,
    "remove": l_remove,
    "index": l_index,
    "count": l_count,
    "sort": l_sort,
    "reverse": l_reverse,
    "copy": l_copy,
    "clear": l_clear,
}
TUPLE_METHODS: dict[str, Any] = {"index": l_index, "count": l_count}
