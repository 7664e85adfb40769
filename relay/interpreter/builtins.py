"""Whitelisted builtins, types, exception classes, the datetime subset and the methods of every value type.

Builtin implementations take ``(it, args, kwargs)`` and methods ``(it, recv, args, kwargs)``: ``it`` is the
running Interp, arguments are ``V``. Every result carries the merge of the metas it was computed from.
Python exceptions raised here (TypeError, ValueError, ...) become program exceptions at the call site.
"""

from __future__ import annotations

import ast
import datetime as _dt
import re
import string as _string
from typing import Any

from relay.meta import Meta

from .errors import InterpreterError
from .values import (
    CONTAINERS,
    INT_STR_MESSAGE,
    BoundMethod,
    BuiltinFn,
    D,
    ExcClass,
    ExcValue,
    NoneType,
    TypeRef,
    V,
    VDict,
    VList,
    VSet,
    min_plain,
    mm,
    type_name,
)

NONE = V(None)
_MISSING = object()
_NUMBERS = (int, float, bool)
_PY_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError)  # = evaluator.PY_ERRORS


# ------------------------------------------------------------------------------------------ arguments
def bind(
    it: Any, fname: str, args: list[V], kwargs: dict[str, V], params: tuple[str, ...], nreq: int
) -> list[V | None]:
    """Map positional and keyword arguments onto ``params`` (the first ``nreq`` required)."""
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


def _no_kwargs(it: Any, fname: str, kwargs: dict) -> None:
    if kwargs:
        raise it.err("TypeError", f"{fname}() takes no keyword arguments")


def _metas(it: Any, xs: Any) -> Meta:
    m = D
    for x in xs:
        if x is not None:
            m = mm(m, it.eff(x))
    return m


def _scalar(it: Any, x: V, fname: str) -> Any:
    v = x.v
    if type(v) in CONTAINERS:
        raise it.err("TypeError", f"{fname}() argument must be a scalar, not '{type_name(v)}'", x.m)
    return v


def _int_arg(it: Any, x: V, what: str) -> int:
    v = x.v
    if type(v) is not int and type(v) is not bool:
        raise it.err(
            "TypeError", f"'{type_name(v)}' object cannot be interpreted as an integer ({what})", x.m
        )
    return v


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


# ---------------------------------------------------------------------------------------------- builtins
def b_len(it, args, kwargs):
    _no_kwargs(it, "len", kwargs)
    if len(args) != 1:
        raise it.err("TypeError", f"len() takes exactly one argument ({len(args)} given)")
    x = args[0]
    v = x.v
    t = type(v)
    if t in CONTAINERS or t is str or t is range:
        return V(len(v), it.shallow(x))
    raise it.err("TypeError", f"object of type '{type_name(v)}' has no len()", x.m)


def b_str(it, args, kwargs):
    (x,) = bind(it, "str", args, kwargs, ("object",), 0)
    if x is None:
        return V("")
    return V(it.new_str(it.w.str(x)), it.eff(x))


def b_repr(it, args, kwargs):
    (x,) = bind(it, "repr", args, kwargs, ("obj",), 1)
    return V(it.new_str(it.w.repr(x)), it.eff(x))


def _int_result(it: Any, r: int) -> int:
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
        return _int_result(it, int(v, base))
    except ValueError as e:
        if "set_int_max_str_digits" in str(e):
            raise ValueError(INT_STR_MESSAGE) from None
        raise


def b_int(it, args, kwargs):
    x, base = bind(it, "int", args, kwargs, ("x", "base"), 0)
    if x is None:
        return V(0)
    v = _scalar(it, x, "int")
    if base is not None:
        b = _int_arg(it, base, "base")
        if type(v) is not str:
            raise it.err("TypeError", "int() can't convert non-string with explicit base", x.m)
        return V(_int_parse(it, v, b), mm(x.m, base.m))
    t = type(v)
    if t is str:
        return V(_int_parse(it, v, 10), x.m)
    if t is float:
        return V(_int_result(it, int(v)), x.m)
    if t is int or t is bool:
        return V(int(v), x.m)
    raise it.err("TypeError", f"int() argument must be a string or a number, not '{type_name(v)}'", x.m)


def b_float(it, args, kwargs):
    (x,) = bind(it, "float", args, kwargs, ("x",), 0)
    if x is None:
        return V(0.0)
    v = _scalar(it, x, "float")
    if type(v) not in (int, float, bool, str):
        raise it.err("TypeError", f"float() argument must be a string or a number, not '{type_name(v)}'", x.m)
    return V(float(v), x.m)


def b_bool(it, args, kwargs):
    (x,) = bind(it, "bool", args, kwargs, ("x",), 0)
    if x is None:
        return V(False)
    return V(bool(x.v), it.shallow(x))


def b_list(it, args, kwargs):
    (x,) = bind(it, "list", args, kwargs, ("iterable",), 0)
    if x is None:
        return V(VList())
    elems = it.iter_elems(x)
    it.alloc_slots(len(elems))
    return V(VList(elems), it.shallow(x))


def b_tuple(it, args, kwargs):
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


def b_set(it, args, kwargs):
    (x,) = bind(it, "set", args, kwargs, ("iterable",), 0)
    if x is None:
        return V(VSet())
    s = to_set(it, x)
    if s is x.v:
        s = VSet(s)
        s.sm = x.v.sm
        it.alloc_slots(len(s))
    return V(s)


