"""The channels an attacker's review of the region analysis found (each failed before its fix): starred
arity, keyword names from data, limit and refusal texts, loop-else jumps, finally jumps, chained
comparisons, assert messages, mutations the analysis did not see, dict attributes called as methods,
tools named like built-ins, names left unbound by a skipped branch. Each runs on two tool outputs
(check_pair from test_noninterference) or checks what the planner would be shown."""

from __future__ import annotations

import pytest
import test_noninterference as tn
from test_noninterference import TOOLS, check_pair, run

from relay.dual import feedback
from relay.interpreter import ToolSpec, run_program

BASE = {"get_int": 0, "get_str": "a", "get_list": [], "get_dict": {}}
P = "X = get_int(q=1)\nS = get_str(q=1)\nT = get_list(q=1)\nE = get_dict(q=1)\nM = []\nN = []\n"


def out(**kw):
    d = dict(BASE)
    d.update(kw)
    return d


def pair(src, a, b):
    check_pair(P + src, out(**a), out(**b))


def planner_sees(src, data):
    _, r = run(P + src, out(**data))
    assert r.status == "error"
    return feedback.error_message(r.error.kind, r.error.message, r.error.meta, P + src, TOOLS)


# ---------------------------------------------------------------- 1. starred arguments / displays
# The number of elements of a starred source is structure (shallow meta of T); call_args/elts drop it.
@pytest.mark.parametrize(
    "src,a,b",
    [
        ("final_return_value = len([*T])\n", {"get_list": []}, {"get_list": [1]}),  # value, both D
        ("final_return_value = len((*T,))\n", {"get_list": []}, {"get_list": [1]}),
        ("final_return_value = {*T}\n", {"get_list": []}, {"get_list": [1]}),
        ("final_return_value = zip(*T)\n", {"get_list": []}, {"get_list": [[1]]}),
        ("raise ValueError(*T)\n", {"get_list": []}, {"get_list": [1]}),
        ("s = '%s %s' % (*T,)\n", {"get_list": []}, {"get_list": [1, 2]}),
        ("s = '{} {}'.format(*T)\n", {"get_list": [1]}, {"get_list": [1, 2]}),
        ("len(*T)\n", {"get_list": [1, 2]}, {"get_list": [1, 2, 3]}),
    ],
)
def test_starred_structure_lost(src, a, b):
    pair(src, a, b)


def test_starred_arity_reaches_planner():
    # "TypeError: len() takes exactly one argument (3 given)": len(T) shown verbatim to the planner
    assert "3" not in planner_sees("len(*T)\n", {"get_list": [1, 2, 3]})


# ---------------------------------------------------------------- 2. **kwargs from data: errors raised by it.err in impls lose kwm
@pytest.mark.parametrize(
    "src",
    [
        "s = '{k}'.format(**E)\n",  # KeyError 'k' with default meta iff 'k' not in E
        "M.append(**E)\n",
        "x = ValueError(**E)\n",
    ],
)
def test_kwargs_from_data_errors_untainted(src):
    pair(src, {"get_dict": {}}, {"get_dict": {"k": 1}})


# ---------------------------------------------------------------- 3. limit / refusal errors carry only ctx
@pytest.mark.parametrize(
    "src,a,b",
    [
        ("s = 'a' * X\n", {"get_int": 3}, {"get_int": 123456789}),
        ("s = 2 ** X\n", {"get_int": 3}, {"get_int": 123456789}),
        ("s = list(range(X))\n", {"get_int": 3}, {"get_int": 7654321}),
        ("s = f'{1:{S}}'\n", {"get_str": "3"}, {"get_str": "98765432"}),
        ("s = S.format(1)\n", {"get_str": "a"}, {"get_str": "{0.x}"}),  # refused
        (
            "s = datetime.datetime.fromisoformat(S).timestamp()\n",
            {"get_str": "2020-01-01T00:00+00:00"},
            {"get_str": "2020-01-01"},
        ),  # refused
        (
            "f = [abs, M.count][X]\ny = sorted([1], key=f)\n",
            {"get_int": 0},
            {"get_int": 1},
        ),  # refused before fv.m check
        (
            "for v in T:\n    a = 1\n" + "b = 1\n" * 3970,
            {"get_list": []},
            {"get_list": list(range(45))},
        ),  # steps
    ],
)
def test_limit_and_refusal_meta(src, a, b):
    pair(src, a, b)


