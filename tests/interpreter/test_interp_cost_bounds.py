"""Cost bounds: every builtin, method and operator ends a hostile program within its limits.

Each run must end (success, a program error, or a limit error: never an "internal" error, an exception out
of ``run_program``, or a hang) within ``wall_time_seconds`` plus a margin for the one operation in flight and
the serialisation of the result; and whatever it leaves (final value, namespace snapshot) is strict JSON.

Two parts:
* known offenders, one program each, at the default limits (only the wall time is shortened);
* hypothesis: programs that build large, long, deeply shared or numerically extreme values and apply every
  builtin, every method of every value type, every operator and every formatting/serialisation path to them.
  ``INTERP_COST_EXAMPLES`` (default 100 per test) raises the number of examples for a longer session.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_helpers import TOOLS, FakeHost

from relay.interpreter import Limits, run_program
from relay.interpreter.builtins import _FUNCS, _TYPES, BUILTINS, METHODS
from relay.interpreter.values import VDict, VList, VSet

pytestmark = [pytest.mark.filterwarnings("ignore::SyntaxWarning"), pytest.mark.timeout(600, method="thread")]

WALL = 0.5
MARGIN = 2.5  # the operation in flight when the deadline passes + serialising the result (+ a busy machine)
SMALL = Limits(
    max_steps=20_000,
    max_value_size=100_000,
    wall_time_seconds=WALL,
    max_total_allocation=8_000_000,
)
N = int(os.environ.get("INTERP_COST_EXAMPLES", "100"))
SETTINGS = settings(
    max_examples=N,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def check_run(src: str, limits: Limits, margin: float = MARGIN):
    """Run ``src``; assert a clean ending within the wall time + margin and strict-JSON results."""
    host = FakeHost()
    t0 = time.process_time()  # CPU time: what the program costs, whatever else the machine is doing
    r = run_program(src, tools=TOOLS, host=host, limits=limits)
    fv = r.final_return_value
    ns = r.namespace
    elapsed = time.process_time() - t0
    assert r.status in ("success", "error"), (src, r.status, r.error)
    if r.error is not None:
        assert r.error.kind in ("runtime", "limit", "refused"), (src, r.error)
    assert elapsed < limits.wall_time_seconds + margin, (src, elapsed, r.error)
    # whatever the run left is strict JSON (no NaN, no integer too long to print)
    json.dumps(None if fv is None else fv.value, allow_nan=False)
    json.dumps({k: v.value for k, v in ns.items()}, allow_nan=False)
    for _, kwargs, _ in host.calls:
        json.dumps({k: v.value for k, v in kwargs.items()}, allow_nan=False)
    return r


# ------------------------------------------------------------------------------------------ known offenders
SHARED_TUPLE = "a = (1,)\nfor i in range(60):\n    a = (a, a)\n"
SHARED_LIST = "a = [1]\nfor i in range(60):\n    a = [a, a]\n"
SHARED_DICT = "a = {'k': 1}\nfor i in range(60):\n    a = {'k': a, 'j': a}\n"
LONG_REPEATED = "s = 'x' * 1000000\nl = [s] * 1000000\n"
PREFIX_PAIRS = "l = ['x' * 999999 + 'a', 'x' * 999999 + 'b'] * 500000\n"
OFFENDERS = [
    SHARED_TUPLE + "x = {a: 1}",
    SHARED_TUPLE + "x = a in {1}",
    SHARED_TUPLE + "x = {a}",
    SHARED_TUPLE + "d = {}\nd[a] = 1",
    SHARED_TUPLE + "x = {}.get(a)",
    SHARED_TUPLE + "x = set([a])",
    SHARED_TUPLE + "x = dict([(a, 1)])",
    SHARED_TUPLE + "x = a == a",
    SHARED_TUPLE + "x = a < a",
    SHARED_TUPLE + "x = str(a)",
    SHARED_TUPLE + "x = f'{a!r}'",
    SHARED_TUPLE + "x = isinstance(1, a)",
    SHARED_TUPLE + "x = [a].count(a)",
    SHARED_TUPLE + "final_return_value = a",
    SHARED_TUPLE + "search(query=a)",
    SHARED_TUPLE + "raise ValueError(a)",
    SHARED_LIST + "b = [1]\nfor i in range(60):\n    b = [b, b]\nx = a == b",
    SHARED_LIST + "x = sorted([a, a])",
    SHARED_LIST + "x = '%s' % (a,)",
    SHARED_LIST + "print(a)",
    SHARED_DICT + "x = repr(a)",
    SHARED_DICT + "final_return_value = a",
    "t = (int,)\nfor i in range(60):\n    t = (t, t)\nx = isinstance('a', t)",
    "x = round(1, -10**9)",
    "x = round(1 << 65000, -10**9)",
    "x = pow(3, (1 << 150) - 1, (1 << 65000) + 1)",
    "x = pow(3, (1 << 65000) - 1, (1 << 4000) + 1)",
    "x = int('1' * 1000000, 2)",
    "x = int('f' * 1000000, 16)",
    "x = int('9' * 1000000)",
    "x = int(' ' * 900000 + '1')",
    "x = str(1 << 60000)",
    "x = str(1 << 30000)",
    "x = f'{1 << 30000}'",
    "x = '%d' % (1 << 30000)",
    "x = format(1 << 30000, ',')",
    "x = repr([1 << 30000])",
    "raise ValueError(1 << 30000)",
    "d = {}\nx = d[1 << 30000]",
    "x = format(1e308, '.999999f')",
    "x = '%.999999f' % 1e308",
    "x = f'{1.5:.100000000f}'",
    "x = 'x'.center(10**9)",
    "x = 'x'.ljust(10**100)",
    "x = '1'.zfill(10**9)",
    "x = ('\\t' * 1000).expandtabs(10**6)",
    "x = ('a' * 100000).replace('a', 'b' * 1000)",
    "x = ''.join(['abc' * 1000] * 1000)",
    "x = ('a,' * 500000).split(',') * 3",
    "x = 'ab' * 10**9",
    "x = [] * 10**100",
    "x = 1.5 in range(10**18)",
    "x = 'a' in range(10**18)",
    "x = range(10**18).count(1.5)",
    "x = range(10**18).index('a')",
    "x = sorted(range(10**9))",
    "x = sum(range(10**12))",
    "x = sum([1 << 65000] * 1000000)",
    LONG_REPEATED + "x = sorted(l)",
    LONG_REPEATED + "l.sort()",
    LONG_REPEATED + "x = max(l)",
    LONG_REPEATED + "x = min([(s,)] * 1000000)",
    LONG_REPEATED + "x = ('x' * 999999 + 'y') in l",
    LONG_REPEATED + "x = l.count('x' * 999999 + 'y')",
    LONG_REPEATED + "x = l.index('x' * 999999 + 'y')",
    LONG_REPEATED + "x = str(l)",
    LONG_REPEATED + "print(*l)",
    LONG_REPEATED + "x = sorted(l, key=len)",
    LONG_REPEATED + "final_return_value = l",
    LONG_REPEATED + "search(query=l)",
    LONG_REPEATED + "x = ('{}' * 100).format(*l)",
    LONG_REPEATED + "x = ('%s' * 1000) % tuple(l[:1000])",
    PREFIX_PAIRS + "x = sorted(l)",
    "s = set(range(100000))\nl = [set(s) for i in range(10000)]",
    "x = {i: i for i in range(10000)}\ny = [dict(x) for i in range(10000)]",
    "s = set(range(10000))\nx = s.union(*[s] * 100000)",
    "l = list(range(10000))\nx = list(zip(*[l] * 100000))",
    "x = datetime.max + timedelta(days=1)",
    "x = timedelta(days=10**20)",
    "x = datetime.strptime('2024 2024', '%Y %Y')",
    "x = datetime.strptime('x' * 1000000, '%Y')",
    "final_return_value = 1 << 20000",
    "final_return_value = float('nan')",
    "final_return_value = {'a': [float('inf')]}",
    "search(query=[1 << 20000])",
    "x = (-8) ** 0.5",
]


# These have an answer, found quickly (print truncates; a range answers membership arithmetically).
SUCCEED = {
    SHARED_LIST + "print(a)",
    LONG_REPEATED + "print(*l)",
    "x = 1.5 in range(10**18)",
    "x = 'a' in range(10**18)",
    "x = range(10**18).count(1.5)",
    "x = round(1, -10**9)",
    "x = round(1 << 65000, -10**9)",
    "x = [] * 10**100",
}


@pytest.mark.parametrize("src", OFFENDERS)
def test_known_offenders_end_cleanly_within_their_wall_time(src):
    r = check_run(src, Limits(wall_time_seconds=1.0))
    assert r.status == ("success" if src in SUCCEED else "error"), (src, r.error)


def test_results_of_bounded_operations():
    """The bounds keep Python's answers where there is one."""
    r = check_run(
        "final_return_value = [round(123456, -2), round(5, -1), round(15, -1), round(1, -10**9), "
        "round(-7 << 100, -400), 1.0 in range(3), 1.5 in range(3), 'a' in range(3), True in range(2), "
        "range(10).count(3.0), range(10).index(4.0), pow(3, 10**6, 7), int('ff', 16), int(' 42 '), "
        "int('1' * 4300) % 10]",
        Limits(wall_time_seconds=1.0),
    )
    assert r.status == "success", r.error
    assert r.final_return_value.value == [
        123500,
        0,
        20,
        0,
        0,
        True,
        False,
        False,
        True,
        1,
        4,
        pow(3, 10**6, 7),
        255,
        42,
        1,
    ]