def b_dict(it, args, kwargs):
    if len(args) > 1:
        raise it.err("TypeError", f"dict expected at most 1 argument, got {len(args)}")
    d = VDict()
    if args:
        it.dict_update(d, args[0])
    for k, v in kwargs.items():
        d[k] = it.store(v)
    it.alloc_slots(len(d))
    return V(d)


def b_range(it, args, kwargs):
    _no_kwargs(it, "range", kwargs)
    if not 1 <= len(args) <= 3:
        raise it.err("TypeError", f"range expected 1 to 3 arguments, got {len(args)}")
    pa = [_int_arg(it, a, "range") for a in args]
    return V(range(*pa), _metas(it, args))


def _sort_order(it: Any, elems: list[V], key: V | None, reverse: V | None) -> tuple[list[int], Meta]:
    m = D
    if key is None or key.v is None:
        keys = it.w.plain_keys(elems)
    else:
        kvs = []
        for e in elems:
            k = it.call_key(key, e)
            kvs.append(k)
            m = mm(m, it.eff(k))
            it.w.tick(16)
        keys = it.w.plain_keys(kvs)
    rev = False
    if reverse is not None:
        rev = bool(reverse.v)
        m = mm(m, reverse.m)
    order = sorted(range(len(elems)), key=keys.__getitem__, reverse=rev)
    for e in elems:
        m = mm(m, it.eff(e))
    return order, m


def b_sorted(it, args, kwargs):
    if len(args) != 1:
        raise it.err("TypeError", f"sorted expected 1 argument, got {len(args)}")
    key, reverse = bind(it, "sorted", [], kwargs, ("key", "reverse"), 0)
    x = args[0]
    elems = it.iter_elems(x)
    order, m = _sort_order(it, elems, key, reverse)
    it.alloc_slots(len(elems))
    return V(VList([elems[i] for i in order]), mm(it.shallow(x), m))


def b_reversed(it, args, kwargs):
    (x,) = bind(it, "reversed", args, kwargs, ("sequence",), 1)
    if type(x.v) is VSet:
        raise it.err("TypeError", "'set' object is not reversible", x.m)
    elems = it.iter_elems(x)
    elems.reverse()
    it.alloc_slots(len(elems))
    return V(VList(elems), it.shallow(x))


def b_enumerate(it, args, kwargs):
    x, start = bind(it, "enumerate", args, kwargs, ("iterable", "start"), 1)
    s = 0 if start is None else _int_arg(it, start, "start")
    sm = D if start is None else start.m
    elems = it.iter_elems(x)
    it.alloc_slots(3 * len(elems))
    if s.bit_length() > 4096:  # a big start makes every index a big integer
        it.alloc(len(elems) * (s.bit_length() >> 3))
    return V(VList([V((V(i + s, sm), e)) for i, e in enumerate(elems)]), it.shallow(x))


def b_zip(it, args, kwargs):
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


def _minmax(it, args, kwargs, fname: str, pick: Any) -> V:
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
    m = base
    if key is None or key.v is None:
        keys = it.w.plain_keys(elems)
    else:
        kvs = []
        for e in elems:
            k = it.call_key(key, e)
            kvs.append(k)
            m = mm(m, it.eff(k))
            it.w.tick(16)
        keys = it.w.plain_keys(kvs)
    i = pick(range(len(elems)), key=keys.__getitem__)
    for e in elems:
        m = mm(m, it.eff(e))
    return V(elems[i].v, m)


def b_min(it, args, kwargs):
    return _minmax(it, args, kwargs, "min", min)


def b_max(it, args, kwargs):
    return _minmax(it, args, kwargs, "max", max)


def b_sum(it, args, kwargs):
    x, start = bind(it, "sum", args, kwargs, ("iterable", "start"), 1)
    total = 0 if start is None else start.v
    m = D if start is None else start.m
    if type(total) not in _NUMBERS:
        raise it.err("TypeError", "sum() supports numbers only here", m)
    w = it.w
    for e in it.iter_elems(x):
        if type(e.v) not in _NUMBERS:
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
        _int_result(it, total)
    return V(total, mm(m, it.shallow(x)))


def b_abs(it, args, kwargs):
    (x,) = bind(it, "abs", args, kwargs, ("x",), 1)
    if type(x.v) not in _NUMBERS and type(x.v) is not _dt.timedelta:
        raise it.err("TypeError", f"bad operand type for abs(): '{type_name(x.v)}'", x.m)
    return V(abs(x.v), x.m)


def b_round(it, args, kwargs):
    x, nd = bind(it, "round", args, kwargs, ("number", "ndigits"), 1)
    if type(x.v) not in _NUMBERS:
        raise it.err("TypeError", f"type {type_name(x.v)} doesn't define __round__ method", x.m)
    if nd is None or nd.v is None:
        return V(round(x.v), x.m)
    n = _int_arg(it, nd, "ndigits")
    v = x.v
    if type(v) is not float and n < 0 and -n > v.bit_length() * 0.30103 + 2:
        # Python computes 10 ** -n first (minutes for round(1, -10**9)); |v| < 10 ** (-n - 1) rounds to 0
        return V(0, mm(x.m, nd.m))
    return V(round(v, n), mm(x.m, nd.m))