@pytest.mark.parametrize(
    "src,data,secret",
    [
        ("s = 'a' * X\n", {"get_int": 123456789}, "123456789"),
        ("s = list(range(X))\n", {"get_int": 7654321}, "7654321"),
        ("s = f'{1:{S}}'\n", {"get_str": "98765432"}, "98765432"),
    ],
)
def test_limit_message_reaches_planner(src, data, secret):
    assert secret not in planner_sees(src, data)


# ---------------------------------------------------------------- 4. control constructs outside the region analysis
def test_for_else_break_escapes_to_outer_loop():
    # _region(for, jumps_escape=False) also covers the for's orelse, whose break/continue leave the OUTER loop
    pair(
        "a = 0\nfor i in [1, 2]:\n    for v in T:\n        break\n    else:\n        break\n    a += 1\n"
        "final_return_value = a\n",
        {"get_list": []},
        {"get_list": [1]},
    )


def test_for_else_continue_escapes_to_outer_loop():
    pair(
        "a = 0\nfor i in [1, 2]:\n    for v in T:\n        break\n    else:\n        continue\n    a += 1\n"
        "final_return_value = a\n",
        {"get_list": []},
        {"get_list": [1]},
    )


def test_finally_break_swallows_exception():
    # try without handlers is not 'guarded', but break/continue in finally swallows the in-flight exception
    pair(
        "a = 0\nfor i in [1]:\n    try:\n        a = 10 // X\n        a = 7\n    finally:\n        break\n"
        "final_return_value = a\n",
        {"get_int": 0},
        {"get_int": 1},
    )


def test_compare_chain_short_circuit_tool_call():
    # `X > 0 == get_int(q=5)`: the 2nd comparator is evaluated only if X > 0; no region, no branch check
    pair("r = X > 0 == get_int(q=5)\nsend(x=2)\n", {"get_int": 0}, {"get_int": 1})


def test_compare_chain_short_circuit_mutation():
    pair("r = X > 0 == M.append(1)\nfinal_return_value = M\n", {"get_int": 0}, {"get_int": 1})


def test_assert_message_tool_call():
    # the assert message is evaluated only when the assertion fails: a tool call with default metas
    pair("assert X, send(x=1)\n", {"get_int": 0}, {"get_int": 1})


# ---------------------------------------------------------------- 5. mutations the region analysis does not see
@pytest.mark.parametrize(
    "src",
    [
        "if X:\n    list.append(M, 1)\nfinal_return_value = M\n",  # root computed as 'list'
        "r = X and list.append(M, 1)\nfinal_return_value = M\n",
        "r = list.append(M, 1) if X else 0\nfinal_return_value = M\n",
        "D = {}\nif X:\n    dict.update(D, a=1)\nfinal_return_value = D\n",
        "Z = set()\nif X:\n    set.add(Z, 1)\nfinal_return_value = Z\n",
        "M.append(1)\nA = [M]\nif X:\n    x = sorted(A, key=list.pop)\nfinal_return_value = M\n",  # key= mutator
        "L = [[]]\nif X:\n    L[0] = M\n    L[0].append(5)\nfinal_return_value = M\n",  # container reached only in-region
        "x = N\nif X:\n    x = M\n    x += [1]\nfinal_return_value = M\n",  # in-place += on an alias
        "d = {'f': M.append}\nif X:\n    d.f(1)\nfinal_return_value = M\n",  # dict attribute call
    ],
)
def test_region_misses_mutation(src):
    pair(src, {"get_int": 0}, {"get_int": 1})