# ------------------------------------------------------------------------------------------ hypothesis
# Builders: each defines one variable (large, long, deeply shared, deep, self-referencing or extreme).
def _builders():
    """Program text defining ``@`` (replaced by the variable's name)."""
    n = st.integers(0, 64)
    size = st.sampled_from([0, 1, 7, 1000, 30_000, 99_999, 100_001])
    bits = st.sampled_from([1, 64, 4096, 14_284, 14_285, 30_000, 65_535, 65_536, 10**6])
    return st.one_of(
        st.builds("@ = (1,)\nfor _i in range({}):\n    @ = (@, @)".format, n),
        st.builds("@ = [1]\nfor _i in range({}):\n    @ = [@, @]".format, n),
        st.builds("@ = {{'k': 1}}\nfor _i in range({}):\n    @ = {{'k': @, 'j': @}}".format, n),
        st.builds("@ = []\nfor _i in range({}):\n    @ = [@]".format, st.integers(90, 140)),
        st.just("@ = []\n@.append(@)"),
        st.builds("@ = 'x' * {}".format, size),
        st.builds("@ = ['x' * {}] * {}".format, size, size),
        st.builds("@ = ['x' * {0} + 'a', 'x' * {0} + 'b'] * {1}".format, size, size),
        st.builds("@ = [(i, 'x' * {}) for i in range({})]".format, size, st.integers(0, 3000)),
        st.builds("@ = set(range({}))".format, size),
        st.builds("@ = {{(i, 'k'): i for i in range({})}}".format, st.integers(0, 3000)),
        st.builds("@ = list(range({}))".format, size),
        st.builds("@ = 1 << {}".format, bits),
        st.builds("@ = -(1 << {}) + 1".format, bits),
        st.builds(
            "@ = range({}, {}, {})".format,
            st.sampled_from(["0", "-(1 << 6000)", "10**18"]),
            st.sampled_from(["10**18", "1 << 6000", "0", "10"]),
            st.sampled_from(["1", "7", "-1", "1 << 5000", "10**17"]),
        ),
        st.sampled_from(
            [
                "@ = float('nan')",
                "@ = float('inf')",
                "@ = -1e308",
                "@ = 1e-320",
                "@ = 0",
                "@ = -1",
                "@ = True",
                "@ = None",
                "@ = ''",
                "@ = '\\x00' * 100000",
                "@ = '%s' * 10000",
                "@ = '{0}' * 10000",
                "@ = '%(a)s' * 10000",
                "@ = '{:>99999}'",
                "@ = '%' + '9' * 8 + 'd'",
                "@ = '\\t' * 100000",
                "@ = 'a\\n' * 50000",
                "@ = datetime.max",
                "@ = datetime.min",
                "@ = timedelta.max",
                "@ = timedelta.min",
                "@ = date.max",
                "@ = time.max",
                "@ = timezone.utc",
                "@ = datetime(2024, 1, 2, tzinfo=timezone.utc)",
                "@ = '%Y' * 5000",
                "@ = '%Y %Y'",
                "@ = (int, str)",
                "@ = ValueError('boom')",
                "@ = {'a': 1, 'b': [1, 2]}",
                "@ = (1, 'a', None)",
                "@ = len",
                "@ = 'abc'.upper",
                "@ = range(0)",
                "@ = [float('nan')] * 1000",
                "@ = {float('nan'): 1}",
            ]
        ),
    )


