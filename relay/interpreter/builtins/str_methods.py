"""The methods of ``str``: Python's own, with a size check before those that can grow a string."""

from __future__ import annotations

import string as _string
from typing import Any

from ..values import V, mm, type_name
from .arguments import check_size_capped, no_kwargs
from .python_calls import py_method

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


def _g_replace(it: Any, s: str, pa: list[Any], pk: dict[str, Any]) -> None:
    if len(pa) < 2 or type(pa[0]) is not str or type(pa[1]) is not str:
        return  # let str.replace raise the TypeError
    cnt = s.count(pa[0])
    limit = pa[2] if len(pa) > 2 else pk.get("count", -1)
    if type(limit) is int and limit >= 0:
        cnt = min(cnt, limit)
    size = len(s) + cnt * (len(pa[1]) - len(pa[0]))
    it.check_size(size, "string")
    it.alloc(size)


def _g_width(it: Any, s: str, pa: list[Any], pk: dict[str, Any]) -> None:
    w = pa[0] if pa else pk.get("width", 0)
    if type(w) is int and w > len(s):
        check_size_capped(it, w, "string")
        it.alloc(w)


def _g_tabs(it: Any, s: str, pa: list[Any], pk: dict[str, Any]) -> None:
    t = pa[0] if pa else pk.get("tabsize", 8)
    if type(t) is int and t > 0:
        size = len(s) + s.count("\t") * t
        check_size_capped(it, size, "string")
        it.alloc(size)


def s_join(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "join", kwargs)
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


def s_format(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
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


STR_METHODS: dict[str, Any] = {
    **{n: py_method(n) for n in _STR_PLAIN},
    "replace": py_method("replace", _g_replace),
    "center": py_method("center", _g_width),
    "ljust": py_method("ljust", _g_width),
    "rjust": py_method("rjust", _g_width),
    "zfill": py_method("zfill", _g_width),
    "expandtabs": py_method("expandtabs", _g_tabs),
    "join": s_join,
    "format": s_format,
}
