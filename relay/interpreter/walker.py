"""Deep operations on interpreter values (``Walker``): str/repr, JSON with metas, hashing keys, searching.

All are bounded: nesting depth <= maxd, nodes visited <= budget (a DAG of shared containers can be
exponentially large when expanded), characters of long strings met <= the character budget (C-level
comparisons, copies and serialisation of a string cost its length each time it occurs, even when all the
occurrences are the same object), and the run's deadline.
"""

from __future__ import annotations

import builtins
from time import perf_counter
from typing import Any

from relay.meta import Meta

from .errors import InterpreterError
from .values import (
    CONTAINERS,
    INT_STR_DIGITS,
    PLAIN_KEY_TYPES,
    SCALARS,
    BoundMethod,
    D,
    ExcValue,
    NotJSON,
    V,
    VDict,
    VList,
    VSet,
    int_text_cost,
    json_float,
    json_int,
    json_scalar,
    mm,
    plain_repr,
    scalar_str,
    sorted_plain,
)

_INF = float("inf")

UNHASHABLE = frozenset({VList, VDict, VSet, ExcValue, BoundMethod})
LONG_STR = 64  # strings up to this long are counted as one node; longer ones by their length


def _too_deep() -> None:
    raise InterpreterError(
        "limit", "Limit exceeded: value nested too deeply (or a container contains itself)"
    )


def _too_big() -> None:
    raise InterpreterError("limit", "Limit exceeded: value too large to convert (too many elements)")


