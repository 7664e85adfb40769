"""Benchmark: deterministic guardrails (PII, URL and file blockers) on 10 KB of tool results, and the
guardrail cost of a long conversation whose history the client resends on every turn.

Targets: under 2 ms median for 10 KB of tool-result JSON with every deterministic detector on (issue #7);
under 1 ms of guardrail time for a request that resends a 50-turn history (issue #12: what was scanned is
remembered by content hash in the session state, and the LLM classifiers run once per distinct content).

    .venv/bin/python bench/bench_guardrails.py [--runs 300] [--size 10240] [--turns 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.guardrails import Guardrails  # noqa: E402

FIRST = ["Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy"]
LAST = ["Smith", "Jones", "Garcia", "Müller", "Rossi", "Dubois", "Andersson", "Kowalski"]
WORDS = [
    "the",
    "order",
    "was",
    "shipped",
    "from",
    "our",
    "warehouse",
    "and",
    "should",
    "arrive",
    "within",
    "three",
    "business",
    "days",
    "please",
    "contact",
    "support",
    "if",
    "the",
    "package",
    "is",
    "damaged",
    "we",
    "appreciate",
    "your",
    "patience",
    "while",
    "we",
    "process",
    "the",
    "return",
    "request",
    "and",
    "refund",
    "the",
    "amount",
    "to",
    "the",
    "original",
    "payment",
    "method",
]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def realistic_tool_result(size: int, seed: int = 7) -> object:
    """A CRM/order-search style result of about ``size`` bytes of JSON, with some PII, URLs and paths."""
    rng = random.Random(seed)
    items = []
    i = 0
    while True:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        item = {
            "id": f"ORD-2024-{100000 + i}",
            "created_at": f"2024-10-{1 + i % 28:02d}T{8 + i % 10:02d}:15:00Z",
            "status": rng.choice(["shipped", "pending", "refunded", "delivered"]),
            "total": {"amount": round(rng.uniform(5, 500), 2), "currency": "EUR"},
            "sku": f"SKU-{rng.randint(10000, 99999)}",
            "version": f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
            "notes": _sentence(rng, rng.randint(8, 20)),
        }
        kind = i % 5
        if kind == 0:
            item["customer"] = {"name": f"{first} {last}", "email": f"{first.lower()}.{i}@example.com"}
        elif kind == 1:
            item["notes"] += f" Customer asked to call back on +44 20 7946 {1000 + i:04d} after 5pm."
        elif kind == 2:
            item["notes"] += f" Tracking: https://tracking.example.net/t/{rng.randint(10**8, 10**9)}?ref=mail"
        elif kind == 3:
            item["attachment"] = f"/var/data/invoices/2024/inv-{i}.pdf"
        else:
            item["notes"] += (
                " Refund to DE89 3704 0044 0532 0130 00 approved on 10/12/2024 (1/2 of the amount)."
            )
        items.append(item)
        i += 1
        if len(json.dumps({"results": items, "count": len(items), "next": None})) > size:
            items.pop()
            value = {"results": items, "count": len(items), "next": None, "summary": ""}
            room = size - len(json.dumps(value))
            value["summary"] = " ".join(_sentence(rng, 12) for _ in range(room // 40 + 1))[:room]
            return value


def clean_tool_result(size: int) -> object:
    """The same shape with nothing to detect (the common case)."""
    rng = random.Random(11)
    items = []
    i = 0
    while len(json.dumps(items)) < size - 200:
        items.append({"id": i, "title": _sentence(rng, 6), "body": _sentence(rng, 30), "score": rng.random()})
        i += 1
    return {"results": items}


def bench(g: Guardrails, value: object, runs: int) -> tuple[float, float, float]:
    g.scan_deterministic(value, where="tool_result")  # warm-up (lazy phonenumbers metadata)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        g.scan_deterministic(value, where="tool_result")
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[int(len(times) * 0.95) - 1] * 1e3, times[0] * 1e3


# ------------------------------------------------------------------------------ a resent 50-turn history


def conversation(turns: int, result_size: int = 2048) -> list[dict]:
    """A Chat Completions history of ``turns`` turns: question, tool call, tool result (CRM-style JSON of about
    ``result_size`` bytes with PII, URLs and paths in most of them), answer."""
    messages: list[dict] = [{"role": "system", "content": "You are a helpful support agent."}]
    for t in range(turns):
        messages.append({"role": "user", "content": f"Question {t}: what happened to order {1000 + t}?"})
        call_id = f"call_{t:04d}"
        args = {
            "query": f"order {1000 + t}",
            "customer_email": f"buyer{t}@example.org" if t % 4 == 0 else None,
        }
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "search_orders", "arguments": json.dumps(args)},
                    }
                ],
            }
        )
        result = realistic_tool_result(result_size, seed=t) if t % 3 else clean_tool_result(result_size)
        messages.append({"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)})
        messages.append({"role": "assistant", "content": f"Order {1000 + t} is on its way."})
    return messages


def _fake_call(state: dict) -> Any:
    """What a guard needs of the request: where its log steps go."""
    from types import SimpleNamespace

    return SimpleNamespace(state=state, events=[])


def bench_history(turns: int, runs: int) -> dict[str, float]:
    """Guardrail time (``ToolGuard.guard_request``) for a request carrying a ``turns``-turn history:
    the first time (everything scanned), resent unchanged, and resent with one new tool result."""
    import asyncio

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")
    django.setup()
    from relay.formats import FORMATS
    from relay.toolcalls.guard import ToolGuard

    features = {
        "classifiers": [
            {"name": "pii_redaction", "threshold": None, "mode": None},
            {"name": "toxicity_filter", "threshold": None, "mode": None},
        ],
        "blockers": [{"name": "url_blocker"}, {"name": "file_blocker"}],
    }
    state: dict = {"config": {"features": features}, "seq": 0, "turns": 0}
    calls = {"classifier": 0}

    async def ask(req):  # the LLM classifier: an instant "not toxic"
        calls["classifier"] += 1
        return {"score": 0.01, "label": "ok", "reason": ""}

    def guard_for(call: Any) -> ToolGuard:  # per request, as the relay does
        return ToolGuard.for_session(
            features,
            state,
            ask=ask,
            log=lambda kind, **data: call.events.append({"type": kind, "data": data}),
        )

    chat = FORMATS["chat"]
    history = conversation(turns)
    body = {"model": "m", "messages": history}
    size = len(json.dumps(body))

    async def run() -> dict[str, float]:
        call = _fake_call(state)
        out: dict[str, float] = {"request_kb": size / 1024}
        t0 = time.perf_counter()
        first = await guard_for(call).guard_request(chat, body)
        out["first_ms"] = (time.perf_counter() - t0) * 1e3
        out["classifier_calls_first"] = calls["classifier"]
        assert "@example.com" not in json.dumps(first["messages"]), "the history was not redacted"
        times = []
        for _ in range(runs):
            call.events.clear()
            t0 = time.perf_counter()
            again = await guard_for(call).guard_request(chat, body)
            times.append(time.perf_counter() - t0)
        assert again["messages"] == first["messages"]
        times.sort()
        out["resent_median_ms"] = statistics.median(times) * 1e3
        out["resent_p95_ms"] = times[int(len(times) * 0.95) - 1] * 1e3
        out["classifier_calls_resent"] = calls["classifier"] - out["classifier_calls_first"]
        from relay.formats._json import dumps, loads  # what the session store serialises with

        out["memo_entries"] = len(state["guard_memo"]["e"])
        out["memo_kb"] = len(dumps(state["guard_memo"])) / 1024
        t0 = time.perf_counter()
        for _ in range(50):
            loads(dumps(state["guard_memo"]))
        out["memo_json_roundtrip_ms"] = (time.perf_counter() - t0) / 50 * 1e3
        # The next turn: the same history plus one new question, tool call and (never seen) tool result.
        times = []
        for i in range(min(runs, 50)):
            extra = conversation(1)[1:]
            extra[2]["content"] = json.dumps(realistic_tool_result(2048, seed=10_000 + i))
            grown = {"model": "m", "messages": history + extra}
            t0 = time.perf_counter()
            await guard_for(call).guard_request(chat, grown)
            times.append(time.perf_counter() - t0)
        out["next_turn_median_ms"] = statistics.median(times) * 1e3
        return out

    return asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--size", type=int, default=10 * 1024)
    ap.add_argument("--target-ms", type=float, default=2.0)
    ap.add_argument("--turns", type=int, default=50)
    ap.add_argument("--history-target-ms", type=float, default=1.0)
    args = ap.parse_args()

    g = Guardrails.from_features(
        [{"name": "pii_redaction"}], [{"name": "url_blocker"}, {"name": "file_blocker"}]
    )
    cases = {
        "realistic (PII, URLs, paths)": realistic_tool_result(args.size),
        "clean (nothing to detect)": clean_tool_result(args.size),
    }
    text = json.dumps(cases["realistic (PII, URLs, paths)"])
    cases["same, as one JSON string"] = text
    worst = 0.0
    print(f"deterministic guardrails, all detectors on, {args.runs} runs each")
    for label, value in cases.items():
        size = len(json.dumps(value)) if not isinstance(value, str) else len(value)
        median, p95, best = bench(g, value, args.runs)
        worst = max(worst, median)
        print(
            f"  {label:<32} {size / 1024:5.1f} KB  median {median:6.3f} ms  p95 {p95:6.3f} ms  min {best:6.3f} ms"
        )
    out = g.scan_deterministic(cases["realistic (PII, URLs, paths)"], where="tool_result")
    print("  findings on the realistic case: " + ", ".join(f"{f.kind}×{f.span_count}" for f in out.findings))
    verdict = "OK" if worst < args.target_ms else "OVER BUDGET"
    print(f"worst median {worst:.3f} ms (target < {args.target_ms} ms): {verdict}")

    h = bench_history(args.turns, args.runs)
    print(
        f"\n{args.turns}-turn history resent on every request ({h['request_kb']:.0f} KB of JSON, "
        f"{args.turns} tool results and {args.turns} tool calls; PII, toxicity (instant fake LLM), URL and file "
        "guardrails on)"
    )
    print(
        f"  first time (everything scanned)      {h['first_ms']:8.3f} ms   classifier calls {h['classifier_calls_first']}"
    )
    print(
        f"  resent unchanged                     {h['resent_median_ms']:8.3f} ms median, p95 "
        f"{h['resent_p95_ms']:.3f} ms   classifier calls {h['classifier_calls_resent']}"
    )
    print(f"  resent + 1 new turn (one new result) {h['next_turn_median_ms']:8.3f} ms median")
    print(
        f"  memo in the session state after those {args.turns} turns: {h['memo_entries']} entries, "
        f"{h['memo_kb']:.1f} KB of JSON (load + save with the session store's JSON: "
        f"{h['memo_json_roundtrip_ms']:.3f} ms)"
    )
    ok_history = h["resent_median_ms"] < args.history_target_ms and h["classifier_calls_resent"] == 0
    print(
        f"resent {args.turns}-turn history: {h['resent_median_ms']:.3f} ms of guardrail time per request "
        f"(target < {args.history_target_ms} ms): {'OK' if ok_history else 'OVER BUDGET'}"
    )
    return 0 if worst < args.target_ms and ok_history else 1


if __name__ == "__main__":
    raise SystemExit(main())