def test_unbound_mutator_in_comprehension():
    pair("[list.append(M, v) for v in T]\nfinal_return_value = len(M)\n", {"get_list": []}, {"get_list": [1]})


@pytest.mark.parametrize(
    "src",
    [
        "x = N\nif X:\n    x = M\nx += [1]\nfinal_return_value = [M, N]\n",
        "A = set()\nB = set()\nx = A\nif X:\n    x = B\nx |= {1}\nfinal_return_value = [A, B]\n",
    ],
)
def test_inplace_op_through_tainted_reference(src):
    # s_augassign/inplace mutates the container without mutate_through(cur)
    pair(src, {"get_int": 0}, {"get_int": 1})


def test_dict_attribute_call_reaches_tool():
    # d.f(...) is treated as a method call by validate.py (never a tool), but get_attr on a dict returns
    # the stored ToolRef and call_value calls it: non-sticky region, no branch check, later calls clean
    pair("d = {'f': send}\nif X:\n    d.f(x=1)\nsend(x=2)\n", {"get_int": 0}, {"get_int": 1})


def test_tool_named_like_builtin():
    # a declared tool named 'format' (client-chosen name) is a 'pure builtin' for the region analysis
    tools = dict(TOOLS)
    tools["format"] = ToolSpec("format", ["value"], [])
    old = tn.TOOLS
    tn.TOOLS = tools
    try:
        check_pair(
            "X = get_int(q=1)\nif X:\n    y = format(value=1)\nsend(x=2)\n", out(get_int=0), out(get_int=1)
        )
    finally:
        tn.TOOLS = old


# ---------------------------------------------------------------- 6. names NOT bound in the non-taken run
@pytest.mark.parametrize(
    "src,a,b",
    [
        ("if X:\n    y = 1\nz = y\n", {"get_int": 0}, {"get_int": 1}),  # NameError, default meta
        ("for v in T:\n    pass\nfinal_return_value = v\n", {"get_list": []}, {"get_list": [1]}),
        (
            "if X:\n    len = str\nfinal_return_value = len(M)\n",
            {"get_int": 0},
            {"get_int": 1},
        ),  # builtin shadowed
        ("if X:\n    send = log\nsend(x=1)\n", {"get_int": 0}, {"get_int": 1}),  # tool shadowed
    ],
)
def test_absent_name(src, a, b):
    pair(src, a, b)


# ---------------------------------------------------------------- 7. AttributeError on a dict ignores its structure meta
def test_dict_attribute_missing_key():
    pair("D = {}\nD[S] = 1\ny = D.k\n", {"get_str": "a"}, {"get_str": "k"})


# ---------------------------------------------------------------- 8. crashes: int -> str conversion beyond 4300 digits
# (Most variants -- f'{x}', f'{x!r}', raise ValueError(big), D[big], namespace serialisation, tool args -- were
# fixed by a concurrent change in the working tree while this review ran; these three still end "internal".)
@pytest.mark.parametrize(
    "src",
    [
        "raise 2 ** 20000\n",  # s_raise: self.w.str(x) outside any PY_ERRORS handler
        "assert False, 2 ** 20000\n",  # s_assert: self.w.str(msg)
        "raise ValueError([2 ** 20000])\n",  # call_value(ExcClass): self.w.str(a) for a container argument
    ],
)
def test_big_int_str_crash(src):
    host = tn.TraceHost({})
    r = run_program(src, tools=TOOLS, host=host, limits=tn.LIMITS)
    assert r.status != "error" or r.error.kind != "internal", r.error


# ---------------------------------------------------------------- 9. the exception class may be chosen by data
def test_exception_class_chosen_by_data_is_shown_without_details():
    # Documented residual risk: the class (a few bits) is shown, never the message.
    src = "raise [ValueError, KeyError, TypeError, IndexError][X]('secret text')\n"
    a = planner_sees(src, {"get_int": 0})
    b = planner_sees(src, {"get_int": 3})
    assert a.startswith("ValueError (details withheld") and b.startswith("IndexError (details withheld")
    assert "secret" not in a + b
