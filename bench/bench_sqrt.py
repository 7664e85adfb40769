"""Benchmark of the SQRT engine: compile a 200-rule policy (< 50 ms), evaluate one call (< 100 µs median).

Run: ``.venv/bin/python bench/bench_sqrt.py``
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.meta import DEFAULT_META, Meta, ValueWithMeta, make_set  # noqa: E402
from relay.sqrt import PolicyEngine, compile_policy  # noqa: E402
from relay.sqrt.parser import parse_program  # noqa: E402
from relay.sqrt.policy import _compile_sqrt, digest_of  # noqa: E402

LETS = r"""
let Sensitive = {"pii", "secret", "confidential", "internal_use"};
let Blocked = {"spam@evil.com", str matching r".*@blocked\.example$", str like w"*.invalid"};
let IsAdmin = user.tags overlaps {"admin", "superuser"};
let IsSensitive = data.tags overlaps Sensitive;
let Trusted = @args.producers superset of {"verified"};
"""


def spread_policy(n_tools: int = 50, rules_per_tool: int = 4) -> str:
    """200 check rules spread over 50 tools (plus regex policies, result/session blocks and shorthands)."""
    parts = [LETS]
    for i in range(n_tools):
        rules = [
            f'    /// block bad recipients of tool {i}\n    must deny when to.value in Blocked or (IsSensitive and not to.value in {{str matching r".*@corp{i}\\.com"}});',
            f'    must allow when IsAdmin and data.tags subset of {{"public", "t{i}"}};',
            f'    should deny when "tool{i}" in @session.tags and count.value in {{int {i}..{i + 100}}};',
            "    should allow always;",
        ][:rules_per_tool]
        parts.append(
            f'tool "tool_{i}" {{\n    priority {i % 7};\n'
            + "\n".join(rules)
            + f'\n    result {{ @tags |= {{"tool:{i}"}}; when IsSensitive {{ @consumers &= {{"internal"}}; }} }}\n'
            f'    session after {{ @tags |= {{"tool{i}"}}; }}\n}}\n'
        )
    parts.append('tool r"^read_.*" { hard deny when path.value in {str like w"/etc/*"}; }\n')
    parts.append('tool r"^tool_1.*" -> @producers |= {"family_1"};\n')
    return "".join(parts)


def single_tool_policy(n_rules: int = 200) -> str:
    """Worst case: 200 rules on one tool, no rule fires until the fallback (every hard rule is evaluated)."""
    rules = []
    for i in range(n_rules - 1):
        if i % 2:
            rules.append(
                f'    must deny when to.value in {{"blocked{i}@x.com", str matching r".*@evil{i}\\.com"}};'
            )
        else:
            rules.append(
                f'    must deny when data.tags overlaps {{"tag{i}"}} and not user.tags overlaps {{"admin"}};'
            )
    rules.append("    should allow always;")
    return LETS + 'tool "send_email" {\n' + "\n".join(rules) + "\n}\n"


def count_rules(src: str) -> int:
    prog = parse_program(src)
    return sum(len(t.rules) for t in prog.tools)


def time_compile(src: str, runs: int = 15) -> tuple[float, float]:
    times = []
    for k in range(runs):
        text = src + f"// run {k}\n"  # new text: no cache hit
        t0 = time.perf_counter()
        _compile_sqrt(text, digest_of(text, "sqrt"))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, min(times) * 1000


def time_eval(
    engine: PolicyEngine, tool: str, args: dict, session: Meta, n: int = 20000
) -> tuple[float, float]:
    for _ in range(500):
        engine.before_call(tool, args, session)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        engine.before_call(tool, args, session)
        samples.append(clock() - t0)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def main() -> int:
    ok = True
    args = {
        "to": ValueWithMeta("alice@partner.org"),
        "data": ValueWithMeta("report", Meta(make_set(["verified"]), make_set(["*"]), make_set(["public"]))),
        "user": ValueWithMeta("bob", Meta(tags=make_set(["staff"]))),
        "count": ValueWithMeta(42),
    }
    session = Meta(tags=make_set(["tool17", "other"]))
    print(f"SQRT benchmark (python {sys.version.split()[0]})")
    for label, src, tool in (
        ("200 rules over 50 tools", spread_policy(), "tool_17"),
        ("200 rules on one tool  ", single_tool_policy(), "send_email"),
    ):
        n_rules = count_rules(src)
        med, best = time_compile(src)
        policy = compile_policy(src)
        engine = PolicyEngine(policy)
        d = engine.before_call(tool, args, session)
        eval_med, eval_p99 = time_eval(engine, tool, args, session)
        print(
            f"  {label}: {n_rules} rules, {len(src)} chars | compile median {med:6.2f} ms (best {best:.2f})"
            f" | before_call median {eval_med:6.1f} µs (p99 {eval_p99:.1f}) -> {d.verdict}"
        )
        ok &= med < 50 and eval_med < 100
        rmed = statistics.median(_time_after(engine, tool, args, session) for _ in range(2000))
        print(f"  {'':23}  after_call median {rmed:6.1f} µs")
    empty = PolicyEngine(None)
    e_med, _ = time_eval(empty, "x", args, DEFAULT_META)
    print(f"  no policy (presets only): before_call median {e_med:.1f} µs")
    print("targets: compile < 50 ms, evaluation < 100 µs median ->", "OK" if ok else "MISSED")
    return 0 if ok else 1


def _time_after(engine, tool, args, session):
    result = ValueWithMeta("r", engine.initial_result_meta(args))
    t0 = time.perf_counter_ns()
    engine.after_call(tool, args, result, session)
    return (time.perf_counter_ns() - t0) / 1000


if __name__ == "__main__":
    raise SystemExit(main())
