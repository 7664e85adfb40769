"""The interpreter's value model: every program value is a ``V(v, m)`` -- a plain value and its Meta.

* Scalars (None, bool, int, float, str, datetime objects, range, markers) are stored as they are.
* ``VList`` / ``tuple`` hold ``V`` elements; ``VDict`` maps plain hashable keys to ``V`` values; ``VSet``
  holds plain hashable elements. Containers are shared by reference, so in-place mutation is seen through
  every alias, as in Python.
* ``V.m`` is the meta of the *reference* (how the value was obtained). A mutable container additionally has
  a *structure meta* ``sm`` stored on the container object itself (shared by all aliases): it grows when
  the container is mutated under a tainted context or by tainted keys, and holds the metas of set elements
  and dict keys.
* Reading an element yields ``element.m | reference.m | container.sm``; the meta of a container as a whole
  (``eff``) is the merge of its reference meta, structure meta and all elements.

V objects are never mutated after creation; containers are.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from relay.meta import DEFAULT_META, Meta

from .errors import InterpreterError

D = DEFAULT_META


class V:
    __slots__ = ("v", "m")

    def __init__(self, v: Any, m: Meta = D) -> None:
        self.v = v
        self.m = m

    def __repr__(self) -> str:
        return f"V({self.v!r}, {self.m!r})"


class VList(list[Any]):
    """A program list of ``V``; ``sm`` is its structure meta."""

    sm = D


class VDict(dict[Any, Any]):
    """A program dict: plain hashable key -> ``V``; ``sm`` includes the metas of keys."""

    sm = D


class VSet(set[Any]):
    """A program set of plain hashable values; ``sm`` is the merge of the elements' metas."""

    sm = D


CONTAINERS = frozenset({VList, VDict, VSet, tuple})


# ---------------------------------------------------------------------------------------------------------
# Meta merging (hot path): identity fast paths plus a bounded cache keyed by the two metas.
_MERGE_CACHE: dict[tuple[Meta, Meta], Meta] = {}


def mm(a: Meta, b: Meta) -> Meta:
    if b is D or a is b:
        return a
    if a is D:
        return b
    key = (a, b)
    r = _MERGE_CACHE.get(key)
    if r is None:
        r = a.merge(b)
        if r == a:
            r = a
        elif r == b:
            r = b
        if len(_MERGE_CACHE) > 4096:
            _MERGE_CACHE.clear()
        _MERGE_CACHE[key] = r
    return r


def norm(m: Meta) -> Meta:
    """The DEFAULT_META singleton for any meta equal to it (keeps the identity fast paths effective)."""
    return D if m is D or m == D else m


# ---------------------------------------------------------------------------------------------------------
# Markers: callables, types and modules a program can name. Hashable and ordered by name (determinism).
class Marker:
    __slots__ = ("name",)
    label = "object"

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.label} {self.name}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((self.label, self.name))


class BuiltinFn(Marker):
    __slots__ = ("impl",)
    label = "built-in function"

    def __init__(self, name: str, impl: Any) -> None:
        super().__init__(name)
        self.impl = impl