BUILDERS = _builders()
LITERALS = [
    "0",
    "1",
    "-1",
    "2",
    "10**9",
    "-(10**9)",
    "1 << 5000",
    "'x'",
    "''",
    "None",
    "1.5",
    "float('nan')",
    "[]",
    "()",
    "{}",
    "'%s'",
    "'{}'",
    "'%Y'",
    "16",
]
ARGS = st.lists(st.one_of(st.sampled_from(["X", "Y", "Z"]), st.sampled_from(LITERALS)), max_size=3)

BINOPS = ["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", "@"]
CMPOPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"]
FUNC_NAMES = sorted(set(_FUNCS) | set(_TYPES) | {"datetime", "date", "time", "timedelta", "timezone"})


def program(builders: list[str], op: str) -> str:
    lines = [b.replace("@", v) for b, v in zip(builders, ["X", "Y", "Z"], strict=False)]
    return "\n".join([*lines, op])


@SETTINGS
@given(st.lists(BUILDERS, min_size=3, max_size=3), st.sampled_from(BINOPS + CMPOPS), st.booleans())
def test_operators(builders, op, augmented):
    if augmented and op in BINOPS:
        stmt = f"X {op}= Y\nfinal_return_value = X"
    else:
        stmt = f"final_return_value = X {op} Y"
    check_run(program(builders, stmt), SMALL)


