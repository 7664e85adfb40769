"""The predefined datetime names are the classes, as after ``from datetime import datetime, date, time,
timedelta, timezone``; programs written against the module (``datetime.datetime(...)``) keep working; reading
the clock is refused; every datetime failure is a program error the planner can fix, never "internal"."""

from __future__ import annotations

import datetime as dt

import pytest
from interp_helpers import final, run

from relay.interpreter import Limits


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("final_return_value = datetime(2024, 1, 2).isoformat()", "2024-01-02T00:00:00"),
        ("final_return_value = datetime(2024, 1, 2, 3, 4, 5).hour", 3),
        ("final_return_value = datetime.fromisoformat('2024-01-02T03:04:05').minute", 4),
        (
            "final_return_value = datetime.strptime('02/01/2024 10:30', '%d/%m/%Y %H:%M').isoformat()",
            "2024-01-02T10:30:00",
        ),
        (
            "final_return_value = datetime.combine(date(2024, 1, 2), time(5, 6)).isoformat()",
            "2024-01-02T05:06:00",
        ),
        ("final_return_value = date(2024, 2, 28) + timedelta(days=2)", "2024-03-01"),
        ("final_return_value = date.fromisoformat('2024-03-01').weekday()", 4),
        ("final_return_value = time(12, 30).isoformat()", "12:30:00"),
        ("final_return_value = time.fromisoformat('12:30:15').second", 15),
        ("final_return_value = (datetime(2024, 1, 3) - datetime(2024, 1, 1)).days", 2),
        ("final_return_value = timedelta(hours=36).total_seconds()", 129600.0),
        (
            "final_return_value = datetime(2024, 1, 1, tzinfo=timezone.utc).isoformat()",
            "2024-01-01T00:00:00+00:00",
        ),
        ("final_return_value = str(timezone(timedelta(hours=2)))", "UTC+02:00"),
        ("final_return_value = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()", 1704067200.0),
        ("final_return_value = datetime.min.year", 1),
        ("final_return_value = str(datetime.max)", str(dt.datetime.max)),
        ("final_return_value = str(timedelta.max)", str(dt.timedelta.max)),
        ("final_return_value = date.max.isoformat()", "9999-12-31"),
        (
            "final_return_value = datetime.fromordinal(738000).isoformat()",
            dt.datetime.fromordinal(738000).isoformat(),
        ),
        # isinstance and type() with the classes
        ("final_return_value = isinstance(datetime(2024, 1, 1), datetime)", True),
        ("final_return_value = isinstance(datetime(2024, 1, 1), date)", True),
        ("final_return_value = isinstance(date(2024, 1, 1), datetime)", False),
        ("final_return_value = type(date(2024, 1, 1)) == date", True),
        ("final_return_value = isinstance(timedelta(1), (date, timedelta))", True),
        # unbound methods, as on the Python classes
        ("final_return_value = datetime.isoformat(datetime(2024, 1, 2))", "2024-01-02T00:00:00"),
        ("final_return_value = date.weekday(date(2024, 1, 1))", 0),
        ("final_return_value = timedelta.total_seconds(timedelta(minutes=1))", 60.0),
        ("final_return_value = datetime.strftime(datetime(2024, 5, 6), '%Y/%m/%d')", "2024/05/06"),
        # programs written against the datetime module keep working
        ("final_return_value = datetime.datetime(2024, 1, 2).isoformat()", "2024-01-02T00:00:00"),
        ("final_return_value = datetime.datetime.strptime('2024', '%Y').year", 2024),
        ("final_return_value = datetime.date(2024, 1, 2).isoformat()", "2024-01-02"),
        ("final_return_value = datetime.time(1, 2).isoformat()", "01:02:00"),
        ("final_return_value = datetime.timedelta(days=2).days", 2),
        ("final_return_value = datetime.timezone.utc == timezone.utc", True),
        ("final_return_value = datetime.UTC == timezone.utc", True),
        ("final_return_value = isinstance(date(2024, 1, 1), datetime.date)", True),
        # ... and datetime.date(dt) / datetime.time(dt) are the parts of a datetime, as on the class
        (
            "d = datetime(2024, 1, 2, 3, 4)\nfinal_return_value = [datetime.date(d).isoformat(), "
            "datetime.time(d).isoformat()]",
            ["2024-01-02", "03:04:00"],
        ),
        ("final_return_value = datetime(2024, 1, 2, 3, 4).date().isoformat()", "2024-01-02"),
    ],
)
def test_the_predefined_names_are_the_classes(src, expected):
    assert final(src) == expected