class TypeRef(Marker):
    """A type usable in isinstance and as a constructor (str, list, datetime.datetime, ...)."""

    __slots__ = ("pytype", "impl", "attrs")
    label = "class"

    def __init__(self, name: str, pytype: Any, impl: Any = None, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(name)
        self.pytype = pytype
        self.impl = impl
        self.attrs = attrs if attrs is not None else {}

    def __repr__(self) -> str:
        return f"<class '{self.name}'>"


class ModuleRef(Marker):
    __slots__ = ("attrs",)
    label = "module"

    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        super().__init__(name)
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<module '{self.name}'>"


class ExcClass(Marker):
    __slots__ = ("parent",)
    label = "class"

    def __init__(self, name: str, parent: ExcClass | None) -> None:
        super().__init__(name)
        self.parent = parent

    def __repr__(self) -> str:
        return f"<class '{self.name}'>"

    def is_sub(self, other: ExcClass) -> bool:
        c: ExcClass | None = self
        while c is not None:
            if c is other:
                return True
            c = c.parent
        return False


class ToolRef(Marker):
    label = "tool"

    def __repr__(self) -> str:
        return f"<tool '{self.name}'>"


class BoundMethod(Marker):
    """``x.method`` not called at once (or ``str.lower`` with recv None: the first argument is the receiver)."""

    __slots__ = ("recv", "impl")
    label = "method"

    def __init__(self, name: str, recv: V | None, impl: Any) -> None:
        super().__init__(name)
        self.recv = recv
        self.impl = impl

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return hash((self.label, self.name))


class ExcValue:
    """An exception value inside the program (``except Exception as e``)."""

    __slots__ = ("cls", "args")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, cls: ExcClass, args: tuple[Any, ...]) -> None:
        self.cls = cls
        self.args = args

    def message(self) -> str:
        """The exception's text (never raises: an argument that cannot be printed is named, not shown)."""
        if not self.args:
            return ""
        if len(self.args) == 1:
            a = self.args[0]
            if self.cls.name == "KeyError":
                return safe_repr(a)
            return a if type(a) is str else safe_repr(a)
        return safe_repr(self.args)

    def __repr__(self) -> str:
        return f"{self.cls.name}({', '.join(safe_repr(a) for a in self.args)})"


NoneType = type(None)
DATETIME_TYPES = (_dt.datetime, _dt.date, _dt.time, _dt.timedelta, _dt.timezone)
SCALARS = frozenset(
    {
        NoneType,
        bool,
        int,
        float,
        str,
        range,
        ExcValue,
        BuiltinFn,
        TypeRef,
        ModuleRef,
        ExcClass,
        ToolRef,
        BoundMethod,
        *DATETIME_TYPES,
    }
)
PLAIN_KEY_TYPES = frozenset({NoneType, bool, int, float, str, *DATETIME_TYPES})

TYPE_NAMES = {
    VList: "list",
    VDict: "dict",
    VSet: "set",
    tuple: "tuple",
    NoneType: "NoneType",
    BuiltinFn: "builtin_function_or_method",
    TypeRef: "type",
    ModuleRef: "module",
    ExcClass: "type",
    ToolRef: "function",
    BoundMethod: "builtin_function_or_method",
    _dt.datetime: "datetime.datetime",
    _dt.date: "datetime.date",
    _dt.time: "datetime.time",
    _dt.timedelta: "datetime.timedelta",
    _dt.timezone: "datetime.timezone",
}


def type_name(v: Any) -> str:
    if type(v) is ExcValue:
        return v.cls.name
    return TYPE_NAMES.get(type(v)) or type(v).__name__


# ---------------------------------------------------------------------------------------------------------
# Scalar conversions that CPython bounds on its own or that JSON cannot carry. int <-> decimal str beyond
# 4300 digits (sys.get_int_max_str_digits) raises ValueError with a hint about ``sys`` that means nothing to a
# program; JSON has no NaN/Infinity, and integers that long are not representable for its consumers.
INT_STR_DIGITS = 4300
MAX_JSON_INT_BITS = 14_284  # every int of at most this many bits has at most 4300 decimal digits
INT_STR_MESSAGE = f"Exceeds the limit ({INT_STR_DIGITS} digits) for integer string conversion"
_INF = float("inf")


def int_str(v: int) -> str:
    """``str(v)`` of an int (or bool): ValueError with a clean message when it has too many digits."""
    try:
        return repr(v)
    except ValueError:
        raise ValueError(INT_STR_MESSAGE) from None


def scalar_str(v: Any) -> str:
    """``str(v)`` of a scalar (never a container): ValueError, never anything else, when it cannot be."""
    t = type(v)
    if t is str:
        s: str = v
        return s
    if t is int:
        return int_str(v)
    if t is ExcValue:
        message: str = v.message()
        return message
    try:
        return str(v)
    except ValueError:  # range(2 ** 20000)
        raise ValueError(INT_STR_MESSAGE) from None


class NotJSON(InterpreterError):
    """A value that has no JSON form (an integer with more than 4300 digits, NaN, infinity): a program
    error (kind "runtime") the planner can fix. ``reason`` is from a fixed vocabulary (no data in it)."""

    def __init__(self, reason: str, meta: Meta = D, what: str = "a tool argument") -> None:
        super().__init__("runtime", f"{what} cannot be represented as JSON: {reason}", None, meta)
        self.reason = reason


