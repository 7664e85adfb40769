"""Values JSON cannot carry (an integer of more than 4300 digits, NaN, infinity) are program errors when they
would leave the run (final_return_value, a tool argument); in the namespace snapshot they are shown as
``<unserializable value: ...>``; and ``run_program`` never raises on them, nor on printing them."""

from __future__ import annotations

import json
import math

import pytest
from interp_helpers import TOOL_META, FakeHost, run

from relay.interpreter import Limits
from relay.meta import DEFAULT_META


def strict_json(value):
    """json.dumps that refuses NaN/Infinity (what a JSON parser accepts) and round-trips."""
    return json.loads(json.dumps(value, allow_nan=False))


def all_strict_json(r):
    strict_json(None if r.final_return_value is None else r.final_return_value.value)
    strict_json({k: v.value for k, v in r.namespace.items()})


BIG = "(1 << 20000)"
JSON_ERRORS = [
    (f"final_return_value = {BIG}", "integer too large (more than 4300 digits)"),
    (f"final_return_value = -{BIG}", "integer too large (more than 4300 digits)"),
    ("final_return_value = 2 ** 20000", "integer too large (more than 4300 digits)"),
    ("final_return_value = float('nan')", "NaN (not a number)"),
    ("final_return_value = float('inf')", "infinity"),
    ("final_return_value = -1e308 * 10", "infinity"),
    (f"final_return_value = [1, 2, {{'a': ({BIG}, 3)}}]", "integer too large"),
    ("final_return_value = {'a': [1.5, float('nan')]}", "NaN (not a number)"),
    (f"final_return_value = {{{BIG}: 1}}", "integer too large"),
    (f"final_return_value = {{{BIG}}}", "integer too large"),
    (f"final_return_value = {{(1, {BIG})}}", "integer too large"),
    (f"final_return_value = {{(1, {BIG}): 'x'}}", "integer too large"),
    (f"final_return_value = range({BIG})", "integer too large"),
    ("final_return_value = [float('inf')] * 3", "infinity"),
]


@pytest.mark.parametrize(("src", "reason"), JSON_ERRORS)
def test_final_value_without_json_form_is_a_program_error(src, reason):
    r = run(src)
    assert r.status == "error", (src, r.status)
    assert r.error.kind == "runtime"
    assert r.error.message == f"final_return_value cannot be represented as JSON: {reason} (line 1)" or (
        r.error.message.startswith(f"final_return_value cannot be represented as JSON: {reason}")
    ), r.error.message
    assert r.error.lineno == 1
    all_strict_json(r)  # the snapshot shows it as a string


def test_error_names_the_last_assignment_and_carries_the_values_metadata():
    host = FakeHost({"get_doc": lambda a: "nan"})
    r = run("final_return_value = 1\nx = get_doc('a')\nfinal_return_value = float(x)\ny = 2", host=host)
    assert r.status == "error" and r.error.kind == "runtime"
    assert r.error.lineno == 3
    assert "tool" in r.error.meta.producers  # whether it failed depends on the tool's data
    assert r.error.meta != DEFAULT_META


@pytest.mark.parametrize(
    "src",
    [
        "final_return_value = (1 << 14284) - 1",  # 4300 digits: still JSON
        "final_return_value = -(1 << 14284) + 1",
        "final_return_value = 1e308",
        "final_return_value = -0.0",
        "final_return_value = 5e-324",
        "final_return_value = {float('nan'): 1, float('inf'): 2}",  # keys become the strings JSON writes
        "final_return_value = {1.5: 'a', None: 1, True: 2}",
        "x = float('nan')\ny = 1 << 20000\nz = range(1 << 20000)\nfinal_return_value = 'fine'",
    ],
)
def test_json_representable_values_succeed(src):
    r = run(src)
    assert r.status == "success", r.error
    all_strict_json(r)


def test_nan_keys_are_written_as_json_writes_them():
    r = run("final_return_value = {float('nan'): 1, float('-inf'): 2, 1.5: 3}")
    assert r.final_return_value.value == {"NaN": 1, "-Infinity": 2, 1.5: 3}
    assert strict_json(r.final_return_value.value) == {"NaN": 1, "-Infinity": 2, "1.5": 3}


def test_namespace_snapshot_names_unserialisable_values():
    r = run(f"a = float('nan')\nb = {BIG}\nc = [1, float('inf')]\nd = range({BIG})\nok = [1, 2]")
    assert r.status == "success"
    ns = {k: v.value for k, v in r.namespace.items()}
    assert ns["a"] == "<unserializable value: NaN (not a number)>"
    assert ns["b"] == "<unserializable value: integer too large (more than 4300 digits)>"
    assert ns["c"] == "<unserializable value: infinity>"
    assert ns["d"] == "<unserializable value: integer too large (more than 4300 digits)>"
    assert ns["ok"] == [1, 2]
    strict_json(ns)


