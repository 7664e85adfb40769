"""Interpreter benchmark: cost per executed statement and cost of a resume (replay of recorded calls).

Run: .venv/bin/python bench/bench_interpreter.py
Targets (issue): < 50 us per executed statement for programs of 10, 100, 1000 statements; replaying a
program with 20 earlier tool calls (one resume) < 20 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.interpreter import ReplayHost, ToolSpec, run_program  # noqa: E402
from relay.meta import Meta, ValueWithMeta  # noqa: E402

TOOL_META = Meta(producers=frozenset({"search"}), tags=frozenset({"__non_executable"}))
TOOLS = {
    "search": ToolSpec("search", ["query"], ["query"]),
    "send_email": ToolSpec("send_email", ["to", "body"], ["to"]),
}


class Host:
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


BLOCK = [
    "v{i} = {i} * 3 + base",
    "s{i} = f'item {{v{i}}} of {{len(lst)}}'",
    "lst.append(s{i})",
    "if v{i} % 2 == 0:\n    d[s{i}] = v{i}\nelse:\n    d[s{i}] = -v{i}",
    "t{i} = [x * 2 for x in range(5) if x != 2]",
    "w{i} = s{i}.upper().replace('ITEM', 'it')",
    "total = total + sum(t{i}) + v{i}",
    "ok{i} = s{i} in d and isinstance(d[s{i}], int)",
    "p{i} = d.get(s{i}, 0) + len(w{i})",
    "tag{i} = 'even' if p{i} % 2 == 0 else 'odd'",
]


def straight_program(n_statements: int, tainted: bool = False) -> str:
    """Straight-line code; with ``tainted`` every value derives from a tool result (non-default metas)."""
    base = "search(query='seed')['score']" if tainted else "1"
    lines = [f"base = {base}", "lst = []", "d = {}", "total = 0"]
    i = 0
    while len(lines) < n_statements:
        for tmpl in BLOCK:
            if len(lines) >= n_statements:
                break
            lines.append(tmpl.format(i=i))
        i += 1
    lines.append("final_return_value = {'total': total, 'n': len(lst)}")
    return "\n".join(lines)


def bench(src: str, host, repeat: int) -> tuple[float, int]:
    r = run_program(src, tools=TOOLS, host=host)  # warm the parse cache
    assert r.status in ("success", "suspended"), r.error
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = run_program(src, tools=TOOLS, host=host)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), r.steps


def main() -> None:
    print("statements/program           steps  median run   per step")
    for tainted in (False, True):
        for n in (10, 100, 1000):
            src = straight_program(n, tainted)
            t, steps = bench(src, Host(), repeat=max(20, 20000 // n))
            label = f"{n}{' (tool-derived data)' if tainted else ''}"
            print(f"{label:>27}  {steps:>5}  {t * 1e3:8.3f} ms  {t / steps * 1e6:6.2f} us")
    loop = (
        "acc = []\nd = {}\nfor i in range(2000):\n    s = f'k{i}'\n    if i % 3 == 0:\n"
        "        d[s] = i\n    acc.append(len(s) + d.get(s, 0))\nfinal_return_value = sum(acc)"
    )
    t, steps = bench(loop, Host(), repeat=20)
    print(f"{'loop (2000 iterations)':>27}  {steps:>5}  {t * 1e3:8.3f} ms  {t / steps * 1e6:6.2f} us")

    src = straight_program(1000)
    t0 = time.perf_counter()
    run_program(src + "\n# cold", tools=TOOLS, host=Host())
    print(f"cold parse+validate+run of 1000 statements: {(time.perf_counter() - t0) * 1e3:.2f} ms")

    # Resume: a program that made 20 tool calls, replayed from the top with the recorded results.
    replay_src = (
        "results = []\nfor i in range(20):\n    r = search(query=f'topic {i}')\n"
        "    if r['score'] > 3:\n        results.append(r['hits'][0])\n    else:\n"
        "        results.append(r['query'])\nsummary = ', '.join(results)\n"
        "send_email(to='me@example.com', body=summary)\nfinal_return_value = summary"
    )
    first = ReplayHost([], live=Host())
    r = run_program(replay_src, tools=TOOLS, host=first)
    record = first.recorded[:20]  # the 20 searches; the email is the new call
    times = []
    for _ in range(200):
        h = ReplayHost(record)
        t0 = time.perf_counter()
        r = run_program(replay_src, tools=TOOLS, host=h)
        times.append(time.perf_counter() - t0)
        assert r.status == "suspended" and h.replayed == 20 and r.suspended.tool_name == "send_email"
    print(
        f"resume after 20 recorded tool calls (replay to the 21st): median {statistics.median(times) * 1e3:.3f} ms,"
        f" max {max(times) * 1e3:.3f} ms ({r.steps} steps)"
    )


if __name__ == "__main__":
    main()
