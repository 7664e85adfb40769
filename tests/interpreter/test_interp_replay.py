"""Suspend/resume by deterministic replay: earlier calls are answered from the record, never re-issued."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_helpers import TOOLS, M, run

from relay.interpreter import Limits, RecordedCall, ReplayHost, ToolError, run_program
from relay.meta import ValueWithMeta

ROOT = Path(__file__).resolve().parents[2]


def answer(name: str, kwargs: dict) -> ValueWithMeta:
    """A deterministic 'world': the result depends only on the call (stable across processes)."""
    plain = {k: v.value for k, v in kwargs.items()}
    h = hashlib.sha256(json.dumps([name, plain], sort_keys=True, default=str).encode()).hexdigest()
    n = int(h[:8], 16)
    kind = n % 4
    if kind == 0:
        value = f"text-{h[:6]}"
    elif kind == 1:
        value = [f"item-{h[i : i + 3]}" for i in range(0, 3 * (1 + n % 3), 3)]
    elif kind == 2:
        value = {"id": h[:4], "score": n % 100, "tags": sorted({h[0], h[1], h[2]})}
    else:
        value = n % 1000
    return ValueWithMeta(value, M(f"t{n % 3}", producers=(name,)))


class Live:
    """Answers new calls; counts how often each call index reached it."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.calls: list[tuple[str, dict, int]] = []

    def call_tool(self, name, kwargs, call_index):
        self.seen[call_index] = self.seen.get(call_index, 0) + 1
        self.calls.append((name, {k: (v.value, v.meta) for k, v in kwargs.items()}, call_index))
        return answer(name, kwargs)

    def check_branch(self, meta):
        return None


PROGRAM = """
results = []
seen = set()
docs = search(query='quarterly report', limit=3)
for d in (docs if isinstance(docs, list) else [docs]):
    info = get_doc(doc_id=str(d))
    seen.add(str(info)[:8])
    if isinstance(info, dict) and info.get('score', 0) > 50:
        results.append(parse_with_ai(query=f'summarise {info}'))
    else:
        results.append(str(info)[:10])
for tag in seen:
    results.append(search(query=tag))
summary = {k: v for k, v in zip(sorted(seen), results)}
try:
    send_email(to='boss@example.com', subject='Report', body=str(summary))
except ToolError as e:
    results.append('mail failed')
final_return_value = {'n': len(results), 'summary': summary}
"""


def full_run(src: str, **kw):
    live = Live()
    host = ReplayHost([], live=live)
    r = run_program(src, tools=TOOLS, host=host, **kw)
    return r, host, live


def test_resume_at_every_call_reaches_the_same_next_call_without_reissuing():
    r, host, live = full_run(PROGRAM)
    assert r.status == "success"
    n = len(live.calls)
    assert n >= 4 and len(host.recorded) == n
    for k in range(n + 1):
        replay = ReplayHost(host.recorded[:k], live=None)
        res = run_program(PROGRAM, tools=TOOLS, host=replay)
        assert replay.replayed == k  # every earlier call answered from the record
        if k < n:
            assert res.status == "suspended"
            s = res.suspended
            name, kwargs, idx = live.calls[k]
            assert (s.tool_name, s.call_index) == (name, idx)
            assert {a: (v.value, v.meta) for a, v in s.kwargs.items()} == kwargs
        else:
            assert res.status == "success"
            assert res.namespace == r.namespace
            assert res.final_return_value == r.final_return_value