@pytest.mark.parametrize(
    ("arg", "reason"),
    [
        (BIG, "integer too large (more than 4300 digits)"),
        ("float('nan')", "NaN (not a number)"),
        ("[1, float('-inf')]", "infinity"),
        (f"{{'k': {{{BIG}: 1}}}}", "integer too large"),
        (f"{{(2, {BIG})}}", "integer too large"),
    ],
)
def test_tool_argument_without_json_form_is_a_program_error_and_no_call_is_made(arg, reason):
    host = FakeHost()
    r = run(f"x = 1\nsearch(query={arg})\nfinal_return_value = x", host=host)
    assert r.status == "error" and r.error.kind == "runtime", r.error
    assert r.error.message.startswith(f"a tool argument cannot be represented as JSON: {reason}")
    assert r.error.lineno == 2
    assert host.calls == []


@pytest.mark.parametrize(
    ("src", "message"),
    [
        (f"x = str({BIG})", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (f"x = repr([{BIG}])", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (f"x = f'{{{BIG}}}'", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (f"x = f'{{{BIG}!r}}'", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (f"x = f'{{{BIG}:,}}'", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (f"x = '%d' % {BIG}", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (
            f"x = '{{}}'.format({BIG})",
            "ValueError: Exceeds the limit (4300 digits) for integer string conversion",
        ),
        (
            f"x = format({BIG}, 'd')",
            "ValueError: Exceeds the limit (4300 digits) for integer string conversion",
        ),
        (
            f"x = str(range({BIG}))",
            "ValueError: Exceeds the limit (4300 digits) for integer string conversion",
        ),
        ("x = int('9' * 5000)", "ValueError: Exceeds the limit (4300 digits) for integer string conversion"),
        (f"raise ValueError({BIG})", "ValueError: <value too large to print>"),
        (f"d = {{}}\nx = d[{BIG}]", "KeyError: <value too large to print>"),
        (f"x = [1].index({BIG})", "ValueError"),
    ],
)
def test_integers_too_long_to_print_are_clean_program_errors(src, message):
    r = run(src)
    assert r.status == "error" and r.error.kind == "runtime", r.error
    assert r.error.message.startswith(message), r.error.message
    assert "sys." not in r.error.message
    all_strict_json(r)


def test_integers_too_long_to_print_can_be_caught():
    src = f"try:\n    s = str({BIG})\nexcept ValueError as e:\n    s = 'too long'\nfinal_return_value = s"
    r = run(src)
    assert r.status == "success" and r.final_return_value.value == "too long"


def test_hex_of_a_long_integer_is_fine():
    r = run(f"final_return_value = len(hex({BIG}))")
    assert r.final_return_value.value == len(hex(1 << 20000))


@pytest.mark.parametrize(
    "src",
    [
        "a = []\na.append(a)\nfinal_return_value = a",
        "a = [1]\nfor i in range(60):\n    a = [a, a]\nfinal_return_value = a",
        "s = 'x' * 1000000\nfinal_return_value = [s] * 1000000",
        "x = [1]\nfor i in range(150):\n    x = [x]\nfinal_return_value = x",
    ],
)
def test_final_value_too_large_or_deep_is_a_limit_error(src):
    r = run(src, limits=Limits(wall_time_seconds=2.0))
    assert r.status == "error" and r.error.kind == "limit", r.error
    assert r.error.message.startswith("Limit exceeded: final_return_value: "), r.error.message
    all_strict_json(r)


def test_final_value_is_converted_once_for_final_and_namespace():
    r = run("a = list(range(1000))\nfinal_return_value = a")
    assert r.final_return_value.value is r.namespace["final_return_value"].value


def test_nan_from_a_tool_is_tracked_and_refused():
    host = FakeHost({"get_doc": lambda a: {"v": "inf"}}, meta=TOOL_META)
    r = run("d = get_doc('a')\nfinal_return_value = {'value': float(d['v'])}", host=host)
    assert r.status == "error" and r.error.kind == "runtime"
    assert r.error.message.startswith("final_return_value cannot be represented as JSON: infinity")
    assert "tool" in r.error.meta.producers


def test_math_special_values_in_intermediate_results_are_fine():
    r = run("x = float('nan')\ny = x != x\nz = float('inf') > 1e308\nfinal_return_value = [y, z]")
    assert r.status == "success" and r.final_return_value.value == [True, True]
    assert math.isnan(r.variables["x"].v)