def int_text_cost(v: int) -> int:
    """Characters charged for writing an integer in decimal: CPython's conversion is quadratic in the
    number of digits (4300 digits: ~0.5 ms), so a long integer repeated by reference is expensive to print."""
    digits = v.bit_length() * 30103 // 100_000 + 1
    return digits + digits * digits // 64


def json_int(v: int, meta: Meta) -> int:
    if (v > 0 and v.bit_length() > MAX_JSON_INT_BITS) or (v < 0 and (-v).bit_length() > MAX_JSON_INT_BITS):
        raise NotJSON(f"integer too large (more than {INT_STR_DIGITS} digits)", meta)
    return v


def json_float(v: float, meta: Meta) -> float:
    if v != v:
        raise NotJSON("NaN (not a number)", meta)
    if v == _INF or v == -_INF:
        raise NotJSON("infinity", meta)
    return v


def plain_repr(v: Any) -> str:
    """repr of a plain hashable/scalar value (tuples of scalars included). ValueError for an integer with
    too many digits to print."""
    t = type(v)
    if t is str:
        return repr(v)
    if t is int:
        return int_str(v)
    if t is tuple:
        if len(v) == 1:
            return "(" + plain_repr(v[0]) + ",)"
        return "(" + ", ".join([plain_repr(e) for e in v]) + ")"
    if t is list:
        return "[" + ", ".join([plain_repr(e) for e in v]) + "]"
    if t is dict:
        return "{" + ", ".join([plain_repr(k) + ": " + plain_repr(e) for k, e in v.items()]) + "}"
    if t is set:
        return "{" + ", ".join([plain_repr(e) for e in sorted_plain(v)]) + "}" if v else "set()"
    try:
        return repr(v)
    except ValueError:  # range(2 ** 20000)
        raise ValueError(INT_STR_MESSAGE) from None


def safe_repr(v: Any) -> str:
    """plain_repr that never raises (exception messages): an integer too long to print is named instead."""
    try:
        return plain_repr(v)
    except (ValueError, RecursionError):
        return "<value too large to print>"


def _fallback_key(x: Any) -> tuple[str, str]:
    return (type(x).__name__, safe_repr(x))


def sorted_plain(s: Any) -> list[Any]:
    """Deterministic order of a set's elements (never hash order, which varies between processes)."""
    try:
        return sorted(s)
    except TypeError:
        return sorted(s, key=_fallback_key)


def min_plain(s: Any) -> Any:
    """``sorted_plain(s)[0]`` in linear time (``s`` not empty)."""
    try:
        return min(s)
    except TypeError:
        return min(s, key=_fallback_key)


def json_scalar(v: Any) -> Any:
    """JSON form of a scalar (NotJSON for a too-long integer, NaN or infinity)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return json_int(v, D)
    if t is float:
        return json_float(v, D)
    if t is ExcValue:
        return v.message()
    if t in (TypeRef, ExcClass, ModuleRef, BuiltinFn, ToolRef, BoundMethod):
        return repr(v)
    try:
        return str(v)
    except ValueError:  # range(2 ** 20000)
        raise NotJSON(f"integer too large (more than {INT_STR_DIGITS} digits)") from None


def json_scalar_deep(v: Any) -> Any:
    """JSON form of a plain hashable value (set elements, dict keys): tuples become lists."""
    if type(v) is tuple:
        return [json_scalar_deep(e) for e in v]
    return json_scalar(v)


def json_key(k: Any) -> Any:
    t = type(k)
    if t is float and (k != k or k == _INF or k == -_INF):
        return "NaN" if k != k else "Infinity" if k > 0 else "-Infinity"
    if t is str or t is float or t is bool or k is None:
        return k
    if t is int:
        return json_int(k, D)
    if t is tuple:
        try:
            return plain_repr(k)
        except ValueError:
            raise NotJSON(f"integer too large (more than {INT_STR_DIGITS} digits)") from None
    return json_scalar(k)
