"""The builtin functions (``len``, ``sorted``, ``min``, ``print``, ...), each ``(it, args, kwargs)``.

Every result carries the merge of the metas it was computed from.
"""

from __future__ import annotations

import ast
import datetime as _dt
from typing import Any

from relay.meta import Meta

from ..errors import InterpreterError
from ..values import CONTAINERS, D, ExcClass, ExcValue, TypeRef, V, VList, VSet, mm, type_name
from .arguments import NONE, NUMBERS, bind, int_arg, metas_of, no_kwargs
from .constructors import int_result


def b_len(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "len", kwargs)
    if len(args) != 1:
        raise it.err("TypeError", f"len() takes exactly one argument ({len(args)} given)")
    x = args[0]
    v = x.v
    t = type(v)
    if t in CONTAINERS or t is str or t is range:
        return V(len(v), it.shallow(x))
    raise it.err("TypeError", f"object of type '{type_name(v)}' has no len()", x.m)


def b_repr(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "repr", args, kwargs, ("obj",), 1)
    return V(it.new_str(it.w.repr(x)), it.eff(x))


def key_values(it: Any, elems: list[V], key: V | None, m: Meta) -> tuple[Any, Meta]:
    """The comparison keys of ``elems`` (``key=`` applied when given) and ``m`` joined with what each key
    computed carries: the order sort/min/max choose depends on it."""
    if key is None or key.v is None:
        return it.w.plain_keys(elems), m
    kvs = []
    for e in elems:
        k = it.call_key(key, e)
        kvs.append(k)
        m = mm(m, it.eff(k))
        it.w.tick(16)
    return it.w.plain_keys(kvs), m


def sort_order(it: Any, elems: list[V], key: V | None, reverse: V | None) -> tuple[list[int], Meta]:
    keys, m = key_values(it, elems, key, D)
    rev = False
    if reverse is not None:
        rev = bool(reverse.v)
        m = mm(m, reverse.m)
    order = sorted(range(len(elems)), key=keys.__getitem__, reverse=rev)
    for e in elems:
        m = mm(m, it.eff(e))
    return order, m


