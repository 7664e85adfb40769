"""The datetime classes a program can name (``datetime``, ``date``, ``time``, ``timedelta``, ``timezone``)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ..values import BuiltinFn, TypeRef, V
from .method_table import METHODS, unbound_methods
from .python_calls import py_call

_NOW = (
    "{name}() is not available: programs must be deterministic; take the date or time from the user "
    "query or from a tool result"
)


def _dt_ctor(cls: type, name: str) -> Any:
    return py_call(cls, name)


def _tz_guard(it: Any, pa: list[Any], pk: dict[str, Any]) -> None:
    name = pa[1] if len(pa) > 1 else pk.get("name")
    if type(name) is str and len(name) > 64:  # strftime('%Z' * n) repeats it
        raise ValueError("timezone name too long (more than 64 characters)")


def _strptime_guard(it: Any, pa: list[Any], pk: dict[str, Any]) -> None:
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

    def impl(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
        if len(args) == 1 and not kwargs and type(args[0].v) is _dt.datetime:
            part_of: V = METHODS[_dt.datetime][part](it, args[0], [], {})
            return part_of
        constructed: V = ctor(it, args, kwargs)
        return constructed

    return impl


# The predefined names are the classes, as after ``from datetime import datetime, date, time, timedelta,
# timezone``. Reading the current date or time is refused (programs are deterministic and replayed).
DATE = TypeRef(
    "datetime.date",
    _dt.date,
    _dt_ctor(_dt.date, "date"),
    {
        **unbound_methods(_dt.date),
        "fromisoformat": BuiltinFn("date.fromisoformat", py_call(_dt.date.fromisoformat, "fromisoformat")),
        "fromordinal": BuiltinFn("date.fromordinal", py_call(_dt.date.fromordinal, "fromordinal")),
        "today": _NOW.format(name="date.today"),
        "fromtimestamp": _NOW.format(name="date.fromtimestamp"),
        "min": V(_dt.date.min),
        "max": V(_dt.date.max),
        "resolution": V(_dt.date.resolution),
    },
)


TIME = TypeRef(
    "datetime.time",
    _dt.time,
    _dt_ctor(_dt.time, "time"),
    {
        **unbound_methods(_dt.time),
        "fromisoformat": BuiltinFn("time.fromisoformat", py_call(_dt.time.fromisoformat, "fromisoformat")),
        "min": V(_dt.time.min),
        "max": V(_dt.time.max),
        "resolution": V(_dt.time.resolution),
    },
)


TIMEDELTA = TypeRef(
    "datetime.timedelta",
    _dt.timedelta,
    _dt_ctor(_dt.timedelta, "timedelta"),
    {
        **unbound_methods(_dt.timedelta),
        "min": V(_dt.timedelta.min),
        "max": V(_dt.timedelta.max),
        "resolution": V(_dt.timedelta.resolution),
    },
)


TIMEZONE = TypeRef(
    "datetime.timezone",
    _dt.timezone,
    py_call(_dt.timezone, "timezone", _tz_guard),
    {"utc": V(_dt.UTC), "min": V(_dt.timezone.min), "max": V(_dt.timezone.max)},
)


DATETIME = TypeRef(
    "datetime.datetime",
    _dt.datetime,
    _dt_ctor(_dt.datetime, "datetime"),
    {
        **unbound_methods(_dt.datetime),
        "fromisoformat": BuiltinFn(
            "datetime.fromisoformat", py_call(_dt.datetime.fromisoformat, "fromisoformat")
        ),
        "strptime": BuiltinFn(
            "datetime.strptime", py_call(_dt.datetime.strptime, "strptime", _strptime_guard)
        ),
        "combine": BuiltinFn("datetime.combine", py_call(_dt.datetime.combine, "combine")),
        "fromordinal": BuiltinFn("datetime.fromordinal", py_call(_dt.datetime.fromordinal, "fromordinal")),
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
        "timedelta": TIMEDELTA,
        "timezone": TIMEZONE,
        "UTC": V(_dt.UTC),
        "MINYEAR": V(_dt.MINYEAR),
        "MAXYEAR": V(_dt.MAXYEAR),
        "date": TypeRef("datetime.date", _dt.date, _part_or_ctor("date", DATE.impl), DATE.attrs),
        "time": TypeRef("datetime.time", _dt.time, _part_or_ctor("time", TIME.impl), TIME.attrs),
    },
)
DATETIME.attrs["datetime"] = DATETIME