def test_resume_with_live_host_only_sees_new_calls():
    _, host, live = full_run(PROGRAM)
    n = len(live.calls)
    for k in (0, 1, n // 2, n):
        counter = Live()
        replay = ReplayHost(host.recorded[:k], live=counter)
        res = run_program(PROGRAM, tools=TOOLS, host=replay)
        assert res.status == "success"
        assert set(counter.seen) == set(range(k, n))
        assert all(c == 1 for c in counter.seen.values())
        assert replay.replayed == k and replay.live_calls == n - k
        assert len(replay.recorded) == n and replay.new_results == replay.recorded[k:]


def test_suspend_resume_loop_like_the_orchestrator():
    """Simulates requests: each run suspends at the first new client call; the client's answer is appended."""
    record: list = []
    requests = 0
    while True:
        requests += 1
        host = ReplayHost(record)
        res = run_program(PROGRAM, tools=TOOLS, host=host)
        if res.status != "suspended":
            break
        s = res.suspended
        record = host.recorded + [RecordedCall(s.tool_name, answer(s.tool_name, s.kwargs))]
    assert res.status == "success"
    reference, _, live = full_run(PROGRAM)
    assert requests == len(live.calls) + 1
    assert res.namespace == reference.namespace


def test_internal_tool_results_are_recorded_for_later_resumes():
    qllm_calls = []

    def internal(name, kwargs, idx):
        if name == "parse_with_ai":
            qllm_calls.append(idx)
            return ValueWithMeta({"answer": len(qllm_calls)})  # non-deterministic in real life
        from relay.interpreter import Suspend

        raise Suspend()

    src = "a = parse_with_ai(query='x')\nb = get_doc(doc_id=str(a))\nfinal_return_value = [a, b]"
    h1 = ReplayHost([], live=internal)
    r1 = run_program(src, tools=TOOLS, host=h1)
    assert r1.status == "suspended" and r1.suspended.tool_name == "get_doc"
    assert len(h1.recorded) == 1
    h2 = ReplayHost(h1.recorded + [ValueWithMeta("doc")], live=internal)
    r2 = run_program(src, tools=TOOLS, host=h2)
    assert r2.status == "success" and r2.final_return_value.value == [{"answer": 1}, "doc"]
    assert qllm_calls == [0]  # the QLLM was not asked again on resume


def test_recorded_tool_error_replays_as_exception():
    src = (
        "try:\n    x = get_doc('a')\nexcept ToolError as e:\n    x = 'err: ' + str(e)\nfinal_return_value = x"
    )
    h = ReplayHost([ToolError("gone")])
    r = run_program(src, tools=TOOLS, host=h)
    assert r.final_return_value.value == "err: gone"


def test_replay_mismatch_is_reported():
    h = ReplayHost([RecordedCall("search", ValueWithMeta([]))])
    r = run_program("x = get_doc('a')", tools=TOOLS, host=h)
    assert r.status == "error" and r.error.kind == "replay" and "mismatch" in r.error.message


def test_replay_host_delegates_branch_checks():
    class Strict(Live):
        def check_branch(self, meta):
            return "no" if "t0" in meta.tags or "t1" in meta.tags or "t2" in meta.tags else None

    r = run_program("x = search(query='a')\nif x:\n    pass", tools=TOOLS, host=ReplayHost([], live=Strict()))
    assert r.status == "control_flow_violation"
    r = run_program(
        "x = search(query='a')\nif x:\n    pass",
        tools=TOOLS,
        host=ReplayHost([], live=Live(), check_branch=lambda m: "nope"),
    )
    assert r.status == "control_flow_violation"


SET_PROGRAM = """
words = set()
for w in ['pear', 'apple', 'fig', 'kiwi', 'banana', 'cherry', 'date', 'elderberry']:
    words.add(w + '!')
out = []
for w in words:
    out.append(search(query=w))
x = {('a', 1), ('b', 2), ('c', 3)}
print(words, x, {'k': words}, sorted(words), list(words), str(words), repr(x), f'{words}', words.pop())
final_return_value = [list(words), [o['args']['query'] for o in out]]
"""


def test_set_order_is_independent_of_the_hash_seed():
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from relay.interpreter import run_program, ToolSpec\n"
        "from relay.meta import ValueWithMeta\n"
        "class H:\n"
        "    def call_tool(self, n, kw, i): return ValueWithMeta({'args': {k: v.value for k, v in kw.items()}})\n"
        "    def check_branch(self, m): return None\n"
        "r = run_program(sys.stdin.read(), tools={'search': ToolSpec('search', ['query'])}, host=H())\n"
        "print(json.dumps([r.status, r.output, r.final_return_value.value]))\n"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run(
            [sys.executable, "-c", code],
            input=SET_PROGRAM,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        outs.add(p.stdout)
    assert len(outs) == 1
    status, output, value = json.loads(outs.pop())
    assert status == "success"
    assert value[1] == sorted(value[1])


# --------------------------------------------------------------------------- hypothesis: random programs
_EXPRS = st.sampled_from(
    [
        "1",
        "'q'",
        "x",
        "len(acc)",
        "str(r)[:5]",
        "sorted(tags)",
        "acc[-1] if acc else 'none'",
        "f'{x}-{len(tags)}'",
        "{'k': x}",
        "list(tags)[:2]",
        "r",
        "x * 2",
        "sum(len(str(a)) for a in acc)",
    ]
)
_TOOLCALL = st.sampled_from(
    ["search(query={e})", "get_doc(doc_id=str({e}))", "parse_with_ai(query=str({e}))", "search({e}, 2)"]
)


@st.composite
def statements(draw, depth=0):
    kind = draw(st.integers(0, 9 if depth < 2 else 5))
    e = draw(_EXPRS)
    if kind <= 1:
        return [f"r = {draw(_TOOLCALL).format(e=e)}"]
    if kind == 2:
        return [f"x = {e}"]
    if kind == 3:
        return [f"acc.append({e})"]
    if kind == 4:
        return [f"tags.add(str({e})[:3])"]
    if kind == 5:
        return [f"d[str({e})[:4]] = {e}"]
    body = draw(st.lists(statements(depth + 1), min_size=1, max_size=3))
    inner = ["    " + line for stmt in body for line in stmt]
    if kind == 6:
        other = ["    " + line for line in draw(statements(depth + 1))]
        return [f"if {e}:", *inner, "else:", *other]
    if kind == 7:
        src = draw(
            st.sampled_from(
                ["tags", "acc[:3]", "range(2)", "d", "str(r)[:3]", "r if isinstance(r, list) else [r]"]
            )
        )
        return [f"for v{depth} in {src}:", *inner]
    if kind == 8:
        return ["try:", *inner, "except Exception as err:", "    acc.append(str(err)[:20])"]
    return [f"if isinstance(r, dict) and {e}:", *inner]


@st.composite
def programs(draw):
    stmts = draw(st.lists(statements(), min_size=1, max_size=8))
    lines = ["x = 0", "r = None", "acc = []", "tags = set()", "d = {}"]
    lines += [line for s in stmts for line in s]
    lines.append("final_return_value = {'acc': acc, 'tags': tags, 'd': d, 'x': x}")
    return "\n".join(lines)


SMALL = Limits(max_steps=3000, max_loop_iterations=50, wall_time_seconds=5.0)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_replay_determinism_random_programs(src):
    r, host, live = full_run(src, limits=SMALL)
    assert r.error is None or r.error.kind != "internal", (r.error, src)
    n = len(live.calls)
    # a second full run is identical
    r2, _, live2 = full_run(src, limits=SMALL)
    assert live2.calls == live.calls and r2.status == r.status and r2.namespace == r.namespace
    # resuming at every call index reaches the same next call and never re-issues an answered one
    for k in sorted({0, n // 2, max(n - 1, 0), n}):
        replay = ReplayHost(host.recorded[:k], live=None)
        res = run_program(src, tools=TOOLS, host=replay, limits=SMALL)
        if k < n:
            assert res.status == "suspended", (k, n, res.error, src)
            assert (res.suspended.tool_name, res.suspended.call_index) == live.calls[k][0::2]
            assert {a: (v.value, v.meta) for a, v in res.suspended.kwargs.items()} == live.calls[k][1]
        else:
            assert res.status == r.status and res.namespace == r.namespace
        assert replay.replayed == k


def test_replay_of_twenty_calls_is_fast():
    src = (
        "out = []\nfor i in range(20):\n    r = search(query=f'q{i}')\n    out.append(str(r)[:10])\n"
        "final_return_value = out"
    )
    _, host, live = full_run(src)
    assert len(live.calls) == 20
    import time

    t0 = time.perf_counter()
    for _ in range(10):
        res = run(src, host=ReplayHost(host.recorded))
        assert res.status == "success"
    assert (time.perf_counter() - t0) / 10 < 0.02
