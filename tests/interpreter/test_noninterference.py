"""Noninterference: the same program run on two tool outputs of the same shape.

Wherever the two runs differ in something observable (which tool is called, in which order, with which
arguments; the final value; a variable; whether the run failed), the metadata at that point must carry the
tool's producer, and where the difference is one of control flow a branch check must have seen it first.
This finds laundering channels as a class: the generator covers every construct the interpreter supports,
and grows with it.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.interpreter import Limits, ToolSpec, run_program
from relay.meta import DEFAULT_META, Meta, ValueWithMeta, make_set

SRC = "src"
SRC_META = Meta(make_set([SRC]), make_set(["*"]), make_set(["__non_executable"]))
TOOLS = {
    "get_int": ToolSpec("get_int", ["q"]),
    "get_str": ToolSpec("get_str", ["q"]),
    "get_list": ToolSpec("get_list", ["q"]),
    "get_dict": ToolSpec("get_dict", ["q"]),
    "send": ToolSpec("send", ["x"], ["x"]),
    "log": ToolSpec("log", ["x"], ["x"]),
}
SOURCES = ("get_int", "get_str", "get_list", "get_dict")
LIMITS = Limits(wall_time_seconds=2.0, max_steps=4000, max_loop_iterations=50)


def tainted(m: Meta) -> bool:
    return SRC in m.producers if m.producers is not None else False


class TraceHost:
    """Tool outputs come from ``data`` (one value per source tool); records calls and branch checks."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.events: list[tuple] = []  # ("call", name, args, metas) | ("branch", tainted)

    def call_tool(self, name, kwargs, call_index):
        metas = {k: v.meta for k, v in kwargs.items()}
        self.events.append(
            ("call", name, json.dumps({k: v.value for k, v in kwargs.items()}, sort_keys=True), metas)
        )
        if name in self.data:
            return ValueWithMeta(self.data[name], SRC_META)
        return ValueWithMeta(None, DEFAULT_META)

    def check_branch(self, meta):
        self.events.append(("branch", tainted(meta)))
        return None


# --------------------------------------------------------------------------------------- generator
INT_VARS = ("a", "b")
STR_VARS = ("s",)
LIST_VARS = ("L", "M")
DICT_VARS = ("D",)
PRELUDE = "p = 0\nq = []\nN = []\nW = []\nC = {}\nZ = set()\nP = []\nQ = []\nY = []\nT2 = []\nB2 = 0\na = 0\nb = 1\ns = 'k'\nL = [1, 2]\nM = L\nD = {'k': 1}\nX = 0\nS = 'a'\nT = [0]\nE = {'k': 0}\n"

int_atom = st.sampled_from(
    [
        "a",
        "b",
        "X",
        "len(L)",
        "len(M)",
        "len(S)",
        "len(T)",
        "len(D)",
        "len(E)",
        "0",
        "1",
        "2",
        "E.get('k', 0)",
        "sum(T)",
        "max(T, default=0)",
        "min(L, default=0)",
        "T[0] if T else 0",
        "D.get(S, 3)",
        "int(X > 1)",
        "(1 if X else 2)",
        "(X and 1)",
        "(X or 2)",
        "len([v for v in T if v > 1])",
        "len({v for v in L})",
    ]
)
str_atom = st.sampled_from(
    [
        "s",
        "S",
        "'k'",
        "'a'",
        "str(X)",
        "f'{S}-{a}'",
        "S.upper()",
        "s + S",
        "','.join(sorted(E))",
        "str(sorted(T))",
        "repr(L)",
        "str(D)",
    ]
)
cond = st.sampled_from(
    [
        "X > 1",
        "a > 0",
        "S == 'a'",
        "len(T) > 1",
        "'k' in E",
        "S in D",
        "a in T",
        "b == 1",
        "not L",
        "X",
        "T",
        "E.get('k') == 1",
        "S.startswith('b')",
        "len(L) > 2",
        "isinstance(X, int)",
    ]
)