@SETTINGS
@given(
    st.lists(BUILDERS, min_size=3, max_size=3),
    st.sampled_from(FUNC_NAMES),
    ARGS,
    st.sampled_from(
        [
            "",
            "key=len",
            "key=str",
            "reverse=True",
            "default=X",
            "base=16",
            "start=X",
            "sep=X",
            "strict=True",
            "ndigits=Y",
        ]
    ),
)
def test_builtins(builders, name, args, kw):
    call = f"{name}({', '.join([*args, kw] if kw else args)})"
    check_run(program(builders, f"final_return_value = {call}"), SMALL)


# Every method of every value type, on a receiver of that type built from the drawn value when it has the
# type, else a large one.
RECEIVERS = {
    str: "(X if type(X) == str else 'ab' * 50_000)",
    VList: "(X if type(X) == list else [X] * 99_999)",
    tuple: "(X if type(X) == tuple else (X,) * 99_999)",
    VDict: "(X if type(X) == dict else {i: X for i in range(5000)})",
    VSet: "(X if type(X) == set else set(range(99_999)))",
    range: "(X if type(X) == range else range(10**18))",
    int: "(X if type(X) == int else (1 << 65535) - 1)",
    float: "(X if type(X) == float else 1e308)",
    _dt.datetime: "(X if type(X) == datetime else datetime.max)",
    _dt.date: "(X if type(X) == date else date.max)",
    _dt.time: "(X if type(X) == time else time.max)",
    _dt.timedelta: "(X if type(X) == timedelta else timedelta.max)",
}
METHOD_CASES = sorted((RECEIVERS[t], name) for t, table in METHODS.items() for name in table)


@SETTINGS
@given(st.lists(BUILDERS, min_size=3, max_size=3), st.sampled_from(METHOD_CASES), ARGS)
def test_methods(builders, case, args):
    recv, name = case
    src = program(builders, f"R = {recv}\nfinal_return_value = R.{name}({', '.join(args)})")
    check_run(src, SMALL)


FORMATS = [
    "f'{X}'",
    "f'{X!r}'",
    "f'{X!a}'",
    "f'{X:>{Y}}'",
    "f'{X:.{Y}f}'",
    "f'{X:,}'",
    "f'{X:x}'",
    "f'{X}{X}{X}{Y}'",
    "'%s' % (X,)",
    "'%r' % (X,)",
    "'%d' % X",
    "X % Y",
    "X % (Y, Z)",
    "'%(a)s' % {'a': X}",
    "'{}'.format(X)",
    "'{0}{0}{0}'.format(X)",
    "X.format(Y, Z)",
    "X.format(*Y)",
    "format(X, '>99999')",
    "str(X)",
    "repr(X)",
    "print(X, Y, Z)",
    "print(*X)",
    "{X: 1}",
    "{X}",
    "X in {1: 2}",
    "[X] * 3",
    "(X, Y) == (X, Y)",
    "sorted([X, Y])",
    "sorted(X)",
    "min(X)",
    "max(X, Y)",
    "str(ValueError(X))",
    "X[0]",
    "X[::-1]",
    "X[1:10**9]",
    "len(X)",
    "list(X)",
    "set(X)",
    "dict(X)",
    "{**X}",
]
SINKS = [
    "final_return_value = R",
    "search(query=R)",
    "x = str(R)",
    "assert False, R",
    "raise ValueError(R)",
    "try:\n    raise ValueError(R)\nexcept ValueError as e:\n    final_return_value = str(e)",
]


@SETTINGS
@given(st.lists(BUILDERS, min_size=3, max_size=3), st.sampled_from(FORMATS), st.sampled_from(SINKS))
def test_formatting_and_serialisation(builders, expr, sink):
    check_run(program(builders, f"R = {expr}\n{sink}"), SMALL)


def test_generators_cover_every_builtin_method_and_operator():
    assert set(FUNC_NAMES) >= {
        n for n, v in BUILTINS.items() if type(v.v).__name__ in ("BuiltinFn", "TypeRef")
    }
    assert set(RECEIVERS) == set(METHODS)
    assert set(BINOPS) == {"+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", "@"}
