"""Hypothesis: arbitrary input never crashes the interpreter or escapes the subset.

Every run must return a RunResult whose error (if any) is a clean InterpreterError of a known, non-internal
kind; every value left in the namespace must be inside the value model (no live Python objects), JSON-safe,
and the same when the program runs again (determinism).
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_helpers import TOOLS, FakeHost

from relay.interpreter import Limits, RunResult, run_program
from relay.interpreter.api import STATUSES
from relay.interpreter.errors import ERROR_KINDS
from relay.interpreter.values import (
    CONTAINERS,
    PLAIN_KEY_TYPES,
    SCALARS,
    V,
    VDict,
    VList,
    VSet,
)

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # "1if x" in generated programs

FAST = Limits(
    max_steps=2_000,
    max_loop_iterations=200,
    max_value_size=20_000,
    wall_time_seconds=2.0,
    max_total_allocation=2_000_000,
    max_int_bits=4096,
)
N = int(os.environ.get("INTERP_FUZZ_EXAMPLES", "150"))  # raise for a longer fuzzing session
SETTINGS = settings(
    max_examples=N,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROGRAM_SETTINGS = settings(SETTINGS, max_examples=max(N // 3, 10))


def check_value(x, depth=0):
    assert type(x) is V, type(x)
    v = x.v
    t = type(v)
    assert t in SCALARS or t in CONTAINERS, t
    if depth > 60:
        return
    if t is VList or t is tuple:
        for e in v:
            check_value(e, depth + 1)
    elif t is VDict:
        for k, e in v.items():
            check_key(k)
            check_value(e, depth + 1)
    elif t is VSet:
        for k in v:
            check_key(k)


def check_key(k):
    if type(k) is tuple:
        for e in k:
            check_key(e)
    else:
        assert type(k) in PLAIN_KEY_TYPES or type(k) in SCALARS, type(k)


def check_result(r: RunResult, src: str) -> str:
    assert isinstance(r, RunResult)
    assert r.status in STATUSES
    if r.status in ("success", "suspended"):
        assert r.error is None
    else:
        assert r.error is not None and r.error.kind in ERROR_KINDS
        assert r.error.kind != "internal", (r.error, r.error.cause, src)
        assert isinstance(r.error.message, str) and r.error.message
    seen: set[int] = set()
    for x in r.variables.values():
        if id(x.v) in seen:
            continue
        seen.add(id(x.v))
        check_value(x)
    snapshot = json.dumps({k: v.to_json() for k, v in r.namespace.items()}, default=repr)
    return json.dumps([r.status, r.error.message if r.error else None, snapshot, r.output])


def run_twice(src: str) -> None:
    r1 = run_program(src, tools=TOOLS, host=FakeHost(), limits=FAST)
    s1 = check_result(r1, src)
    if r1.error is not None and r1.error.kind == "limit" and "wall time" in r1.error.message:
        return  # timing-dependent outcome
    r2 = run_program(src, tools=TOOLS, host=FakeHost(), limits=FAST)
    s2 = check_result(r2, src)
    if r2.error is not None and r2.error.kind == "limit" and "wall time" in r2.error.message:
        return
    assert s1 == s2, src


@SETTINGS
@given(st.text(max_size=200))
def test_random_text(src):
    check_result(run_program(src, tools=TOOLS, host=FakeHost(), limits=FAST), src)


TOKENS = [
    "x",
    "y",
    "d",
    "l",
    "s",
    "e",
    "i",
    "=",
    "==",
    "+",
    "-",
    "*",
    "**",
    "/",
    "//",
    "%",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    ".",
    "\n",
    "\n    ",
    "    ",
    "if",
    "else",
    "elif",
    "for",
    "in",
    "not",
    "and",
    "or",
    "is",
    "None",
    "True",
    "try",
    "except",
    "Exception",
    "as",
    "raise",
    "break",
    "continue",
    "pass",
    "lambda",
    "def",
    "while",
    "import",
    "1",
    "0",
    "-1",
    "2.5",
    "'a'",
    "'{}'",
    "f'{x}'",
    "len",
    "str",
    "int",
    "list",
    "dict",
    "set",
    "sorted",
    "range",
    "print",
    "isinstance",
    "__class__",
    "__import__",
    "eval",
    "getattr",
    "open",
    "append",
    "items",
    "get",
    "keys",
    "format",
    "join",
    "split",
    "search",
    "get_doc",
    "datetime",
    "timedelta",
    "__subclasses__",
    "mro",
    "*",
    "**",
    "@",
    "<<",
    ">>",
    "<",
    ">",
    "<=",
    "!=",
    "~",
    "del",
    "assert",
    "with",
    "yield",
    "global",
    "return",
    "class",
    "async",
    "await",
    ";",
    "\\",
    "#",
    "'''",
    "b''",
    "1j",
    "...",
]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens):
    src = " ".join(tokens)
    check_result(run_program(src, tools=TOOLS, host=FakeHost(), limits=FAST), src)


# ---------------------------------------------------------------------- grammar-based random programs
ATOMS = [
    "0",
    "1",
    "-1",
    "7",
    "2.5",
    "True",
    "False",
    "None",
    "'a'",
    "'abc'",
    "''",
    "'a,b'",
    "'{}-{}'",
    "[]",
    "[1, 2]",
    "['x', 'y']",
    "{}",
    "{'k': 1}",
    "{1, 2}",
    "{'b', 'a'}",
    "(1, 'x')",
    "()",
    "x",
    "y",
    "d",
    "l",
    "s",
    "r",
    "len",
    "str",
    "datetime",
    "timedelta",
    "datetime.datetime(2024, 1, 2)",
    "timedelta(days=1)",
    "10**6",
    "'x' * 3",
    "range(5)",
    "ValueError",
    "Exception('boom')",
    "search",
    "[[1], [2, 3]]",
    "{'a': [1, {'b': 2}]}",
]
BINOPS = [
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "**",
    "<<",
    ">>",
    "&",
    "|",
    "^",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "is",
    "is not",
    "and",
    "or",
    "@",
]
FUNCS = [
    "len",
    "str",
    "int",
    "float",
    "bool",
    "list",
    "dict",
    "set",
    "tuple",
    "range",
    "sorted",
    "reversed",
    "enumerate",
    "zip",
    "min",
    "max",
    "sum",
    "abs",
    "round",
    "any",
    "all",
    "isinstance",
    "print",
    "type",
    "repr",
    "divmod",
    "pow",
    "chr",
    "ord",
    "hex",
    "format",
    "search",
    "get_doc",
    "parse_with_ai",
    "datetime.datetime",
    "datetime.date",
    "timedelta",
    "ValueError",
    "noargs",
]
METHODS = [
    "upper",
    "lower",
    "strip",
    "split",
    "join",
    "replace",
    "startswith",
    "format",
    "find",
    "count",
    "center",
    "zfill",
    "splitlines",
    "title",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "index",
    "sort",
    "reverse",
    "copy",
    "clear",
    "get",
    "keys",
    "values",
    "items",
    "update",
    "setdefault",
    "popitem",
    "add",
    "discard",
    "union",
    "intersection",
    "difference",
    "issubset",
    "isoformat",
    "strftime",
    "total_seconds",
    "weekday",
    "bit_length",
    "is_integer",
    "encode",
    "mro",
    "fromisoformat",
]
ATTRS = ["year", "days", "args", "start", "real", "name", "k", "a", "utc", "datetime", "now"]


def exprs():
    def extend(children):
        return st.one_of(
            st.tuples(children, st.sampled_from(BINOPS), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["-", "+", "~", "not "]), children).map(lambda t: f"({t[0]}{t[1]})"),
            st.tuples(st.sampled_from(FUNCS), st.lists(children, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            st.tuples(children, st.sampled_from(METHODS), st.lists(children, max_size=2)).map(
                lambda t: f"{t[0]}.{t[1]}({', '.join(t[2])})"
            ),
            st.tuples(children, st.sampled_from(ATTRS)).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(children, st.sampled_from(["1:", ":2", "::-1", "1:3", "::0"])).map(
                lambda t: f"{t[0]}[{t[1]}]"
            ),
            st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.lists(children, max_size=2).map(lambda xs: "(" + "".join(x + ", " for x in xs) + ")"),
            st.lists(st.tuples(children, children), max_size=2).map(
                lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
            ),
            st.tuples(children, children).map(lambda t: f"[{t[0]} for x in {t[1]}]"),
            st.tuples(children, children, children).map(lambda t: f"{{{t[0]} for x in {t[1]} if {t[2]}}}"),
            st.tuples(children, children).map(lambda t: f"{{x: {t[0]} for x in {t[1]}}}"),
            st.tuples(children, children).map(lambda t: f"sum(len(str(x)) for x in {t[0]} if {t[1]})"),
            st.tuples(children, st.sampled_from(["", "!r", "!s", ":>5", ":.2f", ":x", ":%Y"])).map(
                lambda t: f'f"<{{{t[0]}{t[1]}}}>"'
            ),
            st.tuples(children).map(lambda t: f"[*{t[0]}]"),
            st.tuples(children).map(lambda t: f"{{**{t[0]}}}"),
            st.tuples(children).map(lambda t: f"'%s-%d' % {t[0]}"),
        )

    return st.recursive(st.sampled_from(ATOMS), extend, max_leaves=8)


TARGETS = ["x", "y", "d", "l", "s", "r", "x, y", "(x, *y)", "d[x]", "l[0]", "l[1:2]", "d['k']"]


@st.composite
def statement(draw, depth=0):
    e = draw(exprs())
    kind = draw(st.integers(0, 13 if depth < 2 else 6))
    if kind <= 1:
        return [f"{draw(st.sampled_from(TARGETS))} = {e}"]
    if kind == 2:
        return [
            f"{draw(st.sampled_from(['x', 'y', 'd[x]', 'l[0]']))} {draw(st.sampled_from(['+=', '-=', '*=', '|=']))} {e}"
        ]
    if kind == 3:
        return [e]
    if kind == 4:
        return [f"l.append({e})"]
    if kind == 5:
        return [f"del {draw(st.sampled_from(['x', 'd[x]', 'l[0]', 'l[:1]']))}"]
    if kind == 6:
        return [f"r = {draw(st.sampled_from(['search', 'get_doc', 'parse_with_ai']))}({e})"]
    body = [line for s in draw(st.lists(statement(depth + 1), min_size=1, max_size=3)) for line in s]
    inner = ["    " + line for line in body]
    if kind == 7:
        return [f"if {e}:", *inner, "else:", "    pass"]
    if kind == 8:
        return [f"for x in {e}:", *inner, "    if x:", "        break"]
    if kind == 9:
        return [
            "try:",
            *inner,
            f"except {draw(st.sampled_from(['Exception', 'ValueError', '(KeyError, TypeError)']))} as err:",
            "    y = str(err)",
            "finally:",
            "    s = 1",
        ]
    if kind == 10:
        return [f"raise {e}"]
    if kind == 11:
        return [f"assert {e}, 'msg'"]
    if kind == 12:
        return [f"for x in {e}:", *inner, "    continue"]
    return [f"elif_ = {e}", "if elif_:", *inner, f"elif {e}:", "    pass"]


@st.composite
def program(draw):
    stmts = draw(st.lists(statement(), min_size=1, max_size=6))
    prelude = ["x = 1", "y = 'a'", "d = {'k': 1}", "l = [1, 2, 3]", "s = {1, 2}", "r = None"]
    return "\n".join(
        prelude + [line for s in stmts for line in s] + ["final_return_value = [x, y, d, l, s, r]"]
    )


@PROGRAM_SETTINGS
@given(program())
def test_random_programs_are_clean_and_deterministic(src):
    run_twice(src)


@SETTINGS
@given(exprs())
def test_random_expressions(e):
    run_twice(f"x = 1\ny = 'a'\nd = {{'k': 1}}\nl = [1, 2]\ns = {{1}}\nr = None\nfinal_return_value = {e}")