def b_any(it, args, kwargs):
    (x,) = bind(it, "any", args, kwargs, ("iterable",), 1)
    m = it.shallow(x)
    r = False
    for e in it.iter_elems(x):
        m = mm(m, it.shallow(e))
        if e.v:
            r = True
    return V(r, m)


def b_all(it, args, kwargs):
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


def b_isinstance(it, args, kwargs):
    _no_kwargs(it, "isinstance", kwargs)
    if len(args) != 2:
        raise it.err("TypeError", f"isinstance expected 2 arguments, got {len(args)}")
    x, t = args
    return V(_type_matches(it, x, t), mm(x.m, t.m))


def b_print(it, args, kwargs):
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


def b_type(it, args, kwargs):
    _no_kwargs(it, "type", kwargs)
    if len(args) != 1:
        raise it.err("TypeError", "type() takes exactly one argument here")
    x = args[0]
    if type(x.v) is ExcValue:
        return V(x.v.cls, x.m)
    ref = TYPE_OF.get(type(x.v))
    if ref is None:
        ref = TypeRef(type_name(x.v), None)
    return V(ref, x.m)


def b_divmod(it, args, kwargs):
    _no_kwargs(it, "divmod", kwargs)
    if len(args) != 2:
        raise it.err("TypeError", f"divmod expected 2 arguments, got {len(args)}")
    a, b = args
    if type(a.v) not in _NUMBERS or type(b.v) not in _NUMBERS:
        raise it.err("TypeError", "unsupported operand type(s) for divmod()", mm(a.m, b.m))
    q, r = divmod(a.v, b.v)
    m = mm(a.m, b.m)
    return V((V(q, m), V(r, m)), m)