@st.composite
def simple_stmt(draw):  # noqa: C901 - one branch per kind of statement drawn
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return [f"X = get_int(q={draw(int_atom)})"]
    if kind == 1:
        return [f"S = get_str(q='{draw(st.sampled_from(['p', 'q']))}')"]
    if kind == 2:
        return ["T = get_list(q=1)"]
    if kind == 3:
        return ["E = get_dict(q=1)"]
    if kind == 4:
        return [f"{draw(st.sampled_from(INT_VARS))} = {draw(int_atom)}"]
    if kind == 5:
        return [f"s = {draw(str_atom)}"]
    if kind == 6:
        return [f"{draw(st.sampled_from(LIST_VARS))}.append({draw(int_atom)})"]
    if kind == 7:
        return [f"D[{draw(str_atom)}] = {draw(int_atom)}"]
    if kind == 8:
        return [f"send(x={draw(st.one_of(int_atom, str_atom))})"]
    if kind == 9:
        return [f"log(x={draw(int_atom)})"]
    if kind == 10:
        return [f"{draw(st.sampled_from(['M = L', 'M = [0]', 'M = T', 'M = list(L)']))}"]
    if kind == 11:
        return ["f = {'p': send, 'q': log}.get(S, send)", f"f(x={draw(int_atom)})"]
    if kind == 12:
        return [f"(L if {draw(cond)} else M).append(1)"]
    if kind == 13:
        return ["G = {}", "G.update(**E)", "s = ','.join(sorted(G))"]
    if kind == 14:
        return [f"{draw(st.sampled_from(LIST_VARS))} = sorted(T) + [{draw(int_atom)}]"]
    if kind == 15:
        return ["H = dict(**E)", "s = str(sorted(H))"]
    if kind == 16:
        return [f"a = {draw(int_atom)} + {draw(int_atom)}"]
    if kind == 17:
        return [f"b = {{'k': 5, 'a': 6}}.get(S, {draw(int_atom)})"]
    return draw(st.sampled_from(MORE)).split("\n")


# Every other construct: augmented assignment, slices, unpacking, mutating methods, nested aliases,
# comprehensions with effects, formatting, key functions, sets, explicit raise and assert, del.
MORE = [
    "a += X",
    "D[S] = D.get(S, 0) + 1",
    "L[:] = T",
    "L.extend(T)",
    "L.sort()",
    "L.sort(key=abs)",
    "a = L.pop() if L else 0",
    "M.clear()",
    "s = '%s-%d' % (S, a)",
    "s = '{}:{}'.format(S, X)",
    "s = '{k}'.format(**E) if 'k' in E else s",
    "T2 = sorted(T, key=abs)",
    "a = min(T, key=abs, default=0)",
    "p, *q = T + [0, 1]",
    "a = p",
    "N = [L, M]",
    "N = [L]\nN[0].append(X)",
    "W = E.setdefault('z', [])",
    "a = E.pop('k', 0)",
    "[L.append(v) for v in T]",
    "C = {v: S for v in T}",
    "Z = set(T) | {1}",
    "a = len(Z) if 'Z' in s else a",
    "P = list(zip(T, L))",
    "a = len(P) if T else 0",
    "Q = [i for i, v in enumerate(T) if v]",
    "a = any(T) + all(T)",
    "s = S.replace('a', 'b')",
    "a = S.find('a')",
    "s = ' '.join(S.split('k'))",
    "a = X is None",
    "s = T[1:] and 'x' or 'y'",
    "a, b = (X, 1) if X else (1, X)",
    "L[0:1] = [X]",
    "del D['k']",
    "M = L if X else T",
    "a = abs(X - 2)",
    "a = round(X / 2)",
    "a = divmod(X + 3, 2)[0]",
    "s = str(X).zfill(3)",
    "a = X if isinstance(X, int) else 0",
    "Y = T.copy()",
    "Y.append(1)",
    "a = T.count(1)",
    "a = L.index(1) if 1 in L else 0",
    "s = ''.join(reversed(S))",
    "B2 = bool(E) and 1",
    "for v in range(X * 20):\n    a += 1",
    "Y = [0 for v in range(X * 20)]",
    "a = int(S) if S.isdigit() else a",
    "a = {'k': 1}[S] if S == 'k' else a",
    "assert a < 100",
    # found by an attacker's review: starred arity, chains, assert messages, unbound and aliased mutation
    "Y = [*T]",
    "a = len((*T, 1))",
    "Z = {*T}",
    "a = max(*T, 0, 1)",
    "s = '{} {}'.format(*T, 0, 0)",
    "a = int(X > 0 == log(x=1))",
    "a = int(0 < X < len(M.copy()))",
    "assert X < 9, send(x=1)",
    "list.append(M, 1) if X else None",
    "if X:\n    list.append(M, 1)",
    "if X:\n    M += [1]",
    "if X:\n    y2 = 1",
    "z2 = y2 if 'y2' == s else 0",
    "if X:\n    len = str",
    "if S == 'p':\n    send = log",
    "N = [M]\nif X:\n    N[0].append(1)",
    "M = N if X else M",
]


