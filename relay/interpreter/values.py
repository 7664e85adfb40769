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
  (``eff``) is the merge of its reference meta, structure meta and all elements (sqrt.md §6.1).

V objects are never mutated after creation; containers are.
"""

from __future__ import annotations

import datetime as _dt
from time import perf_counter
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


class VList(list):
    """A program list of ``V``; ``sm`` is its structure meta."""

    sm = D


class VDict(dict):
    """A program dict: plain hashable key -> ``V``; ``sm`` includes the metas of keys."""

    sm = D


class VSet(set):
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
        return type(other) is type(self) and other.name == self.name  # type: ignore[attr-defined]

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

    def __init__(self, name: str, pytype: Any, impl: Any = None, attrs: dict | None = None) -> None:
        super().__init__(name)
        self.pytype = pytype
        self.impl = impl
        self.attrs = attrs if attrs is not None else {}

    def __repr__(self) -> str:
        return f"<class '{self.name}'>"


class ModuleRef(Marker):
    __slots__ = ("attrs",)
    label = "module"

    def __init__(self, name: str, attrs: dict) -> None:
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

    def __init__(self, cls: ExcClass, args: tuple) -> None:
        self.cls = cls
        self.args = args

    def message(self) -> str:
        if not self.args:
            return ""
        if len(self.args) == 1:
            a = self.args[0]
            if self.cls.name == "KeyError":
                return plain_repr(a)
            return a if type(a) is str else plain_repr(a)
        return plain_repr(self.args)

    def __repr__(self) -> str:
        return f"{self.cls.name}({', '.join(plain_repr(a) for a in self.args)})"


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
# Walkers. All are bounded: nesting depth <= maxd, nodes visited <= budget (a DAG of shared containers can
# be exponentially large when expanded).
def _too_deep() -> None:
    raise InterpreterError(
        "limit", "Limit exceeded: value nested too deeply (or a container contains itself)"
    )


def _too_big() -> None:
    raise InterpreterError("limit", "Limit exceeded: value too large to convert (too many elements)")


class Walker:
    """Deep operations on values, bounded by the run's limits: nesting depth, nodes visited per walk, and
    the run's wall-clock deadline (checked every 1024 container elements)."""

    __slots__ = ("maxd", "max_nodes", "budget", "deadline", "_tick")

    def __init__(self, maxd: int, max_nodes: int, deadline: float = float("inf")) -> None:
        self.maxd = maxd
        self.max_nodes = max_nodes
        self.budget = max_nodes
        self.deadline = deadline
        self._tick = 0

    def _spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            _too_big()
        self._tick += n
        if self._tick > 1024:
            self._tick = 0
            if perf_counter() > self.deadline:
                raise InterpreterError("limit", "Limit exceeded: wall time exceeded")

    def key_value(self, k: Any) -> Any:
        """The program form of a plain hashable key (tuples become tuples of V)."""
        if type(k) is not tuple:
            return k
        self.budget = self.max_nodes
        return self._wrap(k, 0)

    # -- effective (deep) meta
    def eff(self, x: V) -> Meta:
        if type(x.v) not in CONTAINERS:
            return x.m
        self.budget = self.max_nodes
        return self._eff(x, 0)

    def _eff(self, x: V, depth: int) -> Meta:
        v = x.v
        t = type(v)
        m = x.m
        if t is VSet:
            return mm(m, v.sm)
        if depth > self.maxd:
            _too_deep()
        self._spend(len(v))
        if t is not tuple:
            m = mm(m, v.sm)
        for e in v.values() if t is VDict else v:
            if type(e.v) in CONTAINERS:
                m = mm(m, self._eff(e, depth + 1))
            else:
                m = mm(m, e.m)
        return m

    # -- plain Python value (containers converted to list/dict/tuple/set)
    def plain(self, x: V) -> Any:
        if type(x.v) not in CONTAINERS:
            return x.v
        self.budget = self.max_nodes
        return self._plain(x.v, 0)

    def _plain(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t not in CONTAINERS:
            return v
        if depth > self.maxd:
            _too_deep()
        self._spend(len(v))
        if t is VSet:
            return set(v)
        d1 = depth + 1
        if t is VDict:
            return {k: self._plain(e.v, d1) for k, e in v.items()}
        if t is VList:
            return [self._plain(e.v, d1) for e in v]
        return tuple(self._plain(e.v, d1) for e in v)

    # -- JSON-safe value and effective meta in one pass (tool arguments, namespace snapshot)
    def json_meta(self, x: V) -> tuple[Any, Meta]:
        self.budget = self.max_nodes
        return self._json(x, 0)

    def _json(self, x: V, depth: int) -> tuple[Any, Meta]:
        v = x.v
        t = type(v)
        m = x.m
        if t not in CONTAINERS:
            return json_scalar(v), m
        if depth > self.maxd:
            _too_deep()
        self._spend(len(v))
        if t is VSet:
            return [json_scalar_deep(e) for e in sorted_plain(v)], mm(m, v.sm)
        d1 = depth + 1
        if t is VDict:
            m = mm(m, v.sm)
            out = {}
            for k, e in v.items():
                j, em = self._json(e, d1)
                out[json_key(k)] = j
                m = mm(m, em)
            return out, m
        if t is VList:
            m = mm(m, v.sm)
        lst = []
        for e in v:
            j, em = self._json(e, d1)
            lst.append(j)
            m = mm(m, em)
        return lst, m

    # -- wrap a plain value (tool result, context variable) into V: the top gets ``m``, elements DEFAULT
    # (reading them merges the container's meta, so every element read carries ``m``).
    def wrap(self, x: Any, m: Meta = D) -> V:
        self.budget = self.max_nodes
        return V(self._wrap(x, 0), m)

    def _wrap(self, x: Any, depth: int) -> Any:
        t = type(x)
        if t in SCALARS:
            return x
        if depth > self.maxd:
            _too_deep()
        if t is list or t is VList or t is tuple:
            self._spend(len(x))
            d1 = depth + 1
            items = [V(self._wrap(e, d1)) for e in x]
            return tuple(items) if t is tuple else VList(items)
        if t is dict or t is VDict:
            self._spend(len(x))
            d1 = depth + 1
            return VDict({self._key(k, d1): V(self._wrap(e, d1)) for k, e in x.items()})
        if t is set or t is frozenset or t is VSet:
            self._spend(len(x))
            return VSet(self._key(k, depth + 1) for k in x)
        if isinstance(x, str):  # str subclasses (enums...) become plain str
            return str.__str__(x)
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        return str(x)  # any other object: its string form (never a live Python object)

    def _key(self, k: Any, depth: int) -> Any:
        t = type(k)
        if t in PLAIN_KEY_TYPES:
            return k
        if t is tuple:
            if depth > self.maxd:
                _too_deep()
            return tuple(self._key(e, depth + 1) for e in k)
        return self._wrap(k, depth)  # normalises str/int subclasses; other objects become str

    # -- repr / str (deterministic: sets print sorted)
    def repr(self, x: V) -> str:
        self.budget = self.max_nodes
        return self._repr(x.v, 0)

    def str(self, x: V) -> str:
        v = x.v
        t = type(v)
        if t is str:
            return v
        if t is ExcValue:
            return v.message()
        if t in CONTAINERS:
            return self.repr(x)
        return str(v)

    def _repr(self, v: Any, depth: int) -> str:
        t = type(v)
        if t not in CONTAINERS:
            return plain_repr(v) if t is not ExcValue else repr(v)
        if depth > self.maxd:
            _too_deep()
        self._spend(len(v) + 1)
        d1 = depth + 1
        if t is VList:
            return "[" + ", ".join([self._repr(e.v, d1) for e in v]) + "]"
        if t is tuple:
            if len(v) == 1:
                return "(" + self._repr(v[0].v, d1) + ",)"
            return "(" + ", ".join([self._repr(e.v, d1) for e in v]) + ")"
        if t is VDict:
            return "{" + ", ".join([plain_repr(k) + ": " + self._repr(e.v, d1) for k, e in v.items()]) + "}"
        if not v:
            return "set()"
        return "{" + ", ".join([plain_repr(e) for e in sorted_plain(v)]) + "}"


def plain_repr(v: Any) -> str:
    """repr of a plain hashable/scalar value (tuples of scalars included)."""
    t = type(v)
    if t is tuple:
        if len(v) == 1:
            return "(" + plain_repr(v[0]) + ",)"
        return "(" + ", ".join(plain_repr(e) for e in v) + ")"
    if t is list:
        return "[" + ", ".join(plain_repr(e) for e in v) + "]"
    if t is dict:
        return "{" + ", ".join(plain_repr(k) + ": " + plain_repr(e) for k, e in v.items()) + "}"
    if t is set:
        return "{" + ", ".join(plain_repr(e) for e in sorted_plain(v)) + "}" if v else "set()"
    return repr(v)


def _fallback_key(x: Any) -> tuple[str, str]:
    return (type(x).__name__, plain_repr(x))


def sorted_plain(s: Any) -> list:
    """Deterministic order of a set's elements (never hash order, which varies between processes)."""
    try:
        return sorted(s)
    except TypeError:
        return sorted(s, key=_fallback_key)


def json_scalar(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None:
        return v
    if t is ExcValue:
        return v.message()
    if t in (TypeRef, ExcClass, ModuleRef, BuiltinFn, ToolRef, BoundMethod):
        return repr(v)
    return str(v)


def json_scalar_deep(v: Any) -> Any:
    """JSON form of a plain hashable value (set elements, dict keys): tuples become lists."""
    if type(v) is tuple:
        return [json_scalar_deep(e) for e in v]
    return json_scalar(v)


def json_key(k: Any) -> Any:
    t = type(k)
    if t is str or t is int or t is float or t is bool or k is None:
        return k
    if t is tuple:
        return plain_repr(k)
    return str(k)