def b_sorted(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    if len(args) != 1:
        raise it.err("TypeError", f"sorted expected 1 argument, got {len(args)}")
    key, reverse = bind(it, "sorted", [], kwargs, ("key", "reverse"), 0)
    x = args[0]
    elems = it.iter_elems(x)
    order, m = sort_order(it, elems, key, reverse)
    it.alloc_slots(len(elems))
    return V(VList([elems[i] for i in order]), mm(it.shallow(x), m))


def b_reversed(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "reversed", args, kwargs, ("sequence",), 1)
    if type(x.v) is VSet:
        raise it.err("TypeError", "'set' object is not reversible", x.m)
    elems = it.iter_elems(x)
    elems.reverse()
    it.alloc_slots(len(elems))
    return V(VList(elems), it.shallow(x))


def b_enumerate(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    x, start = bind(it, "enumerate", args, kwargs, ("iterable", "start"), 1)
    s = 0 if start is None else int_arg(it, start, "start")
    sm = D if start is None else start.m
    elems = it.iter_elems(x)
    it.alloc_slots(3 * len(elems))
    if s.bit_length() > 4096:  # a big start makes every index a big integer
        it.alloc(len(elems) * (s.bit_length() >> 3))
    return V(VList([V((V(i + s, sm), e)) for i, e in enumerate(elems)]), it.shallow(x))


def b_zip(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (strict,) = bind(it, "zip", [], kwargs, ("strict",), 0)
    lists = []
    for a in args:  # zip(*[big] * 10**6): each argument is copied
        lists.append(it.iter_elems(a))
        it.w.tick(1 + (len(lists[-1]) >> 4))
    m = D
    for a in args:
        m = mm(m, it.shallow(a))
    if not lists:
        return V(VList(), m)
    n = min(len(lst) for lst in lists)
    if strict is not None and strict.v and any(len(lst) != n for lst in lists):
        raise it.err("ValueError", "zip() arguments have different lengths", m)
    it.alloc_slots((n + 1) * (len(lists) + 1))
    return V(VList([V(tuple(lst[i] for lst in lists)) for i in range(n)]), m)


def _minmax(it: Any, args: list[V], kwargs: dict[str, V], fname: str, pick: Any) -> V:
    key, default = bind(it, fname, [], kwargs, ("key", "default"), 0)
    if not args:
        raise it.err("TypeError", f"{fname} expected at least 1 argument, got 0")
    if len(args) == 1:
        elems = it.iter_elems(args[0])
        base = it.shallow(args[0])
    else:
        elems = list(args)
        base = D
    if not elems:
        if default is not None:
            return V(default.v, mm(default.m, base))
        raise it.err("ValueError", f"{fname}() arg is an empty sequence", base)
    keys, m = key_values(it, elems, key, base)
    i = pick(range(len(elems)), key=keys.__getitem__)
    for e in elems:
        m = mm(m, it.eff(e))
    return V(elems[i].v, m)


def b_min(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    return _minmax(it, args, kwargs, "min", min)


def b_max(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    return _minmax(it, args, kwargs, "max", max)


def b_sum(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    x, start = bind(it, "sum", args, kwargs, ("iterable", "start"), 1)
    total = 0 if start is None else start.v
    m = D if start is None else start.m
    if type(total) not in NUMBERS:
        raise it.err("TypeError", "sum() supports numbers only here", m)
    w = it.w
    for e in it.iter_elems(x):
        if type(e.v) not in NUMBERS:
            raise it.err(
                "TypeError",
                f"unsupported operand type(s) for +: '{type_name(total)}' and '{type_name(e.v)}'",
                e.m,
            )
        total = total + e.v
        m = mm(m, e.m)
        if type(total) is int and not -0x1000 < total < 0x1000:
            w.tick(1 + (total.bit_length() >> 10))  # adding big integers costs their size
    if type(total) is int:
        int_result(it, total)
    return V(total, mm(m, it.shallow(x)))


def b_abs(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "abs", args, kwargs, ("x",), 1)
    if type(x.v) not in NUMBERS and type(x.v) is not _dt.timedelta:
        raise it.err("TypeError", f"bad operand type for abs(): '{type_name(x.v)}'", x.m)
    return V(abs(x.v), x.m)


def b_round(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    x, nd = bind(it, "round", args, kwargs, ("number", "ndigits"), 1)
    if type(x.v) not in NUMBERS:
        raise it.err("TypeError", f"type {type_name(x.v)} doesn't define __round__ method", x.m)
    if nd is None or nd.v is None:
        return V(round(x.v), x.m)
    n = int_arg(it, nd, "ndigits")
    v = x.v
    if type(v) is not float and n < 0 and -n > v.bit_length() * 0.30103 + 2:
        # Python computes 10 ** -n first (minutes for round(1, -10**9)); |v| < 10 ** (-n - 1) rounds to 0
        return V(0, mm(x.m, nd.m))
    return V(round(v, n), mm(x.m, nd.m))


def b_any(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "any", args, kwargs, ("iterable",), 1)
    m = it.shallow(x)
    r = False
    for e in it.iter_elems(x):
        m = mm(m, it.shallow(e))
        if e.v:
            r = True
    return V(r, m)


def b_all(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "all", args, kwargs, ("iterable",), 1)
    m = it.shallow(x)
    r = True
    for e in it.iter_elems(x):
        m = mm(m, it.shallow(e))
        if not e.v:
            r = False
    return V(r, m)


def _type_matches(it: Any, x: V, t: V, budget: list[int] | None = None, depth: int = 0) -> bool:
    tv = t.v
    if type(tv) is TypeRef:
        return tv.pytype is not None and isinstance(x.v, tv.pytype)
    if type(tv) is ExcClass:
        return type(x.v) is ExcValue and x.v.cls.is_sub(tv)
    if type(tv) is tuple:
        # nested tuples are walked as Python does, but bounded (a DAG of shared tuples is exponential)
        if budget is None:
            budget = [it.max_size]
        budget[0] -= len(tv) + 1
        if budget[0] < 0 or depth > it.limits.max_nesting_depth:
            raise it.limit("isinstance() type tuple too large or nested too deeply")
        return any(_type_matches(it, x, e, budget, depth + 1) for e in tv)
    raise it.err("TypeError", "isinstance() arg 2 must be a type or tuple of types", t.m)


def b_isinstance(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "isinstance", kwargs)
    if len(args) != 2:
        raise it.err("TypeError", f"isinstance expected 2 arguments, got {len(args)}")
    x, t = args
    return V(_type_matches(it, x, t), mm(x.m, t.m))


def b_print(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    sep, end = bind(it, "print", [], kwargs, ("sep", "end"), 0)
    sep_s = " " if sep is None or sep.v is None else it.w.str(sep)
    end_s = "\n" if end is None or end.v is None else it.w.str(end)
    room = it.limits.max_output_chars - it.output_chars
    if room <= 0:
        return NONE
    # built piece by piece, never far past the room left (a long string repeated is not joined first)
    parts: list[str] = []
    size = 0
    for i, a in enumerate(args):
        if i:
            parts.append(sep_s)
            size += len(sep_s)
        if size > room:
            break
        try:
            p = it.w.str(a)
        except InterpreterError as e:
            if e.kind != "limit" or "characters" not in e.message:
                raise
            p = "...[value too large to print]"
        parts.append(p)
        size += len(p)
        if size > room:
            break
    else:
        parts.append(end_s)
        size += len(end_s)
    s = "".join(parts)
    if size > room:
        s = s[:room] + "...[output truncated]"
    it.output.append(s)
    it.output_chars += len(s)
    return NONE


def b_divmod(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "divmod", kwargs)
    if len(args) != 2:
        raise it.err("TypeError", f"divmod expected 2 arguments, got {len(args)}")
    a, b = args
    if type(a.v) not in NUMBERS or type(b.v) not in NUMBERS:
        raise it.err("TypeError", "unsupported operand type(s) for divmod()", mm(a.m, b.m))
    q, r = divmod(a.v, b.v)
    m = mm(a.m, b.m)
    return V((V(q, m), V(r, m)), m)


def b_pow(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    base, exp, mod = bind(it, "pow", args, kwargs, ("base", "exp", "mod"), 2)
    m = metas_of(it, (base, exp, mod))
    if mod is None or mod.v is None:
        power: V = it.binop(ast.Pow, base, exp)
        return power
    b, e, md = int_arg(it, base, "base"), int_arg(it, exp, "exp"), int_arg(it, mod, "mod")
    # one modular multiplication per exponent bit, each quadratic in the modulus' 30-bit digits
    if e.bit_length() * (md.bit_length() // 30 + 1) ** 2 > 100_000_000:
        raise it.limit("modular power too expensive (exponent and modulus too large)")
    return V(pow(b, e, md), m)


def b_chr(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "chr", args, kwargs, ("i",), 1)
    return V(chr(int_arg(it, x, "chr")), x.m)


def b_ord(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "ord", args, kwargs, ("c",), 1)
    if type(x.v) is not str:
        raise it.err("TypeError", f"ord() expected string of length 1, but {type_name(x.v)} found", x.m)
    return V(ord(x.v), x.m)


def b_hex(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "hex", args, kwargs, ("number",), 1)
    return V(it.new_str(hex(int_arg(it, x, "hex"))), x.m)


def b_bin(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    (x,) = bind(it, "bin", args, kwargs, ("number",), 1)
    return V(it.new_str(bin(int_arg(it, x, "bin"))), x.m)


def b_format(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    x, spec = bind(it, "format", args, kwargs, ("value", "format_spec"), 1)
    s = ""
    m = it.eff(x)
    if spec is not None:
        if type(spec.v) is not str:
            raise it.err("TypeError", "format() argument 2 must be str", spec.m)
        s = spec.v
        m = mm(m, spec.m)
    return V(it.new_str(it.format_value(x, s, -1)), m)
