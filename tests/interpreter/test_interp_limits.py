"""Resource limits: every runaway program ends quickly with InterpreterError(kind="limit")."""

import time

import pytest
from interp_helpers import FakeHost, run

from relay.interpreter import Limits
from relay.meta import ValueWithMeta


def assert_limit(r, fragment=""):
    assert r.status == "error", (r.status, r.error)
    assert r.error.kind == "limit", r.error
    assert r.error.message.startswith("Limit exceeded") or "nested" in r.error.message, r.error.message
    assert fragment in r.error.message, r.error.message


def test_defaults():
    lim = Limits()
    assert (lim.max_steps, lim.max_loop_iterations, lim.max_value_size, lim.wall_time_seconds) == (
        100_000,
        10_000,
        1_000_000,
        5.0,
    )


def test_loop_iterations():
    assert_limit(run("for i in range(10**12):\n    pass"), "loop ran more than 10000")
    assert_limit(run("x = [i for i in range(10**12)]"), "comprehension ran more than 10000")
    assert run("for i in range(10000):\n    pass").status == "success"


def test_steps():
    assert_limit(run("for i in range(1000):\n    for j in range(1000):\n        x = j"), "steps")
    assert_limit(run("x = [[j for j in range(5000)] for i in range(5000)]"), "steps")
    assert_limit(run("x = 0\nx = 1\nx = 2", limits=Limits(max_steps=2)), "more than 2 steps")


def test_steps_reported_on_limit():
    r = run("for i in range(10):\n    x = i", limits=Limits(max_steps=5))
    assert r.steps == 6 and r.error.lineno == 2


@pytest.mark.parametrize(
    "src",
    [
        "x = 'x' * 10**7",
        "x = [0] * 10**8",
        "x = (1,) * 10**8",
        "x = 10**8 * 'ab'",
        "s = 'a' * 1000\nfor i in range(20):\n    s += s",
        "l = [1]\nfor i in range(30):\n    l.extend(l)",
        "l = [1]\nfor i in range(30):\n    l += l",
        "l = [1]\nfor i in range(30):\n    l = l + l",
        "x = ''.join(['abc' * 1000] * 1000)",
        "x = ('a' * 10000).replace('', 'y' * 1000)",
        "x = 'x'.center(10**9)",
        "x = 'x'.ljust(10**9)",
        "x = '1'.zfill(10**9)",
        "x = ('\\t' * 1000).expandtabs(10**6)",
        "x = f'{1:>100000000}'",
        "x = f'{1.5:.100000000f}'",
        "x = '{:>99999999}'.format(1)",
        "x = format(1, '>99999999')",
        "x = '%99999999d' % 1",
        "x = list(range(10**9))",
        "x = sorted(range(10**9))",
        "x = sum(range(10**12))",
        "d = {}\nfor i in range(10000):\n    d[i] = 'x' * 10000",
    ],
)
def test_value_size(src):
    t0 = time.perf_counter()
    r = run(src)
    assert_limit(r)
    assert time.perf_counter() - t0 < 3


@pytest.mark.parametrize(
    "src",
    [
        "x = 10 ** 10 ** 10",
        "x = 2 ** 100000",
        "x = pow(7, 10**7)",
        "x = 1 << 10**9",
        "x = 3\nfor i in range(40):\n    x = x * x",
    ],
)
def test_big_integers(src):
    assert_limit(run(src), "bits")


def test_total_allocation():
    assert_limit(run("l = []\nfor i in range(5000):\n    l.append('x' * 100000)"), "allocated")


def test_wall_time_excludes_host_time():
    lim = Limits(wall_time_seconds=0.2)
    assert_limit(
        run("for i in range(10000):\n    x = sorted([str(j) for j in range(300)])", limits=lim), "wall time"
    )

    def slow(a):
        time.sleep(0.3)
        return "done"

    r = run("x = get_doc('a')\ny = get_doc('b')", host=FakeHost({"get_doc": slow}), limits=lim)
    assert r.status == "success"


def test_program_nesting():
    assert_limit(run("x = " + "+".join(["1"] * 3000)), "nested")
    assert_limit(run("x = " + "[" * 150 + "]" * 150))
    r = run("x = " + "(" * 1000 + ")" * 1000)
    assert r.status == "error" and r.error.kind in ("syntax", "limit")


def test_value_nesting_and_cycles():
    assert_limit(run("a = []\na.append(a)\nx = str(a)"))
    assert_limit(run("a = []\na.append(a)\nsearch(query=a)"))
    assert_limit(run("a = []\na.append(a)\nx = a == a"))
    r = run("a = []\na.append(a)")
    assert r.status == "success"
    assert r.namespace["a"].value.startswith("<unserializable value")  # snapshot never raises


def test_exponential_sharing_is_bounded():
    t0 = time.perf_counter()
    assert_limit(run("a = [1]\nfor i in range(60):\n    a = [a, a]\nx = str(a)"))
    assert_limit(run("a = [1]\nfor i in range(60):\n    a = [a, a]\nsearch(query=a)"))
    r = run("a = [1]\nfor i in range(60):\n    a = [a, a]\nfinal_return_value = 1")
    assert r.status == "success" and r.final_return_value.value == 1
    assert time.perf_counter() - t0 < 5


def test_deep_tool_result_is_a_limit_not_a_crash():
    deep = []
    for _ in range(500):
        deep = [deep]
    r = run("x = get_doc('a')", host=FakeHost({"get_doc": lambda a: ValueWithMeta(deep)}))
    assert_limit(r)


def test_print_output_is_truncated_not_fatal():
    r = run("for i in range(100):\n    print('x' * 5000)", limits=Limits(max_output_chars=1000))
    assert r.status == "success"
    assert sum(len(s) for s in r.output) < 1100


def test_single_statement_deep_work_respects_wall_time():
    t0 = time.perf_counter()
    r = run("a = list(range(100000))\nb = [a] * 5000\nx = [1] in b", limits=Limits(wall_time_seconds=0.3))
    assert_limit(r, "wall time")
    assert time.perf_counter() - t0 < 3


def test_modular_pow_guard():
    assert_limit(run("x = pow(3, 2 ** 60000, 2 ** 60000 + 1)"))
    assert run("x = pow(3, 2 ** 100, 1000007)").status == "success"