class Walker:
    """Deep operations on values, bounded by the run's limits: nesting depth, nodes visited per walk,
    characters of long strings met per walk (``max_chars``, default 64 per node of ``max_nodes``), output
    characters of ``repr``/``str`` (``max_nodes``: the maximum string size) and the run's wall-clock deadline
    (checked every ~1024 units of work)."""

    __slots__ = ("maxd", "max_nodes", "budget", "deadline", "_tick", "max_chars", "chars", "out", "_canon")

    def __init__(
        self, maxd: int, max_nodes: int, deadline: float = _INF, max_chars: int | None = None
    ) -> None:
        self.maxd = maxd
        self.max_nodes = max_nodes
        self.budget = max_nodes
        self.deadline = deadline
        self._tick = 0
        self.max_chars = 64 * max_nodes if max_chars is None else max_chars
        self.chars = self.max_chars
        self.out = max_nodes
        self._canon: dict[str, str] | None = None

    def _clock(self) -> None:
        self._tick = 0
        if perf_counter() > self.deadline:
            raise InterpreterError("limit", "Limit exceeded: wall time exceeded")

    def _spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            _too_big()
        self._tick += n
        if self._tick > 1024:
            self._clock()

    def spend_chars(self, n: int) -> None:
        """Count ``n`` characters compared/copied against the character budget of the current walk."""
        self.chars -= n
        if self.chars < 0:
            raise InterpreterError(
                "limit",
                f"Limit exceeded: more than {self.max_chars} characters to compare or convert in one operation "
                "(a string counts each time it occurs in a container)",
            )
        self._tick += n >> 6
        if self._tick > 1024:
            self._clock()

    def tick(self, n: int = 1) -> None:
        """``n`` units of work done by a caller's own loop (checks the deadline now and then)."""
        self._tick += n
        if self._tick > 1024:
            self._clock()

    @staticmethod
    def str_size(v: Any) -> int:
        """An upper bound of the length of the string form of a plain scalar (%-format, str.format)."""
        t = type(v)
        if t is str:
            return len(v)
        if t is int:
            digits: int = v.bit_length() // 3 + 2
            return digits  # decimal, octal or hex digits and a sign
        if t is float:
            return 330
        return 100

    def key_value(self, k: Any) -> Any:
        """The program form of a plain hashable key (tuples become tuples of V)."""
        if type(k) is not tuple:
            return k
        self.budget = self.max_nodes
        return self._wrap(k, 0)

    # -- plain hashable key (dict keys, set elements)
    def hkey(self, x: V, unhashable: Any) -> Any:
        """The plain hashable key of a tuple value: a tree of plain tuples whose expanded size is at most
        ``max_nodes`` (a DAG of shared tuples is exponentially large when expanded, and Python hashes and
        compares nested tuples by expanding them: so the key is built, and bounded, once). Long strings in
        it are canonicalised (one object per content in this run), so comparing keys finds them identical
        without comparing characters. For a list/dict/set/exception/method inside, raises
        ``unhashable(element)`` (a callable returning the exception)."""
        self.budget = self.max_nodes
        return self._hkey(x, 0, unhashable)

    def _hkey(self, x: V, depth: int, unhashable: Any) -> Any:
        v = x.v
        t = type(v)
        if t is tuple:
            if depth > self.maxd:
                _too_deep()
            self._spend(len(v) + 1)
            d1 = depth + 1
            return tuple([self._hkey(e, d1, unhashable) for e in v])
        if t is str:
            if len(v) > LONG_STR:
                c = self._canon
                if c is None:
                    c = self._canon = {}
                return c.setdefault(v, v)
            return v
        if t in UNHASHABLE:
            raise unhashable(x)
        return v

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
            m = mm(m, self._eff(e, depth + 1)) if type(e.v) in CONTAINERS else mm(m, e.m)
        return m

    # -- plain Python value (containers converted to list/dict/tuple/set)
    def plain(self, x: V) -> Any:
        if type(x.v) not in CONTAINERS:
            return x.v
        self.budget = self.max_nodes
        self.chars = self.max_chars
        return self._plain(x.v, 0)

    def plain_keys(self, elems: list[V]) -> list[Any]:
        """The plain values of many elements (sort, min/max keys): the node budget applies to each element,
        the character budget to all of them together (sorting compares a string O(log n) times, and the
        same long string repeated a million times costs a million comparisons of its whole length)."""
        self.chars = self.max_chars
        out = []
        n = 0
        for e in elems:
            v = e.v
            t = type(v)
            if t is str:
                if len(v) > LONG_STR:
                    n += len(v)
            elif t is int:
                if not -0x1000 < v < 0x1000 and v.bit_length() > 256:
                    n += v.bit_length() >> 3  # comparing big integers costs their size
            elif t in CONTAINERS:
                self.budget = self.max_nodes
                v = self._plain(v, 0)
            out.append(v)
        self.spend_chars(n)
        self.tick(len(elems) >> 4)
        return out

    def _plain(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t not in CONTAINERS:
            if t is str:
                if len(v) > LONG_STR:
                    self.spend_chars(len(v))
            elif t is int and not -0x1000 < v < 0x1000 and v.bit_length() > 256:
                self.spend_chars(v.bit_length() >> 3)
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
        return tuple([self._plain(e.v, d1) for e in v])

    def index(self, elems: Any, x: V, count: bool = False) -> int:  # noqa: C901 - fast paths by the type of x
        """Python ``==`` search of ``x`` among the V ``elems``: the index of the first equal element (-1 if
        none), or with ``count`` the number of equal elements. Bounded like ``plain_keys`` (and the deadline
        is checked as it goes: each comparison may cost the size of ``x``)."""
        xv = x.v
        tx = type(xv)
        n = 0
        self.chars = self.max_chars
        if tx not in CONTAINERS:
            if tx is str and len(xv) > LONG_STR:
                size = len(xv)
                for i, e in enumerate(elems):
                    ev = e.v
                    if type(ev) is str and len(ev) == size:  # str == compares lengths first
                        self.spend_chars(size)
                        if ev == xv:
                            if not count:
                                return i
                            n += 1
                return n if count else -1
            for i, e in enumerate(elems):
                ev = e.v
                if type(ev) not in CONTAINERS and ev == xv:
                    if not count:
                        return i
                    n += 1
                if i & 0xFFF == 0xFFF:
                    self.tick(4096)
            return n if count else -1
        self.budget = self.max_nodes
        px = self._plain(xv, 0)
        for i, e in enumerate(elems):
            ev = e.v
            if type(ev) in CONTAINERS:
                self.budget = self.max_nodes
                ev = self._plain(ev, 0)
            elif type(ev) is str and len(ev) > LONG_STR:
                self.spend_chars(len(ev))
            if ev == px:
                if not count:
                    return i
                n += 1
            if i & 0xFFF == 0xFFF:
                self.tick(4096)
        return n if count else -1

    # -- JSON-safe value and effective meta in one pass (tool arguments, namespace snapshot): NotJSON for a
    # value JSON cannot represent
    def json_meta(self, x: V, budget: int | None = None) -> tuple[Any, Meta]:
        self.budget = self.max_nodes if budget is None else budget
        self.chars = self.max_chars
        if type(x.v) in CONTAINERS:
            self.expanded_size(x.v, self.budget)  # a DAG bomb or a cycle fails at once, not after the budget
        return self._json(x, 0)

    def expanded_size(self, v: Any, most: int) -> int:
        """The number of elements of container ``v`` counted with repetition (what a walk would visit), in
        time linear in its *distinct* containers; ``_too_big`` beyond ``most``, ``_too_deep`` for a cycle or
        nesting deeper than ``maxd``."""
        return self._size(v, 0, {}, most)

    def _size(self, v: Any, depth: int, memo: dict[int, int], most: int) -> int:
        key = id(v)
        n = memo.get(key)
        if n is not None:
            if n < 0:
                _too_deep()  # on the current path: the container contains itself
            return n
        if depth > self.maxd:
            _too_deep()
        memo[key] = -1
        t = type(v)
        n = len(v)
        if n > most:
            _too_big()
        if t is not VSet:
            d1 = depth + 1
            for e in v.values() if t is VDict else v:
                ev = e.v
                if type(ev) in CONTAINERS:
                    n += self._size(ev, d1, memo, most)
                    if n > most:
                        _too_big()
        memo[key] = n
        return n

    def _json(self, x: V, depth: int) -> tuple[Any, Meta]:
        v = x.v
        t = type(v)
        m = x.m
        if t not in CONTAINERS:
            if t is str:
                if len(v) > LONG_STR:
                    self.spend_chars(len(v))
                return v, m
            if t is int:
                if not -0x1000 < v < 0x1000 and v.bit_length() > 64:
                    self.spend_chars(int_text_cost(v))
                return json_int(v, m), m
            if t is float:
                return json_float(v, m), m
            r = json_scalar(v)
            if type(r) is str and len(r) > LONG_STR:
                # ranges of big integers print them (quadratic in their digits), other text once
                self.spend_chars(len(r) * len(r) // 64 if t is range else len(r))
            return r, m
        if depth > self.maxd:
            _too_deep()
        self._spend(len(v))
        if t is VSet:
            m = mm(m, v.sm)
            return [self._json_key(e, m, depth + 1) for e in sorted_plain(v)], m
        d1 = depth + 1
        if t is VDict:
            m = mm(m, v.sm)
            out = {}
            for k, e in v.items():
                j, em = self._json(e, d1)
                out[self._json_dict_key(k, m)] = j
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

    def _json_key(self, k: Any, m: Meta, depth: int) -> Any:
        """JSON form of a plain hashable value (a set element): tuples become lists."""
        t = type(k)
        if t is tuple:
            if depth > self.maxd:
                _too_deep()
            self._spend(len(k))
            return [self._json_key(e, m, depth + 1) for e in k]
        if t is str:
            if len(k) > LONG_STR:
                self.spend_chars(len(k))
            return k
        if t is int:
            return json_int(k, m)
        if t is float:
            return json_float(k, m)
        return json_scalar(k)

    def _json_dict_key(self, k: Any, m: Meta) -> Any:
        t = type(k)
        if t is str:
            if len(k) > LONG_STR:
                self.spend_chars(len(k))
            return k
        if t is int:
            return json_int(k, m)
        if t is float:
            if k != k or k == _INF or k == -_INF:
                return "NaN" if k != k else "Infinity" if k > 0 else "-Infinity"  # as JSON writes such keys
            return k
        if t is bool or k is None:
            return k
        if t is tuple:
            try:
                s = plain_repr(k)  # bounded: a key's expanded size is bounded when it is made
            except ValueError:
                raise NotJSON(f"integer too large (more than {INT_STR_DIGITS} digits)", m) from None
            self.spend_chars(len(s))
            return s
        return json_scalar(k)

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
            self._spend(len(k))
            return tuple(self._key(e, depth + 1) for e in k)
        return self._wrap(k, depth)  # normalises str/int subclasses; other objects become str

    # -- repr / str (deterministic: sets print sorted). The output is at most ``max_nodes`` characters
    # (the maximum string size): a value repeated many times by reference cannot make a huge string.
    def repr(self, x: V) -> str:
        self.budget = self.max_nodes
        self.out = self.max_nodes
        return self._repr(x.v, 0)

    def str(self, x: V) -> str:
        v = x.v
        t = type(v)
        if t is str:
            s: str = v
            return s
        if t in CONTAINERS:
            return self.repr(x)
        return scalar_str(v)

    def _emit(self, s: builtins.str, extra: int = 0) -> builtins.str:  # ``str`` is the method above
        self.out -= len(s) + extra
        if self.out < 0:
            raise InterpreterError(
                "limit",
                f"Limit exceeded: string of more than {self.max_nodes} characters (the maximum value size)",
            )
        return s

    def _repr(self, v: Any, depth: int) -> builtins.str:
        t = type(v)
        if t not in CONTAINERS:
            return self._emit(plain_repr(v) if t is not ExcValue else repr(v))
        if depth > self.maxd:
            _too_deep()
        self._spend(len(v) + 1)
        self._emit("", 2 * len(v) + 2)  # brackets and separators
        d1 = depth + 1
        if t is VList:
            return "[" + ", ".join([self._repr(e.v, d1) for e in v]) + "]"
        if t is tuple:
            if len(v) == 1:
                return "(" + self._repr(v[0].v, d1) + ",)"
            return "(" + ", ".join([self._repr(e.v, d1) for e in v]) + ")"
        if t is VDict:
            return (
                "{"
                + ", ".join([self._emit(plain_repr(k)) + ": " + self._repr(e.v, d1) for k, e in v.items()])
                + "}"
            )
        if not v:
            return "set()"
        return "{" + ", ".join([self._emit(plain_repr(e)) for e in sorted_plain(v)]) + "}"
