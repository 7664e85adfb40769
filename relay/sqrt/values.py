"""Runtime values of SQRT: literals, matchers, type domains, matcher sets, value and set comparisons.

Set values at runtime are either *concrete* (``frozenset`` of strings, or ``UNIVERSAL`` from ``relay.meta``)
or a ``MatcherSet`` (a set literal holding regexes, wildcards, numbers or domains; only meaningful on the
right-hand side of ``in`` / ``overlaps`` / ``subset of`` / ``superset of`` / set-``==``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, final

from relay.meta import EMPTY, UNIVERSAL, MetaSet
from relay.regex import ClientPattern, wildcard_pattern

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape(body: str) -> str:
    """§2 escape processing: ``\\"`` -> ``"``, ``\\\\`` -> ``\\``, any other pair kept verbatim."""
    if "\\" not in body:
        return body
    return _ESCAPE.sub(lambda m: m.group(1) if m.group(1) in '"\\' else m.group(0), body)


def literal_body(token_text: str) -> str:
    """The decoded body of ``"…"``, ``r"…"``, ``w"…"`` or ``d"…"``."""
    start = 1 if token_text[0] == '"' else 2
    return unescape(token_text[start:-1])


# ---------------------------------------------------------------- instants


def parse_iso(text: str) -> float | None:
    """ISO 8601 text -> epoch seconds (naive = UTC), or None."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except (ValueError, TypeError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


class DateTimeValue:
    """The value of a ``d"…"`` literal used as a value operand."""

    __slots__ = ("text", "instant")

    def __init__(self, text: str, instant: float) -> None:
        self.text = text
        self.instant = instant

    def __repr__(self) -> str:
        return f'd"{self.text}"'


def to_instant(value: Any) -> float | None:
    """Epoch seconds denoted by a value (ISO string or number), or None."""
    t = type(value)
    if t is str:
        return parse_iso(value)
    if t is int or t is float:
        return float(value) if not (t is float and math.isnan(value)) else None
    if t is DateTimeValue:
        instant: float = value.instant
        return instant
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return None


# ---------------------------------------------------------------- equality


def values_equal(a: object, b: object) -> bool:
    """§6.4 value equality."""
    ta, tb = type(a), type(b)
    if ta is DateTimeValue or tb is DateTimeValue:
        ia, ib = to_instant(a), to_instant(b)
        return ia is not None and ia == ib and (ta is not bool and tb is not bool)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if a is None or b is None:
        return a is None and b is None
    if ta in (int, float) and tb in (int, float):
        return a == b
    if ta is str or tb is str:
        return ta is tb and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return False


# ---------------------------------------------------------------- ranges and domains


class Range:
    """``lo``/``hi`` bounds (None = open) with inclusivity flags."""

    __slots__ = ("lo", "lo_incl", "hi", "hi_incl")

    def __init__(self, lo: float | None, lo_incl: bool, hi: float | None, hi_incl: bool) -> None:
        self.lo, self.lo_incl, self.hi, self.hi_incl = lo, lo_incl, hi, hi_incl

    def contains(self, x: float) -> bool:
        lo, hi = self.lo, self.hi
        if lo is not None and (x < lo or (x == lo and not self.lo_incl)):
            return False
        return not (hi is not None and (x > hi or (x == hi and not self.hi_incl)))

    def describe(self) -> str:
        lo = "" if self.lo is None else repr(self.lo)
        hi = "" if self.hi is None else repr(self.hi)
        if self.lo is not None and self.lo == self.hi and self.lo_incl and self.hi_incl:
            return lo
        op = (
            ("" if self.lo_incl or self.lo is None else "<")
            + ".."
            + ("" if self.hi_incl or self.hi is None else "<")
        )
        return f"{lo}{op}{hi}"


def make_range(form: str, op: str | None, a: float | None, b: float | None) -> Range:
    """Build a range from a parsed form: ``both`` (a OP b), ``to`` (OP b), ``from`` (a OP), ``exact`` (a)."""
    if form == "exact":
        return Range(a, True, a, True)
    if form == "to":
        return Range(None, True, b, op == "..")
    if form == "from":
        return Range(a, op == "..", None, True)
    assert op is not None  # "both" always has its operator
    lo_incl = not op.startswith("<")
    hi_incl = not op.endswith("<")
    return Range(a, lo_incl, b, hi_incl)


def wildcard_regex(pattern: str) -> ClientPattern:
    """Glob with ``*`` (any sequence) and ``?`` (one character); a backslash makes the next character literal.

    Compiled by ``relay.regex`` (RE2): a chain of ``*`` is matched in linear time, not by backtracking."""
    return wildcard_pattern(pattern)


Matcher = Callable[[Any], bool]


def bool_domain(b: bool) -> Matcher:
    return lambda v: v is b


def int_domain(r: Range) -> Matcher:
    contains = r.contains
    return lambda v: type(v) is int and contains(v)


def float_domain(r: Range) -> Matcher:
    contains = r.contains
    return lambda v: (type(v) is int or (type(v) is float and v == v)) and contains(v)


