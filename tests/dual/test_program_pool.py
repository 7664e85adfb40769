"""The program pool (relay.interpreter.pool): programs run in worker processes with a hard wall-clock and
memory bound enforced from outside the interpreter; a run stopped there is a clean "limit" error, the worker
is replaced, and the pool serves the next run. And the dual engine keeps its event loop free meanwhile."""

from __future__ import annotations

import asyncio
import json
import time

import pool_jobs
import pytest
from dual_helpers import DOC_TOOLS, LEAK_POLICY, ChatClient, FakeLLM, make_config, py

from relay.dual import DualEngine
from relay.formats.chat import decode_request
from relay.interpreter import Limits, RecordedCall, ToolError, ToolSpec
from relay.interpreter.pool import (
    PoolRunner,
    ProgramJob,
    ProgramOutcome,
    ThreadRunner,
    get_runner,
    set_runner,
)
from relay.meta import DEFAULT_META, Meta, ValueWithMeta
from relay.sqrt import PolicyEngine, compile_policy

# Limits the interpreter itself would take minutes to reach: only the outside bound stops these runs.
ENDLESS = Limits(max_steps=10**12, max_loop_iterations=10**12, wall_time_seconds=3600)
RUNAWAY = "n = 0\nfor i in range(1000):\n    for j in range(1000):\n        for k in range(1000):\n            n = n + 1\n"
TOOLS = {"get": ToolSpec("get", ["key"], ["key"]), "send": ToolSpec("send", ["to", "body"], ["to"])}
TOOL_META = Meta(producers=frozenset({"get"}), tags=frozenset({"secret"}))


@pytest.fixture(scope="module")
def pool():
    """A one-worker pool with a 1 s hard bound and a 256 MB memory budget."""
    runner = PoolRunner(1, timeout=1.0, memory_mb=256)
    runner.prewarm(wait=True)
    yield runner
    runner.close()


def run(runner, job, **kw) -> ProgramOutcome:
    return asyncio.run(runner.run(job, **kw))


def _comparable(o: ProgramOutcome) -> dict:
    s = o.suspended
    return {
        "status": o.status,
        "steps": o.steps,
        "tool_calls": o.tool_calls,
        "output": o.output,
        "error": None if o.error is None else (o.error.kind, o.error.message, o.error.lineno, o.error.meta),
        "suspended": None if s is None else (s.tool_name, s.kwargs, s.call_index, dict(vars(s))),
        "final": o.final_return_value,
        "namespace": o.namespace,
    }


PROGRAMS = [
    (
        'r = get(key="a")\nfinal_return_value = r["x"] + 1',
        [RecordedCall("get", ValueWithMeta({"x": 41}, TOOL_META))],
    ),
    ('r = get(key="a")\nsend(to="bob", body=r)', [RecordedCall("get", ValueWithMeta("data", TOOL_META))]),
    (
        'try:\n    get(key="a")\nexcept ToolError as e:\n    final_return_value = "failed"',
        [RecordedCall("get", ToolError("down", TOOL_META))],
    ),
    ('x = {"a": [1, 2]}\nprint("hi", x)\nfinal_return_value = x["b"]', []),
    ("def f():\n    pass", []),
    ("x = (", []),
    ('r = send(to="a")', [RecordedCall("get", ValueWithMeta(1, DEFAULT_META))]),  # replay mismatch
]


@pytest.mark.parametrize("source,recorded", PROGRAMS)
def test_pool_outcome_equals_in_process_outcome(pool, source, recorded):
    """What comes back through the process boundary is what the same run gives in-process."""
    job = ProgramJob(source, TOOLS, recorded, {"ctx": ValueWithMeta([1, 2], TOOL_META)}, None)
    assert _comparable(run(pool, job)) == _comparable(run(ThreadRunner(), job))


def test_branch_policy_crosses_the_boundary(pool):
    """The branching meta-policy of the session's PolicyEngine (whose compiled policy does not pickle) is
    enforced in the worker."""
    presets = {
        "branching_meta_policy": {"mode": "deny", "producers": [], "tags": ["secret"], "consumers": []}
    }
    engine = PolicyEngine(compile_policy(LEAK_POLICY), presets=presets, mode="custom")
    job = ProgramJob(
        'r = get(key="a")\nif r == "x":\n    y = 1',
        TOOLS,
        [RecordedCall("get", ValueWithMeta("x", TOOL_META))],
        None,
        None,
        branch=engine,
    )
    out = run(pool, job)
    assert out.status == "control_flow_violation" and out.error.kind == "control_flow_violation"
    assert "Control flow violation" in out.error.message
    engine = PolicyEngine(compile_policy(LEAK_POLICY), presets=presets, mode="standard")
    job.branch = engine
    assert run(pool, job).status == "success"


