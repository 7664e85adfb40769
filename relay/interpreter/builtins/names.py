"""The predefined names of a program: builtin functions, types, exception classes, the datetime classes."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ..values import BuiltinFn, ExcClass, ExcValue, NoneType, TypeRef, V, VDict, VList, VSet, type_name
from .arguments import no_kwargs
from .constructors import b_bool, b_dict, b_float, b_int, b_list, b_range, b_set, b_str, b_tuple
from .datetime_classes import DATE, DATETIME, TIME, TIMEDELTA, TIMEZONE
from .functions import (
    b_abs,
    b_all,
    b_any,
    b_bin,
    b_chr,
    b_divmod,
    b_enumerate,
    b_format,
    b_hex,
    b_isinstance,
    b_len,
    b_max,
    b_min,
    b_ord,
    b_pow,
    b_print,
    b_repr,
    b_reversed,
    b_round,
    b_sorted,
    b_sum,
    b_zip,
)
from .method_table import unbound_methods


def b_type(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
    no_kwargs(it, "type", kwargs)
    if len(args) != 1:
        raise it.err("TypeError", "type() takes exactly one argument here")
    x = args[0]
    if type(x.v) is ExcValue:
        return V(x.v.cls, x.m)
    ref = TYPE_OF.get(type(x.v))
    if ref is None:
        ref = TypeRef(type_name(x.v), None)
    return V(ref, x.m)


_TYPES = {
    "str": TypeRef("str", str, b_str, unbound_methods(str)),
    "int": TypeRef("int", int, b_int),
    "float": TypeRef("float", float, b_float),
    "bool": TypeRef("bool", bool, b_bool),
    "list": TypeRef("list", list, b_list, unbound_methods(VList)),
    "dict": TypeRef("dict", dict, b_dict, unbound_methods(VDict)),
    "set": TypeRef("set", set, b_set, unbound_methods(VSet)),
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
    _dt.datetime: DATETIME,
    _dt.date: DATE,
    _dt.time: TIME,
    _dt.timedelta: TIMEDELTA,
    _dt.timezone: TIMEZONE,
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
    "datetime": V(DATETIME),
    "date": V(DATE),
    "time": V(TIME),
    "timedelta": V(TIMEDELTA),
    "timezone": V(TIMEZONE),
}


BUILTIN_NAMES = frozenset(BUILTINS)