def b_pow(it, args, kwargs):
    base, exp, mod = bind(it, "pow", args, kwargs, ("base", "exp", "mod"), 2)
    m = _metas(it, (base, exp, mod))
    if mod is None or mod.v is None:
        return it.binop(ast.Pow, base, exp)
    b, e, md = _int_arg(it, base, "base"), _int_arg(it, exp, "exp"), _int_arg(it, mod, "mod")
    # one modular multiplication per exponent bit, each quadratic in the modulus' 30-bit digits
    if e.bit_length() * (md.bit_length() // 30 + 1) ** 2 > 100_000_000:
        raise it.limit("modular power too expensive (exponent and modulus too large)")
    return V(pow(b, e, md), m)


def b_chr(it, args, kwargs):
    (x,) = bind(it, "chr", args, kwargs, ("i",), 1)
    return V(chr(_int_arg(it, x, "chr")), x.m)


def b_ord(it, args, kwargs):
    (x,) = bind(it, "ord", args, kwargs, ("c",), 1)
    if type(x.v) is not str:
        raise it.err("TypeError", f"ord() expected string of length 1, but {type_name(x.v)} found", x.m)
    return V(ord(x.v), x.m)


def b_hex(it, args, kwargs):
    (x,) = bind(it, "hex", args, kwargs, ("number",), 1)
    return V(it.new_str(hex(_int_arg(it, x, "hex"))), x.m)


def b_bin(it, args, kwargs):
    (x,) = bind(it, "bin", args, kwargs, ("number",), 1)
    return V(it.new_str(bin(_int_arg(it, x, "bin"))), x.m)


def b_format(it, args, kwargs):
    x, spec = bind(it, "format", args, kwargs, ("value", "format_spec"), 1)
    s = ""
    m = it.eff(x)
    if spec is not None:
        if type(spec.v) is not str:
            raise it.err("TypeError", "format() argument 2 must be str", spec.m)
        s = spec.v
        m = mm(m, spec.m)
    return V(it.new_str(it.format_value(x, s, -1)), m)


# ---------------------------------------------------------------------------------------------- datetime
_NOW = (
    "{name}() is not available: programs must be deterministic; take the date or time from the user "
    "query or from a tool result"
)


def _py_call(fn: Any, fname: str, guard: Any = None) -> Any:
    def impl(it, args, kwargs):
        pa = [_scalar(it, a, fname) for a in args]
        pk = {k: _scalar(it, a, fname) for k, a in kwargs.items()}
        if guard is not None:
            guard(it, pa, pk)
        try:
            r = fn(*pa, **pk)
        except _PY_ERRORS:
            raise
        except re.error as e:  # strptime('...', '%Y %Y'): a format the planner can fix
            raise ValueError(f"{fname}() format is invalid: {e.msg}") from None
        except Exception as e:  # anything else the datetime module raises is still the program's error
            raise ValueError(f"{fname}() failed ({type(e).__name__})") from None
        return wrap_result(it, r, mm(_metas(it, args), _metas(it, kwargs.values())))

    return impl


def _py_method(name: str, guard: Any = None) -> Any:
    def impl(it, recv, args, kwargs):
        pa = [it.plain(a) for a in args]
        pk = {k: it.plain(a) for k, a in kwargs.items()}
        if guard is not None:
            guard(it, recv.v, pa, pk)
        fn = getattr(type(recv.v), name)
        r = fn(recv.v, *pa, **pk)
        m = recv.m
        for a in args:
            m = mm(m, it.eff(a))
        for a in kwargs.values():
            m = mm(m, it.eff(a))
        return wrap_result(it, r, m)

    return impl


def _aware_only(it, v, pa, pk):
    if v.tzinfo is None:
        raise it.refuse(
            "this method needs a timezone-aware datetime (a naive one would use the server's "
            "local time zone); use .replace(tzinfo=timezone.utc) first"
        )


def _strftime_guard(it, v, pa, pk):
    fmt = pa[0] if pa else pk.get("format", "")
    if type(fmt) is str and len(fmt) > 10_000:
        raise it.limit("strftime format too long")


def _attr(name: str) -> Any:
    def getter(it, recv):
        r = getattr(recv.v, name)
        return V(r, recv.m)

    return getter


# ------------------------------------------------------------------------------------------- str methods
_STR_PLAIN = (
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "split",
    "rsplit",
    "startswith",
    "endswith",
    "find",
    "rfind",
    "index",
    "rindex",
    "count",
    "title",
    "capitalize",
    "casefold",
    "splitlines",
    "isdigit",
    "isalpha",
    "isalnum",
    "isnumeric",
    "isdecimal",
    "isspace",
    "islower",
    "isupper",
    "istitle",
    "isidentifier",
    "isascii",
    "partition",
    "rpartition",
    "swapcase",
    "removeprefix",
    "removesuffix",
)


def _g_replace(it, s, pa, pk):
    if len(pa) < 2 or type(pa[0]) is not str or type(pa[1]) is not str:
        return  # let str.replace raise the TypeError
    cnt = s.count(pa[0])
    limit = pa[2] if len(pa) > 2 else pk.get("count", -1)
    if type(limit) is int and limit >= 0:
        cnt = min(cnt, limit)
    size = len(s) + cnt * (len(pa[1]) - len(pa[0]))
    it.check_size(size, "string")
    it.alloc(size)


def _check_size(it: Any, n: int, what: str) -> None:
    """``it.check_size`` for a size that may be astronomically large (never printed in full)."""
    it.check_size(n if n < 10**18 else 10**18, what)


def _g_width(it, s, pa, pk):
    w = pa[0] if pa else pk.get("width", 0)
    if type(w) is int and w > len(s):
        _check_size(it, w, "string")
        it.alloc(w)


def _g_tabs(it, s, pa, pk):
    t = pa[0] if pa else pk.get("tabsize", 8)
    if type(t) is int and t > 0:
        size = len(s) + s.count("\t") * t
        _check_size(it, size, "string")
        it.alloc(size)


def s_join(it, recv, args, kwargs):
    _no_kwargs(it, "join", kwargs)
    if len(args) != 1:
        raise it.err("TypeError", f"join() takes exactly one argument ({len(args)} given)")
    sep = recv.v
    elems = it.iter_elems(args[0])
    m = mm(recv.m, it.shallow(args[0]))
    total = len(sep) * max(len(elems) - 1, 0)
    parts = []
    for i, e in enumerate(elems):
        if type(e.v) is not str:
            raise it.err(
                "TypeError", f"sequence item {i}: expected str instance, {type_name(e.v)} found", e.m
            )
        total += len(e.v)
        parts.append(e.v)
        m = mm(m, e.m)
    it.check_size(total, "string")
    it.alloc(total)
    return V(sep.join(parts), m)


_FORMATTER = _string.Formatter()
_CONV = {None: -1, "s": 115, "r": 114, "a": 97}


def s_format(it, recv, args, kwargs):
    out = []
    size = 0
    auto = 0
    m = recv.m
    for lit, field, spec, conv in _FORMATTER.parse(recv.v):
        out.append(lit)
        if field is None:
            continue
        if field == "":
            idx = auto
            auto += 1
            if idx >= len(args):
                raise it.err("IndexError", f"Replacement index {idx} out of range for positional args tuple")
            x = args[idx]
        elif field.isdigit():
            idx = int(field) if len(field) < 19 else 10**18
            if idx >= len(args):
                raise it.err("IndexError", f"Replacement index {idx} out of range for positional args tuple")
            x = args[idx]
        elif field.isidentifier():
            if field not in kwargs:
                raise it.err("KeyError", field)
            x = kwargs[field]
        else:
            raise it.refuse(
                "format fields with attribute or index access ('{a.b}', '{a[0]}') are not "
                "supported; use an f-string"
            )
        if spec and "{" in spec:
            raise it.refuse("nested replacement fields in format specs are not supported")
        if conv not in _CONV:
            raise it.err("ValueError", f"Unknown conversion specifier {conv}")
        piece = it.format_value(x, spec or "", _CONV[conv])
        out.append(piece)
        size += len(lit) + len(piece)
        if size > it.max_size:  # checked as it grows: '{0}' * 100000 of a long string is never joined
            it.check_size(size, "string")
        m = mm(m, it.eff(x))
    s = "".join(out)
    return V(it.new_str(s), m)


# ------------------------------------------------------------------------------------------ list methods
def _one(it, fname, args, kwargs) -> V:
    _no_kwargs(it, fname, kwargs)
    if len(args) != 1:
        raise it.err("TypeError", f"{fname}() takes exactly one argument ({len(args)} given)")
    return args[0]


def _none(it, fname, args, kwargs) -> None:
    if args or kwargs:
        raise it.err("TypeError", f"{fname}() takes no arguments ({len(args) + len(kwargs)} given)")


def l_append(it, recv, args, kwargs):
    x = _one(it, "append", args, kwargs)
    lst = recv.v
    if len(lst) >= it.max_size:
        raise it.limit(f"list would exceed {it.max_size} elements")
    it.alloc_slots(1)
    lst.append(it.store(x))
    if it.ctx is not D:
        it.touch(lst)
    return NONE


def l_extend(it, recv, args, kwargs):
    it.extend(recv.v, _one(it, "extend", args, kwargs))
    return NONE


def l_insert(it, recv, args, kwargs):
    _no_kwargs(it, "insert", kwargs)
    if len(args) != 2:
        raise it.err("TypeError", f"insert expected 2 arguments, got {len(args)}")
    i = _int_arg(it, args[0], "insert")
    lst = recv.v
    if len(lst) >= it.max_size:
        raise it.limit(f"list would exceed {it.max_size} elements")
    it.alloc_slots(1)
    lst.insert(i, it.store(args[1]))
    it.touch(lst, args[0].m)
    return NONE


def l_pop(it, recv, args, kwargs):
    (i,) = bind(it, "pop", args, kwargs, ("index",), 0)
    lst = recv.v
    idx = -1 if i is None else _int_arg(it, i, "pop")
    im = D if i is None else i.m
    if not lst:
        raise it.err("IndexError", "pop from empty list", mm(recv.m, lst.sm))
    try:
        e = lst.pop(idx)
    except IndexError:
        raise it.err("IndexError", "pop index out of range", mm(mm(recv.m, lst.sm), im)) from None
    it.touch(lst, im)
    return V(e.v, mm(mm(mm(e.m, recv.m), lst.sm), im))


def _find(it, lst, x: V) -> int:
    return it.w.index(lst, x)


def l_remove(it, recv, args, kwargs):
    x = _one(it, "remove", args, kwargs)
    lst = recv.v
    i = _find(it, lst, x)
    if i < 0:
        raise it.err("ValueError", "list.remove(x): x not in list", mm(it.eff(recv), it.eff(x)))
    del lst[i]
    it.touch(lst, mm(it.eff(x), it.eff(recv)))
    return NONE


def l_index(it, recv, args, kwargs):
    _no_kwargs(it, "index", kwargs)
    if not 1 <= len(args) <= 3:
        raise it.err("TypeError", f"index expected 1 to 3 arguments, got {len(args)}")
    seq = recv.v
    start = _int_arg(it, args[1], "index") if len(args) > 1 else 0
    stop = _int_arg(it, args[2], "index") if len(args) > 2 else len(seq)
    sub = seq[start:stop]
    i = _find(it, sub, args[0])
    m = mm(it.eff(recv), _metas(it, args))
    if i < 0:
        raise it.err("ValueError", f"{it.w.repr(args[0])[:80]} is not in {type_name(seq)}", m)
    return V(i + (start if start >= 0 else max(len(seq) + start, 0)), m)


def l_count(it, recv, args, kwargs):
    x = _one(it, "count", args, kwargs)
    n = it.w.index(recv.v, x, count=True)
    return V(n, mm(it.eff(recv), it.eff(x)))


def l_sort(it, recv, args, kwargs):
    if args:
        raise it.err("TypeError", "sort() takes no positional arguments")
    key, reverse = bind(it, "sort", [], kwargs, ("key", "reverse"), 0)
    lst = recv.v
    elems = list(lst)
    order, m = _sort_order(it, elems, key, reverse)
    lst[:] = [elems[i] for i in order]
    it.touch(lst, m)
    return NONE


def l_reverse(it, recv, args, kwargs):
    _none(it, "reverse", args, kwargs)
    recv.v.reverse()
    it.touch(recv.v)
    return NONE


def l_copy(it, recv, args, kwargs):
    _none(it, "copy", args, kwargs)
    it.alloc_slots(len(recv.v))
    return V(VList(recv.v), it.shallow(recv))


def l_clear(it, recv, args, kwargs):
    _none(it, "clear", args, kwargs)
    recv.v.clear()
    it.touch(recv.v)
    return NONE


# ------------------------------------------------------------------------------------------ dict methods
def _key_v(it, k: Any) -> V:
    return V(it.w.key_value(k))


def d_get(it, recv, args, kwargs):
    _no_kwargs(it, "get", kwargs)
    if not 1 <= len(args) <= 2:
        raise it.err("TypeError", f"get expected 1 or 2 arguments, got {len(args)}")
    k = args[0]
    d = recv.v
    e = d.get(it.hkey(k))
    base = mm(mm(recv.m, d.sm), it.kmeta(k))
    if e is None:
        e = args[1] if len(args) > 1 else NONE
    return V(e.v, mm(e.m, base))


def d_keys(it, recv, args, kwargs):
    _none(it, "keys", args, kwargs)
    it.alloc_slots(len(recv.v))
    return V(VList([_key_v(it, k) for k in recv.v]), it.shallow(recv))


def d_values(it, recv, args, kwargs):
    _none(it, "values", args, kwargs)
    it.alloc_slots(len(recv.v))
    return V(VList(recv.v.values()), it.shallow(recv))


def d_items(it, recv, args, kwargs):
    _none(it, "items", args, kwargs)
    it.alloc_slots(3 * len(recv.v))
    return V(VList([V((_key_v(it, k), e)) for k, e in recv.v.items()]), it.shallow(recv))


def d_update(it, recv, args, kwargs):
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


def d_pop(it, recv, args, kwargs):
    _no_kwargs(it, "pop", kwargs)
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


def d_setdefault(it, recv, args, kwargs):
    _no_kwargs(it, "setdefault", kwargs)
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


def d_copy(it, recv, args, kwargs):
    _none(it, "copy", args, kwargs)
    r = VDict(recv.v)
    if recv.v.sm is not D:
        r.sm = recv.v.sm
    it.alloc_slots(len(r))
    return V(r, recv.m)


def d_clear(it, recv, args, kwargs):
    _none(it, "clear", args, kwargs)
    recv.v.clear()
    it.touch(recv.v)
    return NONE


def d_popitem(it, recv, args, kwargs):
    _none(it, "popitem", args, kwargs)
    d = recv.v
    base = mm(recv.m, d.sm)
    if not d:
        raise it.err("KeyError", "popitem(): dictionary is empty", base)
    k, e = d.popitem()
    it.touch(d)
    return V((_key_v(it, k), e), base)


# ------------------------------------------------------------------------------------------- set methods
def _set_result(it, s: VSet, m: Meta) -> V:
    it.check_size(len(s), "set")
    it.alloc_slots(len(s))
    return V(s, m)


def st_add(it, recv, args, kwargs):
    x = _one(it, "add", args, kwargs)
    s = recv.v
    s.add(it.hkey(x))
    it.check_size(len(s), "set")
    it.touch(s, it.eff(x))
    return NONE


def st_update(it, recv, args, kwargs):
    _no_kwargs(it, "update", kwargs)
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

    def impl(it, recv, args, kwargs):
        _no_kwargs(it, name, kwargs)
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

    def impl(it, recv, args, kwargs):
        x = _one(it, name, args, kwargs)
        o = to_set(it, x)
        return V(op(recv.v, o), mm(mm(recv.m, recv.v.sm), o.sm))

    return impl


def st_discard(it, recv, args, kwargs):
    x = _one(it, "discard", args, kwargs)
    recv.v.discard(it.hkey(x))
    it.touch(recv.v, it.kmeta(x))
    return NONE


def st_remove(it, recv, args, kwargs):
    x = _one(it, "remove", args, kwargs)
    k = it.hkey(x)
    if k not in recv.v:
        raise it.err("KeyError", k, mm(mm(recv.m, recv.v.sm), it.kmeta(x)))
    recv.v.discard(k)
    it.touch(recv.v, it.kmeta(x))
    return NONE


def st_pop(it, recv, args, kwargs):
    _none(it, "pop", args, kwargs)
    s = recv.v
    base = mm(recv.m, s.sm)
    if not s:
        raise it.err("KeyError", "pop from an empty set", base)
    k = min_plain(s)  # deterministic: the smallest element
    s.discard(k)
    it.touch(s)
    return V(it.w.key_value(k), base)


def st_copy(it, recv, args, kwargs):
    _none(it, "copy", args, kwargs)
    r = VSet(recv.v)
    if recv.v.sm is not D:
        r.sm = recv.v.sm
    return _set_result(it, r, recv.m)


def st_clear(it, recv, args, kwargs):
    _none(it, "clear", args, kwargs)
    recv.v.clear()
    it.touch(recv.v)
    return NONE


# ------------------------------------------------------------------------------------- other value types
def _range_int(x: Any) -> Any:
    """The int a range can hold equal to ``x``, or None (Python scans the range for anything else)."""
    t = type(x)
    if t is int or t is bool:
        return x
    if t is float and x.is_integer():
        return int(x)
    return None


def r_count(it, recv, args, kwargs):
    x = _one(it, "count", args, kwargs)
    k = _range_int(x.v)
    return V(0 if k is None else recv.v.count(k), mm(recv.m, x.m))


def r_index(it, recv, args, kwargs):
    x = _one(it, "index", args, kwargs)
    k = _range_int(x.v)
    if k is None or k not in recv.v:
        raise it.err("ValueError", "value is not in range", mm(recv.m, x.m))
    return V(recv.v.index(k), mm(recv.m, x.m))


def e_args(it, recv):
    return V(tuple(V(it.w.key_value(a)) for a in recv.v.args), recv.m)


def f_is_integer(it, recv, args, kwargs):
    _none(it, "is_integer", args, kwargs)
    return V(float(recv.v).is_integer(), recv.m)


def i_bit_length(it, recv, args, kwargs):
    _none(it, "bit_length", args, kwargs)
    return V(recv.v.bit_length(), recv.m)


METHODS: dict[type, dict[str, Any]] = {
    str: {
        **{n: _py_method(n) for n in _STR_PLAIN},
        "replace": _py_method("replace", _g_replace),
        "center": _py_method("center", _g_width),
        "ljust": _py_method("ljust", _g_width),
        "rjust": _py_method("rjust", _g_width),
        "zfill": _py_method("zfill", _g_width),
        "expandtabs": _py_method("expandtabs", _g_tabs),
        "join": s_join,
        "format": s_format,
    },
    VList: {
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
    },
    tuple: {"index": l_index, "count": l_count},
    VDict: {
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
    },
    VSet: {
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
    },
    range: {"count": r_count, "index": r_index},
    float: {"is_integer": f_is_integer},
    int: {"bit_length": i_bit_length},
    _dt.datetime: {
        n: _py_method(
            n,
            _strftime_guard if n == "strftime" else _aware_only if n in ("timestamp", "astimezone") else None,
        )
        for n in (
            "isoformat",
            "strftime",
            "weekday",
            "isoweekday",
            "replace",
            "date",
            "time",
            "utcoffset",
            "timestamp",
            "astimezone",
            "toordinal",
        )
    },
    _dt.date: {
        n: _py_method(n, _strftime_guard if n == "strftime" else None)
        for n in ("isoformat", "strftime", "weekday", "isoweekday", "replace", "toordinal")
    },
    _dt.time: {
        n: _py_method(n, _strftime_guard if n == "strftime" else None)
        for n in ("isoformat", "strftime", "replace")
    },
    _dt.timedelta: {"total_seconds": _py_method("total_seconds")},
}
for _t in (_dt.datetime, _dt.date):
    METHODS[_t]["isocalendar"] = _py_method("isocalendar")

ATTRS: dict[type, dict[str, Any]] = {
    _dt.datetime: {
        n: _attr(n) for n in ("year", "month", "day", "hour", "minute", "second", "microsecond", "tzinfo")
    },
    _dt.date: {n: _attr(n) for n in ("year", "month", "day")},
    _dt.time: {n: _attr(n) for n in ("hour", "minute", "second", "microsecond", "tzinfo")},
    _dt.timedelta: {n: _attr(n) for n in ("days", "seconds", "microseconds")},
    range: {n: _attr(n) for n in ("start", "stop", "step")},
    ExcValue: {"args": e_args},
}


# --------------------------------------------------------------------------------------- the name table
def _unbound(t: type) -> dict[str, Any]:
    return {n: BoundMethod(n, None, impl) for n, impl in METHODS[t].items()}


def _dt_ctor(cls: type, name: str) -> Any:
    return _py_call(cls, name)


def _tz_guard(it, pa, pk):
    name = pa[1] if len(pa) > 1 else pk.get("name")
    if type(name) is str and len(name) > 64:  # strftime('%Z' * n) repeats it
        raise ValueError("timezone name too long (more than 64 characters)")


def _strptime_guard(it, pa, pk):
    for v, most, what in (
        (pa[0] if pa else pk.get("date_string"), 10_000, "date string"),
        (pa[1] if len(pa) > 1 else pk.get("format"), 500, "format"),
    ):
        if type(v) is str and len(v) > most:
            raise it.limit(f"strptime() {what} longer than {most} characters")


def _part_or_ctor(part: str, ctor: Any) -> Any:
    """``datetime.date`` / ``datetime.time`` reached from the datetime class: in Python the unbound methods
    (``datetime.date(dt)`` is the date part of dt); in programs written against the datetime *module* the
    classes (``datetime.date(2024, 1, 2)``). Both work: one datetime argument takes its part."""

    def impl(it, args, kwargs):
        if len(args) == 1 and not kwargs and type(args[0].v) is _dt.datetime:
            return METHODS[_dt.datetime][part](it, args[0], [], {})
        return ctor(it, args, kwargs)

    return impl


# The predefined names are the classes, as after ``from datetime import datetime, date, time, timedelta,
# timezone``. Reading the current date or time is refused (programs are deterministic and replayed).
_DATE = TypeRef(
    "datetime.date",
    _dt.date,
    _dt_ctor(_dt.date, "date"),
    {
        **_unbound(_dt.date),
        "fromisoformat": BuiltinFn("date.fromisoformat", _py_call(_dt.date.fromisoformat, "fromisoformat")),
        "fromordinal": BuiltinFn("date.fromordinal", _py_call(_dt.date.fromordinal, "fromordinal")),
        "today": _NOW.format(name="date.today"),
        "fromtimestamp": _NOW.format(name="date.fromtimestamp"),
        "min": V(_dt.date.min),
        "max": V(_dt.date.max),
        "resolution": V(_dt.date.resolution),
    },
)
_TIME = TypeRef(
    "datetime.time",
    _dt.time,
    _dt_ctor(_dt.time, "time"),
    {
        **_unbound(_dt.time),
        "fromisoformat": BuiltinFn("time.fromisoformat", _py_call(_dt.time.fromisoformat, "fromisoformat")),
        "min": V(_dt.time.min),
        "max": V(_dt.time.max),
        "resolution": V(_dt.time.resolution),
    },
)
_TIMEDELTA = TypeRef(
    "datetime.timedelta",
    _dt.timedelta,
    _dt_ctor(_dt.timedelta, "timedelta"),
    {
        **_unbound(_dt.timedelta),
        "min": V(_dt.timedelta.min),
        "max": V(_dt.timedelta.max),
        "resolution": V(_dt.timedelta.resolution),
    },
)
_TIMEZONE = TypeRef(
    "datetime.timezone",
    _dt.timezone,
    _py_call(_dt.timezone, "timezone", _tz_guard),
    {"utc": V(_dt.UTC), "min": V(_dt.timezone.min), "max": V(_dt.timezone.max)},
)
_DATETIME = TypeRef(
    "datetime.datetime",
    _dt.datetime,
    _dt_ctor(_dt.datetime, "datetime"),
    {
        **_unbound(_dt.datetime),
        "fromisoformat": BuiltinFn(
            "datetime.fromisoformat", _py_call(_dt.datetime.fromisoformat, "fromisoformat")
        ),
        "strptime": BuiltinFn(
            "datetime.strptime", _py_call(_dt.datetime.strptime, "strptime", _strptime_guard)
        ),
        "combine": BuiltinFn("datetime.combine", _py_call(_dt.datetime.combine, "combine")),
        "fromordinal": BuiltinFn("datetime.fromordinal", _py_call(_dt.datetime.fromordinal, "fromordinal")),
        "now": _NOW.format(name="datetime.now"),
        "today": _NOW.format(name="datetime.today"),
        "utcnow": _NOW.format(name="datetime.utcnow"),
        "fromtimestamp": _NOW.format(name="datetime.fromtimestamp"),
        "utcfromtimestamp": _NOW.format(name="datetime.utcfromtimestamp"),
        "min": V(_dt.datetime.min),
        "max": V(_dt.datetime.max),
        "resolution": V(_dt.datetime.resolution),
        # what programs written against the datetime module reach through the name (datetime.datetime,
        # datetime.timedelta, datetime.timezone.utc, datetime.UTC): unambiguous, so kept
        "timedelta": _TIMEDELTA,
        "timezone": _TIMEZONE,
        "UTC": V(_dt.UTC),
        "MINYEAR": V(_dt.MINYEAR),
        "MAXYEAR": V(_dt.MAXYEAR),
        "date": TypeRef("datetime.date", _dt.date, _part_or_ctor("date", _DATE.impl), _DATE.attrs),
        "time": TypeRef("datetime.time", _dt.time, _part_or_ctor("time", _TIME.impl), _TIME.attrs),
    },
)
_DATETIME.attrs["datetime"] = _DATETIME

_TYPES = {
    "str": TypeRef("str", str, b_str, _unbound(str)),
    "int": TypeRef("int", int, b_int),
    "float": TypeRef("float", float, b_float),
    "bool": TypeRef("bool", bool, b_bool),
    "list": TypeRef("list", list, b_list, _unbound(VList)),
    "dict": TypeRef("dict", dict, b_dict, _unbound(VDict)),
    "set": TypeRef("set", set, b_set, _unbound(VSet)),
    "tuple": TypeRef("tuple", tuple, b_tuple),
    "range": TypeRef("range", range, b_range),
}
TYPE_OF: dict[type, TypeRef] = {
    str: _TYPES["str"],
    int: _TYPES["int"],
    float: _TYPES["float"],
    bool: _TYPES["bool"],
    VList: _TYPES["list"],
    VDict: _TYPES["dict"],
    VSet: _TYPES["set"],
    tuple: _TYPES["tuple"],
    range: _TYPES["range"],
    NoneType: TypeRef("NoneType", NoneType),
    _dt.datetime: _DATETIME,
    _dt.date: _DATE,
    _dt.time: _TIME,
    _dt.timedelta: _TIMEDELTA,
    _dt.timezone: _TIMEZONE,
}

_FUNCS = {
    "len": b_len,
    "repr": b_repr,
    "sorted": b_sorted,
    "reversed": b_reversed,
    "enumerate": b_enumerate,
    "zip": b_zip,
    "min": b_min,
    "max": b_max,
    "sum": b_sum,
    "abs": b_abs,
    "round": b_round,
    "any": b_any,
    "all": b_all,
    "isinstance": b_isinstance,
    "print": b_print,
    "type": b_type,
    "divmod": b_divmod,
    "pow": b_pow,
    "chr": b_chr,
    "ord": b_ord,
    "hex": b_hex,
    "bin": b_bin,
    "format": b_format,
}


def _exceptions() -> dict[str, ExcClass]:
    out: dict[str, ExcClass] = {}
    for name, parent in (
        ("BaseException", None),
        ("Exception", "BaseException"),
        ("ArithmeticError", "Exception"),
        ("ZeroDivisionError", "ArithmeticError"),
        ("OverflowError", "ArithmeticError"),
        ("LookupError", "Exception"),
        ("KeyError", "LookupError"),
        ("IndexError", "LookupError"),
        ("ValueError", "Exception"),
        ("TypeError", "Exception"),
        ("AttributeError", "Exception"),
        ("NameError", "Exception"),
        ("RuntimeError", "Exception"),
        ("NotImplementedError", "RuntimeError"),
        ("AssertionError", "Exception"),
        ("ToolError", "Exception"),
    ):
        out[name] = ExcClass(name, out[parent] if parent else None)
    return out


BUILTINS: dict[str, V] = {
    **{n: V(BuiltinFn(n, f)) for n, f in _FUNCS.items()},
    **{n: V(t) for n, t in _TYPES.items()},
    **{n: V(c) for n, c in _exceptions().items()},
    "datetime": V(_DATETIME),
    "date": V(_DATE),
    "time": V(_TIME),
    "timedelta": V(_TIMEDELTA),
    "timezone": V(_TIMEZONE),
}
BUILTIN_NAMES = frozenset(BUILTINS)