def test_runaway_program_is_killed_at_the_outside_bound_and_the_pool_goes_on(pool):
    [before] = pool.worker_pids()
    t0 = time.monotonic()
    out = run(pool, ProgramJob(RUNAWAY, {}, [], None, ENDLESS))
    elapsed = time.monotonic() - t0
    assert out.status == "error" and out.error.kind == "limit"
    assert out.error.message == "Limit exceeded: the program ran longer than 1 s and was stopped"
    assert 1.0 <= elapsed < 2.5
    # the next run is served normally, by a new worker
    out = run(pool, ProgramJob('final_return_value = "ok"', {}, []))
    assert out.status == "success" and out.final_return_value.value == "ok"
    assert pool.worker_pids() != [before]


def test_a_stopped_run_carries_the_metadata_of_its_inputs(pool):
    """Whether a run outlives its bound may depend on the tool data it read: the error says so."""
    job = ProgramJob(
        'r = get(key="a")\n' + RUNAWAY,
        TOOLS,
        [RecordedCall("get", ValueWithMeta(3, TOOL_META))],
        {"c": ValueWithMeta(1, Meta(producers=frozenset({"ctx"})))},
        ENDLESS,
    )
    out = run(pool, job)
    assert out.error.kind == "limit" and out.error.meta.producers == {"get", "ctx"}
    assert "secret" in out.error.meta.tags
    out = run(pool, ProgramJob(RUNAWAY, {}, [], None, ENDLESS))
    assert out.error.kind == "limit" and out.error.meta == DEFAULT_META


def test_a_run_stuck_inside_one_c_call_is_killed_too(pool):
    """A builtin that never returns to the interpreter (SIGTERM is not left to a Python handler)."""
    t0 = time.monotonic()
    out = run(pool, ProgramJob("", {}, []), fn=pool_jobs.stuck_in_c)
    assert out.error.kind == "limit" and "ran longer than 1 s" in out.error.message
    assert time.monotonic() - t0 < 2.5
    assert run(pool, ProgramJob("x = 1", {}, [])).status == "success"


def test_the_default_bound_is_the_interpreter_wall_time_plus_a_margin():
    runner = PoolRunner(1)
    assert runner.hard_timeout(None) == Limits().wall_time_seconds + 1.0
    assert runner.hard_timeout(Limits(wall_time_seconds=2.5)) == 3.5
    assert PoolRunner(1, timeout=7).hard_timeout(Limits(wall_time_seconds=2.5)) == 7


def test_memory_bound(pool):
    # a program allowed by its own (raised) limits to build a 400 MB string: MemoryError in the worker
    big = Limits(max_value_size=10**10, max_total_allocation=10**12)
    out = run(pool, ProgramJob("s = 'a' * 400000000\nfinal_return_value = len(s)", {}, [], None, big))
    assert out.status == "error" and out.error.kind == "limit" and "out of memory" in out.error.message
    # an allocation outside the interpreter
    out = run(pool, ProgramJob("", {}, []), fn=pool_jobs.allocate)
    assert out.status == "error" and out.error.kind == "limit" and "out of memory" in out.error.message
    # within the budget: fine
    out = run(pool, ProgramJob("s = 'a' * 1000000\nfinal_return_value = len(s)", {}, []))
    assert out.status == "success" and out.final_return_value.value == 1000000


def test_a_worker_that_dies_is_a_limit_error_and_is_replaced(pool):
    out = run(pool, ProgramJob("", {}, []), fn=pool_jobs.die)
    assert out.status == "error" and out.error.kind == "limit"
    assert "worker process was stopped" in out.error.message
    assert run(pool, ProgramJob("x = 1", {}, [])).status == "success"