@pytest.mark.parametrize(
    ("src", "fragment"),
    [
        ("x = datetime.now()", "datetime.now() is not available"),
        ("x = datetime.today()", "datetime.today() is not available"),
        ("x = datetime.utcnow()", "datetime.utcnow() is not available"),
        ("x = datetime.fromtimestamp(0)", "datetime.fromtimestamp() is not available"),
        ("x = date.today()", "date.today() is not available"),
        ("x = datetime.datetime.now()", "datetime.now() is not available"),
        ("x = datetime.date.today()", "date.today() is not available"),
        ("x = datetime(2024, 1, 1).timestamp()", "timezone-aware"),
    ],
)
def test_reading_the_clock_is_refused(src, fragment):
    r = run(src)
    assert r.status == "error" and r.error.kind == "refused", r.error
    assert fragment in r.error.message


@pytest.mark.parametrize(
    ("src", "exc"),
    [
        ("x = datetime.strptime('2024 2024', '%Y %Y')", "ValueError"),  # re.error inside _strptime
        ("x = datetime.strptime('2024', '%Q')", "ValueError"),
        ("x = datetime.strptime('2024', '%')", "ValueError"),
        ("x = datetime.strptime('2024-13-01', '%Y-%m-%d')", "ValueError"),
        ("x = datetime.strptime('not a date', '%Y-%m-%d')", "ValueError"),
        ("x = datetime.strptime('2024-01-01 junk', '%Y-%m-%d')", "ValueError"),
        ("x = datetime.strptime(2024, '%Y')", "TypeError"),
        ("x = datetime.strptime('2024', ['%Y'])", "TypeError"),
        ("x = datetime.strptime('2024')", "TypeError"),
        ("x = datetime.fromisoformat('yesterday')", "ValueError"),
        ("x = date.fromisoformat(20240101)", "TypeError"),
        ("x = datetime(2024, 2, 30)", "ValueError"),
        ("x = datetime(10**20, 1, 1)", "OverflowError"),
        ("x = date(2024)", "TypeError"),
        ("x = time(25)", "ValueError"),
        ("x = datetime.max + timedelta(days=1)", "OverflowError"),
        ("x = date.min - timedelta(days=1)", "OverflowError"),
        ("x = timedelta(days=10**20)", "OverflowError"),
        ("x = timedelta.max * 2", "OverflowError"),
        ("x = timedelta(days=1) * (1 << 20000)", "OverflowError"),
        ("x = timedelta(days=1) * 1e300", "OverflowError"),
        ("x = timedelta(seconds=float('nan'))", "ValueError"),
        ("x = timedelta(days=1) / 0", "ZeroDivisionError"),
        ("x = -timedelta.max - timedelta.max", "OverflowError"),
        ("x = datetime.max.replace(year=10**20)", "OverflowError"),
        ("x = datetime(2024, 1, 1) < datetime(2024, 1, 1, tzinfo=timezone.utc)", "TypeError"),
        ("x = datetime(2024, 1, 1) - date(2024, 1, 1)", "TypeError"),
        ("x = timezone(timedelta(hours=30))", "ValueError"),
        ("x = timezone(timedelta(hours=1), 'x' * 100)", "ValueError"),
        ("x = datetime(2024, 1, 1).strftime(5)", "TypeError"),
        ("x = datetime.fromordinal(0)", "ValueError"),
        ("x = datetime(2024, 1, 1).replace(tzinfo=5)", "TypeError"),
    ],
)
def test_datetime_failures_are_program_errors(src, exc):
    r = run(src)
    assert r.status == "error" and r.error.kind == "runtime", (src, r.error)
    assert r.error.message.startswith(exc + ":"), (src, r.error.message)


def test_a_failed_strptime_can_be_caught_and_handled():
    src = (
        "out = []\n"
        "for s in ['2024-01-02', '02.01.2024', 'soon']:\n"
        "    try:\n"
        "        out.append(datetime.strptime(s, '%Y-%m-%d').day)\n"
        "    except ValueError:\n"
        "        try:\n"
        "            out.append(datetime.strptime(s, '%d.%m.%Y').day)\n"
        "        except ValueError as e:\n"
        "            out.append('bad')\n"
        "final_return_value = out"
    )
    assert final(src) == [2, 2, "bad"]


@pytest.mark.parametrize(
    "src",
    [
        "x = datetime.strptime('1' * 100000, '%Y')",
        "x = datetime.strptime('2024', '%Y' * 1000)",
        "x = datetime(2024, 1, 1).strftime('%Y' * 10001)",
    ],
)
def test_oversized_formats_are_limits(src):
    r = run(src, limits=Limits(wall_time_seconds=1.0))
    assert r.status == "error" and r.error.kind == "limit", r.error
