"""Benchmark: deterministic guardrails (PII, URL and file blockers) on 10 KB of tool results.

Target (issue #7): under 2 ms median for 10 KB of tool-result JSON with every deterministic detector on.

    .venv/bin/python bench/bench_guardrails.py [--runs 300] [--size 10240]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.guardrails import Guardrails  # noqa: E402

FIRST = ["Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy"]
LAST = ["Smith", "Jones", "Garcia", "Müller", "Rossi", "Dubois", "Andersson", "Kowalski"]
WORDS = (
    "the order was shipped from our warehouse and should arrive within three business days please contact "
    "support if the package is damaged we appreciate your patience while we process the return request and "
    "refund the amount to the original payment method"
).split()


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--size", type=int, default=10 * 1024)
    ap.add_argument("--target-ms", type=float, default=2.0)
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
    return 0 if worst < args.target_ms else 1


if __name__ == "__main__":
    raise SystemExit(main())