def test_cancelling_a_run_kills_its_worker(pool):
    async def go():
        task = asyncio.ensure_future(pool.run(ProgramJob(RUNAWAY, {}, [], None, ENDLESS)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await pool.run(ProgramJob("final_return_value = 2", {}, []), fn=pool_jobs.pid_and_run)

    before = pool.worker_pids()
    pid, out = asyncio.run(go())
    assert out.final_return_value.value == 2 and [pid] != before


def test_nothing_of_a_run_reaches_the_next(pool):
    """Two runs on the same worker: the second sees none of the first's names or values."""
    pid1, first = run(
        pool, ProgramJob("secret = 'x' * 10\nfinal_return_value = secret", {}, []), fn=pool_jobs.pid_and_run
    )
    pid2, second = run(pool, ProgramJob("final_return_value = secret", {}, []), fn=pool_jobs.pid_and_run)
    assert pid1 == pid2
    assert second.status == "error" and second.error.message.startswith("NameError")
    assert set(second.namespace) == set()


def test_the_pool_recovers_when_it_breaks(pool):
    """An idle worker killed from outside breaks a pebble pool; the runner starts a new one."""
    import os
    import signal

    [pid] = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pool._pool.active and time.monotonic() < deadline:  # pebble notices within 0.1 s
        time.sleep(0.02)
    out = run(pool, ProgramJob("final_return_value = 3", {}, []))
    assert out.status == "success" and out.final_return_value.value == 3


# ------------------------------------------------------------------------------ through the engine

HOSTILE = """
s = "ab" * 500000
n = 0
for i in range(10000):
    n = n + s.count("ab") + s.count("ba")
final_return_value = n
"""


class _Watched:
    """The pool, noting when each run was in flight."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.windows: list[tuple[float, float]] = []

    async def run(self, job, **kw):
        t0 = time.monotonic()
        try:
            return await self.runner.run(job, **kw)
        finally:
            self.windows.append((t0, time.monotonic()))


@pytest.fixture
def engine_pool(pool):
    watched = _Watched(pool)
    previous = set_runner(watched)
    yield watched
    set_runner(previous)


def test_engine_hostile_program_ends_with_a_limit_error_and_the_loop_stays_free(engine_pool):
    cfg = make_config(fsm={"max_pllm_failed_steps": 1})
    llm = FakeLLM(pllm=[py(HOSTILE)])
    engine = DualEngine(cfg, session_id="s", llm=llm, models=("p", "q"))
    request = decode_request({"model": "p", "messages": [{"role": "user", "content": "count"}]})

    async def go():
        ticks: list[float] = []
        done = asyncio.Event()

        async def ticker():
            while not done.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        tick = asyncio.ensure_future(ticker())
        try:
            outcome = await engine.advance({}, request, completed_turns=0)
        finally:
            done.set()
            await tick
        return outcome, ticks

    outcome, ticks = asyncio.run(go())
    assert outcome.failed and outcome.error_code == "max_steps_exceeded"
    assert "Limit exceeded: the program ran longer than 1 s and was stopped" in outcome.error_message
    doc = json.loads(outcome.content)
    assert doc["status"] == "failure" and "Limit exceeded" in doc["error"]["message"]
    # While the program ran (over a second), the event loop kept turning: it never waited for the program.
    [(start, end)] = engine_pool.windows
    assert end - start >= 1.0
    during = [t for t in ticks if start <= t <= end]
    assert len(during) > 50
    gaps = [b - a for a, b in zip([start, *during], [*during, end], strict=True)]
    assert max(gaps) < 0.1


def test_engine_runs_through_the_installed_runner(engine_pool):
    """The ordinary flows run unchanged through the pool: a suspended call, a resume, a final value."""
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d + "!"')])
    out = ChatClient(make_config(), llm, tools=DOC_TOOLS).run("get D1", lambda n, a: "text")
    assert json.loads(out.content)["final_return_value"]["value"] == "text!"
    assert get_runner() is engine_pool and engine_pool.windows


def test_failure_namespace_snapshot_is_computed_off_the_loop(engine_pool):
    llm = FakeLLM(pllm=[py('x = 5\nd = get_internal_document(doc_id="D1")\ny = d["missing"]')])
    cfg = make_config(fsm={"max_pllm_failed_steps": 1}, rf={"include_namespace_snapshot": True})
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run("get D1", lambda n, a: {"a": 1})
    doc = json.loads(out.content)
    assert out.failed and doc["namespace_snapshot"]["x"]["value"] == 5
