"""Sessions across requests and processes, streaming cancellation, usage events reaching the database."""

import json
import time

import httpx
import pytest

from sessions.models import UsageEvent
from tests import fake_upstream as fu

pytestmark = pytest.mark.live
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


def headers(key, **extra):
    return {"Authorization": f"Bearer {key}", "X-Api-Key": "k", **extra}


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_usage_event_reaches_database(relay, single_key, fake_upstream):
    fake_upstream.push(fu.text("counted", usage=(11, 7)))
    r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=headers(single_key))
    assert r.status_code == 200
    sid = r.headers["x-session-id"]
    assert wait_for(lambda: UsageEvent.objects.filter(session_id=sid).exists())
    event = UsageEvent.objects.get(session_id=sid)
    assert (event.endpoint_type, event.api, event.provider, event.status_code) == (
        "chat",
        "chat",
        "openrouter",
        200,
    )
    assert event.latency_ms > 0 and (event.prompt_tokens, event.completion_tokens) == (11, 7)


def test_session_continues_by_header_and_isolated_between_keys(relay, single_key, dual_key, fake_upstream):
    cfg = json.dumps({"fsm": {"max_n_turns": 2}})
    r1 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=BODY,
        headers=headers(single_key, **{"X-Config": cfg}),
    )
    sid = r1.headers["x-session-id"]
    r2 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=BODY,
        headers=headers(single_key, **{"X-Session-ID": sid}),
    )
    assert r2.headers["x-session-id"] == sid
    # max_n_turns = 2 reached: the session is closed; the same id now starts a new session.
    r3 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=BODY,
        headers=headers(single_key, **{"X-Session-ID": sid}),
    )
    assert r3.status_code == 200 and r3.headers["x-session-id"] != sid
    # Another key presenting a live id learns nothing: it gets a session of its own.
    live_sid = r3.headers["x-session-id"]
    r4 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=BODY,
        headers=headers(dual_key, **{"X-Session-ID": live_sid, "X-Features": '{"agent_arch": "single-llm"}'}),
    )
    assert r4.status_code == 200 and r4.headers["x-session-id"] != live_sid


def test_session_continues_on_another_worker_process(relay_server, fake_upstream, single_key, artifacts_dir):
    """Two separate uvicorn processes share session state through the database / Redis."""
    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    other = start_uvicorn(_relay_env(fake_upstream), log_dir=artifacts_dir)
    try:
        fake_upstream.push(fu.tool_calls(("lookup", {"q": "x"})))
        body = {**BODY, "tools": TOOLS}
        r1 = httpx.post(
            f"{relay_server.url}/control/chat/v1/chat/completions", json=body, headers=headers(single_key)
        )
        call = r1.json()["choices"][0]["message"]["tool_calls"][0]
        messages = BODY["messages"] + [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "found"},
        ]
        fake_upstream.push(fu.text("answer"))
        r2 = httpx.post(
            f"{other.url}/control/chat/v1/chat/completions",
            json={**body, "messages": messages},
            headers=headers(single_key),
        )
        assert r2.status_code == 200
        assert r2.headers["x-session-id"] == r1.headers["x-session-id"]
        upstream_messages = fake_upstream.requests[-1].json["messages"]
        assert upstream_messages[1]["tool_calls"][0]["id"] == upstream_messages[2]["tool_call_id"]
        assert not upstream_messages[2]["tool_call_id"].startswith("tc-")
    finally:
        other.stop()


def test_client_disconnect_cancels_upstream_stream(relay, single_key, fake_upstream):
    fake_upstream.push(fu.text("never ending", forever=True))
    with httpx.stream(
        "POST",
        f"{relay}/control/chat/v1/chat/completions",
        json={**BODY, "stream": True},
        headers=headers(single_key),
        timeout=10,
    ) as r:
        assert r.status_code == 200 and r.headers["x-session-id"]
        for _ in r.iter_lines():
            break
    assert fake_upstream.wait_for(lambda: fake_upstream.aborted_streams >= 1, timeout=10)


def test_stream_error_before_start_is_http_error(relay, single_key, fake_upstream):
    fake_upstream.push(fu.error(429, "slow", retry_after="3"))
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json={**BODY, "stream": True},
        headers=headers(single_key),
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