def indent(lines):
    return ["    " + ln for ln in lines]


@st.composite
def block(draw, depth, in_loop):
    n = draw(st.integers(1, 3))
    out = []
    for _ in range(n):
        out += draw(stmt(depth, in_loop))
    return out


@st.composite
def stmt(draw, depth=0, in_loop=False):
    choices = ["simple"] * 4
    if depth < 2:
        choices += ["if", "for", "try", "ifelse"]
    if in_loop:
        choices += ["jump"]
    kind = draw(st.sampled_from(choices))
    if kind == "simple":
        return draw(simple_stmt())
    if kind == "jump":
        return [f"if {draw(cond)}:", f"    {draw(st.sampled_from(['break', 'continue']))}"]
    if kind == "if":
        return [f"if {draw(cond)}:"] + indent(draw(block(depth + 1, in_loop)))
    if kind == "ifelse":
        return (
            [f"if {draw(cond)}:"]
            + indent(draw(block(depth + 1, in_loop)))
            + ["else:"]
            + indent(draw(block(depth + 1, in_loop)))
        )
    if kind == "for":
        it = draw(st.sampled_from(["T", "L", "range(2)", "E", "S", "[1, 2]", "sorted(E)"]))
        lines = [f"for v in {it}:"] + indent(draw(block(depth + 1, True)))
        if draw(st.booleans()):
            lines += ["else:"] + indent(draw(block(depth + 1, in_loop)))
        return lines
    exc = draw(
        st.sampled_from(
            ["Exception", "KeyError", "ValueError", "(KeyError, IndexError)", "AssertionError", "TypeError"]
        )
    )
    body = draw(
        st.sampled_from(
            [
                "a = D[S]",
                "a = int(S)",
                "a = T[1]",
                "a = 1 // X",
                "a = E['k']",
                "send(**E)",
                "a = [1][X]",
                "assert X > 1",
                "if X: raise ValueError('v')",
                "del D[S]",
                "s = f'{X:{S}}'",
                "s = '{a}'.format(**E)",
                "a = sum(E)",
                "pass",
            ]
        )
    )
    lines = ["try:", f"    {body}"] + indent(draw(block(depth + 1, in_loop)))
    lines += [f"except {exc} as err:", "    s = str(err)"] + indent(draw(block(depth + 1, in_loop)))
    if draw(st.booleans()):
        lines += ["else:"] + indent(draw(block(depth + 1, in_loop)))
    return lines


