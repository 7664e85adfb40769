"""Server time to resume a dual-LLM session with N earlier tool calls (LLM time excluded; run by hand).

    .venv/bin/python bench/bench_dual_resume.py [--calls 20] [--rounds 300]

Builds a session whose program has already made N client tool calls (each answered with a ~300-byte JSON
result, under a SQRT policy that tags results and checks the next call), then measures one resume request:
JSON-decode the stored state, decode the Chat Completions body (the full stateless history), ``advance()``
(history check, result decoding, policy result phase, replay of the N recorded calls, policy check of the
next call, suspension) and JSON-encode the state. Target: p50 < 20 ms for N = 20. No LLM is called during a
resume (a fake caller raises if it is).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.config import resolve_config  # noqa: E402
from relay.dual import DualEngine  # noqa: E402
from relay.formats.chat import decode_request  # noqa: E402
from relay.formats.model import Usage  # noqa: E402

PROGRAM = """
orders = []
total = 0
for i in range({n}):
    order = get_order(order_id=f"ORD-{{i:04d}}", include_items=True)
    orders.append(order)
    total += len(orders)
summary = parse_with_ai(query=f"Summarise these orders: {{orders}}", output_schema={{"summary": "str"}})
send_report(to="ops@trustedcorp.com", subject="Orders", body=summary["summary"])
final_return_value = {{"count": len(orders), "summary": summary["summary"]}}
"""
POLICY = """
tool "get_order" -> @tags |= {"customer_data"};
tool "send_report" {
    hard deny when (body.tags overlaps {"customer_data"}) and (not to.value in {str matching r".*@trustedcorp\\.com"});
}
"""
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Fetch an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "send_report",
            "description": "Send a report.",
            "parameters": {
                "type": "object",
                "properties": {
                    "to": {"type": "string"},
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                },
                "required": ["to", "subject", "body"],
            },
        },
    },
]


class Completion:
    def __init__(self, text: str) -> None:
        self.text, self.parsed, self.usage = text, None, Usage(100, 50)


class FakeLLM:
    def __init__(self, program: str) -> None:
        self.program = program
        self.calls = 0

    async def __call__(self, role, *, system, messages, json_schema=None):
        self.calls += 1
        if role != "pllm":
            raise AssertionError(f"unexpected {role} call")
        return Completion(f"```python\n{self.program}\n```")


def order_result(i: int) -> str:
    return json.dumps(
        {
            "order_id": f"ORD-{i:04d}",
            "customer": f"Customer {i}",
            "status": "shipped",
            "items": [{"sku": f"SKU-{i}-{k}", "qty": k + 1, "price": 9.99 + k} for k in range(3)],
            "notes": "Leave at the front door.",
        }
    )


def build_session(n: int):
    cfg = resolve_config(arch="dual-llm", documents=None, endpoint_type="chat")
    cfg["policy"]["codes"] = {"code": POLICY, "language": "sqrt"}
    cfg["fsm"]["max_n_turns"] = 1
    llm = FakeLLM(PROGRAM.format(n=n + 5))
    sid = "9653dc47-fb18-11f0-b0ee-7d965b6bbd63"
    state: dict = {}
    messages = [
        {"role": "system", "content": "You are an order assistant."},
        {"role": "user", "content": "Summarise my recent orders and mail the summary to ops."},
    ]
    for i in range(n + 1):
        body = {"model": "m", "messages": messages, "tools": TOOLS}
        engine = DualEngine(cfg, session_id=sid, llm=llm, models=("m", "m"))
        out = asyncio.run(engine.advance(state, decode_request(copy.deepcopy(body)), completed_turns=0))
        state = json.loads(json.dumps(state))
        assert out.kind == "tool_calls", out.content
        call = out.tool_calls[0]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                ],
            }
        )
        if i < n:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": order_result(i)})
    # state now waits for the result of call n (0-based): n earlier calls answered
    messages.append(
        {"role": "tool", "tool_call_id": messages[-1]["tool_calls"][0]["id"], "content": order_result(n)}
    )
    return cfg, sid, llm, json.dumps(state), json.dumps({"model": "m", "messages": messages, "tools": TOOLS})


async def resume_once(cfg, sid, llm, state_json: str, body_json: str, n: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    state = json.loads(state_json)
    request = decode_request(json.loads(body_json))
    t1 = time.perf_counter()
    engine = DualEngine(cfg, session_id=sid, llm=llm, models=("m", "m"))
    out = await engine.advance(state, request, completed_turns=0)
    t2 = time.perf_counter()
    saved = json.dumps(state)
    t3 = time.perf_counter()
    assert out.kind == "tool_calls" and out.tool_calls[0].name == "get_order"
    assert out.tool_calls[0].arguments["order_id"] == f"ORD-{n + 1:04d}"  # n + 1 recorded calls replayed
    return t3 - t0, {"decode": t1 - t0, "advance": t2 - t1, "encode": t3 - t2, "state_bytes": len(saved)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    cfg, sid, llm, state_json, body_json = build_session(args.calls)
    planned = llm.calls
    times, parts = [], {"decode": [], "advance": [], "encode": []}
    size = 0
    for _ in range(20):  # warm-up (policy compile cache, parsed-program cache)
        asyncio.run(resume_once(cfg, sid, llm, state_json, body_json, args.calls))
    loop = asyncio.new_event_loop()
    for _ in range(args.rounds):
        total, p = loop.run_until_complete(resume_once(cfg, sid, llm, state_json, body_json, args.calls))
        times.append(total)
        for k in parts:
            parts[k].append(p[k])
        size = p["state_bytes"]
    loop.close()
    assert llm.calls == planned, "a resume called the LLM"
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    p95 = sorted(times)[int(len(times) * 0.95) - 1] * 1000
    print(
        f"resume with {args.calls} earlier tool calls: p50 {ms(times):.2f} ms, p95 {p95:.2f} ms "
        f"(target < 20 ms) over {args.rounds} rounds"
    )
    print(
        f"  decode state+body {ms(parts['decode']):.2f} ms | advance {ms(parts['advance']):.2f} ms | "
        f"encode state {ms(parts['encode']):.2f} ms | stored state {size} bytes | "
        f"request body {len(body_json)} bytes"
    )


if __name__ == "__main__":
    main()
