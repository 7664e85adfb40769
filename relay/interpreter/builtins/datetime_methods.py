"""The methods of the datetime values, with the guards that keep them deterministic and bounded."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .python_calls import attr_getter, py_method


def _aware_only(it: Any, v: Any, pa: list[Any], pk: dict[str, Any]) -> None:
    if v.tzinfo is None:
        raise it.refuse(
            "this method needs a timezone-aware datetime (a naive one would use the server's "
            "local time zone); use .replace(tzinfo=timezone.utc) first"
        )


def _strftime_guard(it: Any, v: Any, pa: list[Any], pk: dict[str, Any]) -> None:
    fmt = pa[0] if pa else pk.get("format", "")
    if type(fmt) is str and len(fmt) > 10_000:
        raise it.limit("strftime format too long")


DATETIME_METHODS: dict[type, dict[str, Any]] = {
    _dt.datetime: {
        n: py_method(
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
        n: py_method(n, _strftime_guard if n == "strftime" else None)
        for n in ("isoformat", "strftime", "weekday", "isoweekday", "replace", "toordinal")
    },
    _dt.time: {
        n: py_method(n, _strftime_guard if n == "strftime" else None)
        for n in ("isoformat", "strftime", "replace")
    },
    _dt.timedelta: {"total_seconds": py_method("total_seconds")},
}
for _t in (_dt.datetime, _dt.date):
    DATETIME_METHODS[_t]["isocalendar"] = py_method("isocalendar")

DATETIME_ATTRS: dict[type, dict[str, Any]] = {
    _dt.datetime: {
        n: attr_getter(n)
        for n in ("year", "month", "day", "hour", "minute", "second", "microsecond", "tzinfo")
    },
    _dt.date: {n: attr_getter(n) for n in ("year", "month", "day")},
    _dt.time: {n: attr_getter(n) for n in ("hour", "minute", "second", "microsecond", "tzinfo")},
    _dt.timedelta: {n: attr_getter(n) for n in ("days", "seconds", "microseconds")},
}