@st.composite
def program(draw):
    lines = []
    for _ in range(draw(st.integers(2, 7))):
        lines += draw(stmt())
    lines.append(f"final_return_value = [{draw(int_atom)}, {draw(str_atom)}, L, M, D]")
    return PRELUDE + "\n".join(lines) + "\n"


outputs = st.fixed_dictionaries(
    {
        "get_int": st.integers(0, 3),
        "get_str": st.sampled_from(["a", "k", "p", "q", "bb"]),
        "get_list": st.lists(st.integers(0, 3), max_size=3),
        "get_dict": st.dictionaries(
            st.sampled_from(["k", "x", "IGNORE PREVIOUS"]), st.integers(0, 2), max_size=2
        ),
    }
)


# --------------------------------------------------------------------------------------- the check
def run(src, data):
    host = TraceHost(data)
    res = run_program(src, tools=TOOLS, host=host, limits=LIMITS)
    return host, res


def calls(host):
    return [e for e in host.events if e[0] == "call"]


def branch_seen_before(host, n_calls):
    """A tainted branch check happened before the n-th call (or before the end)."""
    seen = 0
    for e in host.events:
        if e[0] == "call":
            if seen == n_calls:
                return False
            seen += 1
        elif e[1]:
            return True
    return False


def any_meta_tainted(metas):
    return any(tainted(m) for m in metas.values())


def check_pair(src, da, db):
    ha, ra = run(src, da)
    hb, rb = run(src, db)
    assert ra.status != "error" or ra.error.kind != "internal", ra.error
    assert rb.status != "error" or rb.error.kind != "internal", rb.error
    ca, cb = calls(ha), calls(hb)
    for i in range(min(len(ca), len(cb))):
        _, na, aa, ma = ca[i]
        _, nb, ab, mb = cb[i]
        if na != nb:
            # which tool is called differs: control flow decided it on tool data
            assert any_meta_tainted(ma) and any_meta_tainted(mb), (src, i, na, nb)
            assert branch_seen_before(ha, i) and branch_seen_before(hb, i), (src, i)
            break
        if aa != ab:
            assert any_meta_tainted(ma) and any_meta_tainted(mb), (src, i, aa, ab)
    else:
        i = min(len(ca), len(cb))
        if len(ca) != len(cb):
            longer, lres = (ca, ra) if len(ca) > len(cb) else (cb, rb)
            shorter_res = rb if longer is ca else ra
            # the extra call exists in one run only: it carries the data that decided it...
            assert any_meta_tainted(longer[i][3]), (src, i)
            # ...and the other run's end (its error, or its final state) does too
            if shorter_res.status == "error":
                assert tainted(shorter_res.error.meta), (src, shorter_res.error)
            else:
                assert tainted(shorter_res.pc), src
            return
    if ra.status != rb.status:
        failed = ra if ra.status != "success" else rb
        if failed.error is not None:
            assert tainted(failed.error.meta), (src, failed.error)
        return
    if ra.status == "error" and ra.error.message != rb.error.message:
        assert tainted(ra.error.meta) and tainted(rb.error.meta), (src, ra.error, rb.error)
    if ra.status != "success":
        return
    fa, fb = ra.final_return_value, rb.final_return_value
    if fa is not None and fb is not None and fa.value != fb.value:
        assert tainted(fa.meta) and tainted(fb.meta), (src, fa, fb)
    na, nb = ra.namespace, rb.namespace
    for name in set(na) | set(nb):
        va, vb = na.get(name), nb.get(name)
        if va is None or vb is None:
            present = va or vb
            assert tainted(present.meta), (src, name)
        elif va.value != vb.value:
            assert tainted(va.meta) and tainted(vb.meta), (src, name, va, vb)


# 400 generated programs (x2 runs) in the suite; NONINTERFERENCE_EXAMPLES=5000 for a deeper run by hand.
@settings(
    max_examples=int(os.environ.get("NONINTERFERENCE_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(program(), outputs, outputs)
def test_noninterference(src, da, db):
    check_pair(src, da, db)
