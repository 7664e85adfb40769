"""``ToolGuard.guard_request`` in process (no server): every tool result and tool-call argument object
of a request is guarded, whoever produced it, and what was decided is remembered in the session state."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from relay.formats import FORMATS
from relay.toolcalls.guard import ToolGuard
from relay.toolcalls.policy import wrapped_value_text

EMAIL = "jane.doe@example.com"
RESULT = json.dumps({"contact": f"Jane <{EMAIL}>", "site": "https://crm.example.com/jane", "n": 3})


def features(classifiers=("pii_redaction",), blockers=("url_blocker",)):
    return {
        "classifiers": [{"name": n, "threshold": None, "mode": None} for n in classifiers],
        "blockers": [{"name": n} for n in blockers],
    }


def make_call(api: str, state: dict):
    return SimpleNamespace(
        route=SimpleNamespace(api=api, provider="openai"),
        state=state,
        session_id="00000000-0000-0000-0000-000000000000",
        principal=SimpleNamespace(id=1),
        events=[],
        models=("m", "m"),
        api_key="k",
    )


def guard_of(call, ask=None) -> ToolGuard:
    """The session's guard, asking ``ask(call, request)`` and logging into ``call.events``."""

    async def no_llm(req):
        raise AssertionError("no LLM classifier expected")

    return ToolGuard.for_session(
        call.state["config"]["features"],
        call.state,
        ask=(lambda req: ask(call, req)) if ask is not None else no_llm,
        log=lambda kind, **data: call.events.append({"type": kind, "data": data}),
    )


def chat_body(result=RESULT, args=None):
    args = args if args is not None else {"q": f"mail {EMAIL}"}
    return {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_x",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": json.dumps(args)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_x", "content": result},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "again"},
        ],
    }


def messages_body(result=RESULT):
    return {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_x", "name": "lookup", "input": {"q": f"mail {EMAIL}"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_x",
                        "content": [
                            {"type": "text", "text": result},
                            {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                        ],
                    }
                ],
            },
        ],
    }


def responses_body(result=RESULT):
    return {
        "model": "m",
        "input": [
            {"role": "user", "content": "hi"},
            {
                "type": "function_call",
                "call_id": "call_x",
                "name": "lookup",
                "arguments": json.dumps({"q": EMAIL}),
            },
            {"type": "function_call_output", "call_id": "call_x", "output": result},
        ],
    }


def guard(api, body, state, delivered=None, ask=None):
    call = make_call(api, state)
    guards = guard_of(call, ask)
    out = asyncio.run(guards.guard_request(FORMATS[api], body, delivered))
    return out, call, guards


@pytest.mark.parametrize(
    "api,body", [("chat", chat_body()), ("messages", messages_body()), ("responses", responses_body())]
)
def test_every_result_and_call_argument_is_guarded(api, body):
    state = {"config": {"features": features()}, "seq": 0, "turns": 0}
    before = json.dumps(body)
    out, call, _ = guard(api, body, state)
    sent = json.dumps(out)
    assert EMAIL not in sent and "crm.example.com" not in sent
    assert "[REDACTED_EMAIL]" in sent and "[BLOCKED_URL]" in sent
    assert json.dumps(body) == before  # the client's body is never mutated
    logged = [e["data"] for e in call.events if e["type"] == "guardrail"]
    assert {d["where"] for d in logged} == {"tool_result", "tool_args"} and all(d["history"] for d in logged)
    if api == "messages":  # the image next to the text survives the redaction
        blocks = out["messages"][2]["content"][0]["content"]
        assert [b["type"] for b in blocks] == ["text", "image"]


def test_a_resent_history_is_answered_from_the_memo(monkeypatch):
    state = {"config": {"features": features()}, "seq": 0, "turns": 0}
    first, call, _ = guard("chat", chat_body(), state)
    assert call.events
    scans = []
    from relay.guardrails.engine import Guardrails

    original = Guardrails.scan_text
    monkeypatch.setattr(
        Guardrails, "scan_text", lambda self, *a, **k: scans.append(a) or original(self, *a, **k)
    )
    again, call2, _ = guard("chat", chat_body(), state)
    assert again == first and scans == [] and call2.events == []  # nothing scanned, nothing logged again
    # the memo survives the session store's JSON round trip
    state = json.loads(json.dumps(state))
    third, _, _ = guard("chat", chat_body(), state)
    assert third == first and scans == []


def test_results_already_decided_for_our_calls_are_not_scanned_again():
    state = {"config": {"features": features()}, "seq": 0, "turns": 0}
    out, call, _ = guard("chat", chat_body(), state, delivered={"call_x": "decided text"})
    assert out["messages"][2]["content"] == "decided text"
    assert not [e for e in call.events if e["data"].get("where") == "tool_result"]


def test_llm_classifiers_once_per_content_and_a_withheld_result_stays_withheld():
    state = {"config": {"features": features(("toxicity_filter",), ())}, "seq": 0, "turns": 0}
    asked = []

    async def ask(call, req):
        asked.append(req.name)
        return {"score": 0.97, "label": "toxic", "reason": "insults"}

    for _ in range(3):
        out, _, _ = guard("chat", chat_body("you are all idiots", args={}), state, ask=ask)
        assert out["messages"][2]["content"].startswith("[tool result withheld: toxicity_filter")
    assert asked == ["toxicity_filter"]


def test_no_guardrails_no_change():
    state = {"config": {"features": {"classifiers": [], "blockers": []}}, "seq": 0, "turns": 0}
    body = chat_body()
    out, call, guards = guard("chat", body, state)
    assert out is body and guards.scanner is None and "guard_memo" not in state


def test_manual_wrapper_removed_for_our_call_is_removed_in_later_histories():
    state = {"config": {"features": features()}, "seq": 0, "turns": 0}
    wrapped = json.dumps(
        {
            "is_sequrity_var": True,
            "value": {"contact": EMAIL},
            "meta": {"producers": [], "consumers": [], "tags": ["x"]},
        }
    )
    inner = wrapped_value_text(wrapped)
    assert json.loads(inner) == {"contact": EMAIL} and wrapped_value_text('{"value": 1}') is None
    call = make_call("chat", state)
    guards = guard_of(call)
    scan = asyncio.run(guards.scan_result("tc-1", inner))
    assert scan.text == json.dumps({"contact": "[REDACTED_EMAIL]"})
    guards.remember_delivered(wrapped, scan)
    out, _, _ = guard("chat", chat_body(wrapped, args={}), state)
    assert out["messages"][2]["content"] == scan.text


def test_resent_50_turn_history_is_cheap():
    """The benchmark's conversation (bench/bench_guardrails.py checks the 1 ms target; this bound is loose
    for shared CI machines): resending it costs no scan and no classifier call."""
    import importlib.util
    import statistics
    import time
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_guardrails", Path(__file__).resolve().parents[2] / "bench" / "bench_guardrails.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    state = {
        "config": {"features": features(("pii_redaction",), ("url_blocker", "file_blocker"))},
        "seq": 0,
        "turns": 0,
    }
    body = {"model": "m", "messages": bench.conversation(50)}
    first, _, _ = guard("chat", body, state)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        again, call, _ = guard("chat", body, state)
        times.append(time.perf_counter() - t0)
        assert again == first and call.events == []
    assert statistics.median(times) < 0.02