def str_domain(kind: str, arg: Any, length: Range | None) -> Matcher:
    base: Matcher
    if kind == "exact":

        def equals(v: object, s: str = arg) -> bool:
            return v == s

        base = equals
    else:
        fm = arg.fullmatch

        def matches(v: Any, fm: Callable[[str], object] = fm) -> bool:
            return fm(v) is not None

        base = matches

    if length is None:
        return lambda v: type(v) is str and base(v)
    lc = length.contains
    return lambda v: type(v) is str and base(v) and lc(len(v))


def datetime_domain(r: Range) -> Matcher:
    contains = r.contains

    def match(v: Any) -> bool:
        if type(v) is bool:
            return False
        t = to_instant(v)
        return t is not None and contains(t)

    return match


def number_matcher(n: float) -> Matcher:
    return lambda v: (type(v) is int or type(v) is float) and v == n


def regex_matcher(rx: ClientPattern) -> Matcher:
    fm = rx.fullmatch
    return lambda v: type(v) is str and fm(v) is not None


# ---------------------------------------------------------------- sets


@final  # no subclasses: `type(s) is MatcherSet` then narrows both ways for type checkers
class MatcherSet:
    """A set literal with matcher elements.

    ``strings``: plain-string elements; ``patterns``: compiled regexes that must fully match a string value
    (``r"…"``, ``w"…"``, ``str matching/like`` without ``length``); ``matchers``: any other predicate on a
    value (numbers, domains).
    """

    __slots__ = ("strings", "patterns", "matchers", "universal", "text", "_fullmatch", "_all")

    def __init__(
        self,
        strings: frozenset[str],
        matchers: tuple[Matcher, ...],
        universal: bool = False,
        text: str = "",
        patterns: tuple[ClientPattern, ...] = (),
    ) -> None:
        self.strings = strings
        self.patterns = patterns
        self.matchers = matchers
        self.universal = universal
        self.text = text
        self._fullmatch = tuple(p.fullmatch for p in patterns)
        self._all = tuple(regex_matcher(p) for p in patterns) + tuple(matchers)

    def __repr__(self) -> str:
        return self.text or f"MatcherSet({sorted(self.strings)}, {len(self._all)} matchers)"

    @property
    def all_matchers(self) -> tuple[Matcher, ...]:
        return self._all

    def nonempty(self) -> bool:
        return self.universal or bool(self.strings) or bool(self._all)

    def contains(self, v: Any) -> bool:
        if self.universal:
            return True
        if type(v) is str:
            if v in self.strings:
                return True
            for fm in self._fullmatch:
                if fm(v) is not None:
                    return True
        for m in self.matchers:  # noqa: SIM110 - a plain loop: any() over a generator is ~3x slower here
            if m(v):
                return True
        return False


def set_contains(s: Any, v: Any) -> bool:
    """``V in S`` (§6.4)."""
    if s is UNIVERSAL:
        return True
    if type(s) is MatcherSet:
        return s.contains(v)
    return type(v) is str and v in s


def _nonempty(b: Any) -> bool:
    if b is UNIVERSAL:
        return True
    if type(b) is MatcherSet:
        return b.nonempty()
    return bool(b)


def set_overlaps(a: MetaSet, b: MetaSet | MatcherSet) -> bool:
    if a is UNIVERSAL:
        return _nonempty(b)
    if b is UNIVERSAL:
        return bool(a)
    if type(b) is MatcherSet:
        if b.universal:
            return bool(a)
        return any(b.contains(x) for x in a)
    return not a.isdisjoint(b)


def set_subset(a: MetaSet, b: MetaSet | MatcherSet) -> bool:
    if a is UNIVERSAL:
        return b is UNIVERSAL or (type(b) is MatcherSet and b.universal)
    if not a or b is UNIVERSAL:
        return True
    if type(b) is MatcherSet:
        return all(b.contains(x) for x in a)
    return a <= b


def set_superset(a: MetaSet, b: MetaSet | MatcherSet) -> bool:
    if a is UNIVERSAL:
        return True
    if b is UNIVERSAL:
        return False
    if type(b) is MatcherSet:
        if b.universal:
            return False
        if not b.strings <= a:
            return False
        return all(any(m(x) for x in a) for m in b.all_matchers)
    return a >= b


def set_equals(a: MetaSet, b: MetaSet | MatcherSet) -> bool:
    return set_subset(a, b) and set_superset(a, b)


def set_with(s: Any, element: str) -> Any:
    if s is UNIVERSAL or element == "*":
        return UNIVERSAL
    return s | {element}


def set_without(s: Any, element: str) -> Any:
    if s is UNIVERSAL:
        return UNIVERSAL
    return s - {element}


__all__ = [
    "EMPTY",
    "UNIVERSAL",
    "DateTimeValue",
    "MatcherSet",
    "Range",
    "literal_body",
    "make_range",
    "parse_iso",
    "set_contains",
    "set_equals",
    "set_overlaps",
    "set_subset",
    "set_superset",
    "set_with",
    "set_without",
    "to_instant",
    "unescape",
    "values_equal",
    "wildcard_regex",
]
