"""Program pool benchmark: what running dual-LLM programs off the event loop costs per run.

Run: .venv/bin/python bench/bench_program_pool.py
Target (issue #11): running programs off the event loop adds at most 1 ms per run at the median.

Compares, for a small program and for a resume with 20 recorded tool calls (replayed up to the 21st call,
the dual engine's usual job), the median time of one run:
  in-process      run_program() on the calling thread (what the engine did before; the event loop froze)
  in-process+out  the same plus building the picklable outcome (final value and namespace serialised)
  thread          ThreadRunner: awaited from an event loop, run in a thread (no hard bound)
  pool            PoolRunner: awaited from an event loop (uvloop), run in a worker process (the relay's path)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.interpreter import ReplayHost, ToolSpec, run_program  # noqa: E402
from relay.interpreter.pool import PoolRunner, ProgramJob, ThreadRunner, execute  # noqa: E402
from relay.meta import Meta, ValueWithMeta  # noqa: E402
from relay.sqrt import PolicyEngine, compile_policy  # noqa: E402

TOOL_META = Meta(producers=frozenset({"search"}), tags=frozenset({"__non_executable"}))
TOOLS = {
    "search": ToolSpec("search", ["query"], ["query"]),
    "send_email": ToolSpec("send_email", ["to", "body"], ["to"]),
}
SMALL = "x = [i * 2 for i in range(10)]\ny = {'total': sum(x), 'n': len(x)}\nfinal_return_value = y['total']"
RESUME = (
    "results = []\nfor i in range(20):\n    r = search(query=f'topic {i}')\n"
    "    if r['score'] > 3:\n        results.append(r['hits'][0])\n    else:\n"
    "        results.append(r['query'])\nsummary = ', '.join(results)\n"
    "send_email(to='me@example.com', body=summary)\nfinal_return_value = summary"
)
POLICY = 'tool "send_email" {\n    hard deny when body.tags overlaps {"secret"};\n}\n'


class Live:
    def call_tool(self, name, kwargs, call_index):
        q = kwargs.get("query")
        return ValueWithMeta(
            {
                "query": q.value if q else None,
                "hits": [f"r{call_index}-{i}" for i in range(5)],
                "score": call_index % 7,
            },
            TOOL_META,
        )

    def check_branch(self, meta):
        return None


def jobs() -> dict[str, ProgramJob]:
    engine = PolicyEngine(compile_policy(POLICY), mode="standard")  # what the relay sends: compiled policy
    first = ReplayHost([], live=Live())
    run_program(RESUME, tools=TOOLS, host=first)
    recorded = first.recorded[:20]
    return {
        "small program": ProgramJob(SMALL, TOOLS, [], None, None, engine),
        "resume, 20 recorded calls": ProgramJob(RESUME, TOOLS, recorded, None, None, engine),
    }


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def bench_sync(fn, n: int) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median_ms(times)


async def bench_async(runner, job: ProgramJob, n: int) -> float:
    out = await runner.run(job)
    assert out.status in ("success", "suspended"), out.error
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = await runner.run(job)
        times.append(time.perf_counter() - t0)
    return median_ms(times)


def main() -> None:
    n = 500
    pool = PoolRunner(2)
    pool.prewarm(wait=True)
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        new_loop = asyncio.new_event_loop
    print(f"{'':28} {'in-process':>11} {'+outcome':>9} {'thread':>9} {'pool':>9} {'pool - in-process':>18}")
    for label, job in jobs().items():

        def direct(job=job):
            host = ReplayHost(job.recorded, None, check_branch=job.branch.check_branch)
            r = run_program(
                job.source, tools=job.tools, host=host, context_vars=job.context_vars, limits=job.limits
            )
            assert r.status in ("success", "suspended")

        t_direct = bench_sync(direct, n)
        t_outcome = bench_sync(lambda job=job: execute(job), n)
        loop = new_loop()
        try:
            t_thread = loop.run_until_complete(bench_async(ThreadRunner(), job, n))
            t_pool = loop.run_until_complete(bench_async(pool, job, n))
        finally:
            loop.close()
        print(
            f"{label:28} {t_direct:8.3f} ms {t_outcome:6.3f} ms {t_thread:6.3f} ms {t_pool:6.3f} ms "
            f"{t_pool - t_direct:+14.3f} ms"
        )
    pool.close()


if __name__ == "__main__":
    main()
