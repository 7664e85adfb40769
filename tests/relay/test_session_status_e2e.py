"""Every session ends in a visible state (issue #12, part 3), end to end: uvicorn, the fake upstream, the
official client, then the dashboard's session list and inspector as the key's owner sees them."""

import json
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from sequrity import SequrityClient
from sequrity.control import FeaturesHeader, FineGrainedConfigHeader, SecurityPolicyHeader

from apikeys.models import ApiKey
from sessions.models import RelaySession, SessionEvent, UsageEvent
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key

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
DUAL = FeaturesHeader.dual_llm()


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None


@pytest.fixture
def owner(transactional_db):
    return UserFactory()


def key_of(owner, arch="single-llm", content_logging="metadata"):
    key, secret = make_key(owner, arch=arch)
    ApiKey.objects.filter(pk=key.pk).update(content_logging=content_logging)
    return key, secret


def headers(secret, byok=True, **extra):
    out = {"Authorization": f"Bearer {secret}", **extra}
    if byok:
        out["X-Api-Key"] = "k"
    return out


def session_with(key, **filters):
    """The key's (only, or latest) logged session once its state row arrived, with filters applied."""

    def find():
        qs = RelaySession.objects.filter(api_key=key, state_at__isnull=False, **filters).order_by(
            "-created_at"
        )
        return qs.first()

    return wait_for(find)


def inspector(client, owner, session) -> str:
    client.force_login(owner)
    r = client.get(f"/dashboard/sessions/{session.pk}/")
    assert r.status_code == 200
    return r.content.decode()


def test_403_without_provider_credential_marks_the_session_error(relay, owner, client, fake_upstream):
    key, secret = key_of(owner)
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=headers(secret, byok=False)
    )
    assert r.status_code == 403 and r.headers["x-request-id"]
    s = session_with(key)
    assert s is not None, "a failed request leaves a logged session"
    assert (s.status, s.arch, s.closed, s.turns) == ("error", "single-llm", True, 0)
    assert "No server-managed credential" in s.status_reason
    assert wait_for(lambda: SessionEvent.objects.filter(session=s, type="error").exists())
    step = SessionEvent.objects.get(session=s, type="error")
    assert step.data["status"] == 403 and step.data["kind"] == "no_credential"
    html = inspector(client, owner, s)
    assert 'data-status="error"' in html and "No server-managed credential" in html
    assert 'data-step="error"' in html and "a moment after each request" not in html
    assert "single-llm" in html or "Single LLM" in html  # the architecture badge is not blank
    # The failed session is not kept: the same id continues nothing.
    # (The usage row may come in a later batch of the log flusher than the session's steps.)
    assert wait_for(lambda: UsageEvent.objects.filter(session_id=s.pk, status_code=403).exists())


@pytest.mark.parametrize(
    "reply,status,kind",
    [
        (fu.error(500, "upstream exploded"), 502, "upstream_5xx"),
        (fu.error(429, "slow down", retry_after="7"), 429, "rate_limited"),
        (fu.text("too late", delay=4.0), 504, "timeout"),  # the relay's upstream timeout is 3 s in the tests
    ],
    ids=["500", "429", "timeout"],
)
def test_upstream_failures_mark_the_session_error(relay, owner, client, fake_upstream, reply, status, kind):
    key, secret = key_of(owner)
    fake_upstream.push(reply, reply, reply)
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=headers(secret), timeout=20
    )
    assert r.status_code == status
    assert r.json()["error"]["message"]
    s = session_with(key)
    assert (s.status, s.closed) == ("error", True) and s.status_reason
    assert wait_for(lambda: SessionEvent.objects.filter(session=s, type="error", data__kind=kind).exists())
    assert s.status_reason in inspector(client, owner, s)


def test_a_failure_in_a_live_session_marks_it_error_until_it_recovers(relay, owner, client, fake_upstream):
    key, secret = key_of(owner)
    body = {**BODY, "tools": TOOLS}
    fake_upstream.push(fu.tool_calls(("lookup", {"q": "x"})))
    r1 = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=body, headers=headers(secret))
    sid = r1.headers["x-session-id"]
    call = r1.json()["choices"][0]["message"]["tool_calls"][0]
    messages = BODY["messages"] + [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "found"},
    ]
    fake_upstream.push(fu.error(500, "boom"), fu.error(500, "boom"), fu.error(500, "boom"))
    r2 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json={**body, "messages": messages},
        headers=headers(secret, **{"X-Session-ID": sid}),
    )
    assert r2.status_code == 502
    s = session_with(key, pk=sid, status="error")
    assert s is not None and not s.closed and "boom" in s.status_reason
    fake_upstream.reset()
    fake_upstream.push(fu.text("the answer"))
    r3 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json={**body, "messages": messages},
        headers=headers(secret, **{"X-Session-ID": sid}),
    )
    assert r3.status_code == 200 and r3.headers["x-session-id"] == sid
    s = session_with(key, pk=sid, status="success")
    assert s is not None and s.status_reason == "" and s.turns == 1


def test_open_sessions_nobody_continues_show_as_idle(relay, owner, client, fake_upstream):
    key, secret = key_of(owner)
    fake_upstream.push(fu.tool_calls(("lookup", {"q": "x"})))
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions", json={**BODY, "tools": TOOLS}, headers=headers(secret)
    )
    s = session_with(key, pk=r.headers["x-session-id"])
    assert s.status == "open" and s.display_status == "open"
    RelaySession.objects.filter(pk=s.pk).update(last_activity=timezone.now() - timedelta(hours=2))
    client.force_login(owner)
    page = client.get("/dashboard/sessions/?status=idle").content.decode()
    assert str(s.pk)[:8] in page and 'data-status="idle"' in page
    assert str(s.pk)[:8] not in client.get("/dashboard/sessions/?status=open").content.decode()
    html = inspector(client, owner, s)
    assert 'id="session-status" data-status="idle"' in html and ">Idle<" in html


def _dual_prime(relay, secret, fake_upstream):
    client = SequrityClient(api_key=secret, base_url=relay)
    fake_upstream.push(
        fu.text("```python\nfinal_return_value = {'prime': 97, 'note': 'largest below 100'}\n```")
    )
    r = client.control.chat.create(
        messages=[{"role": "user", "content": "Largest prime below 100?"}],
        model="gpt-5-mini",
        llm_api_key="k",
        features=DUAL,
    )
    return r.session_id


def test_dual_inspector_shows_the_final_value(relay, owner, client, fake_upstream):
    key, secret = key_of(owner, arch="dual-llm")
    sid = _dual_prime(relay, secret, fake_upstream)
    s = session_with(key, pk=sid, status="success")
    assert wait_for(lambda: SessionEvent.objects.filter(session=s, type="final").exists())
    html = inspector(client, owner, s)
    final = html[html.index('data-step="final"') :]
    value = final[final.index("data-final-value") :][:600]
    assert "97" in value and "largest below 100" in value and "—" not in value.split("</td>")[0]


def test_dual_inspector_says_when_the_key_withholds_the_final_value(relay, owner, client, fake_upstream):
    key, secret = key_of(owner, arch="dual-llm", content_logging="none")
    sid = _dual_prime(relay, secret, fake_upstream)
    s = session_with(key, pk=sid, status="success")
    assert wait_for(lambda: SessionEvent.objects.filter(session=s, type="final").exists())
    final = SessionEvent.objects.get(session=s, type="final")
    assert "final_return_value" not in final.data and final.data["withheld"] == "none"
    html = inspector(client, owner, s)
    value = html[html.index("data-final-value") :][:400]
    assert "Not logged" in value and "Nothing" in value and "97" not in value


# --- one content-logging setting, the same in both architectures ------------------------------------------

DOC_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    },
]
SECRET_RESULT = "the vault code is 4242"


def _single_tool_round(relay, secret, fake_upstream):
    body = {**BODY, "tools": TOOLS}
    fake_upstream.push(fu.tool_calls(("lookup", {"q": "vault"})))
    r1 = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=body, headers=headers(secret))
    call = r1.json()["choices"][0]["message"]["tool_calls"][0]
    messages = BODY["messages"] + [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": SECRET_RESULT},
    ]
    fake_upstream.push(fu.text("done"))
    r2 = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json={**body, "messages": messages},
        headers=headers(secret),
    )
    assert r2.status_code == 200
    return r1.headers["x-session-id"]


def _dual_tool_round(relay, secret, fake_upstream):
    client = SequrityClient(api_key=secret, base_url=relay)
    fake_upstream.push(fu.text('```python\nr = lookup(q="vault")\nfinal_return_value = "looked up"\n```'))
    messages = [{"role": "user", "content": "look up the vault"}]
    kwargs = dict(
        model="gpt-5-mini",
        llm_api_key="k",
        tools=DOC_TOOLS,
        features=DUAL,
        security_policy=SecurityPolicyHeader.dual_llm(),
        fine_grained_config=FineGrainedConfigHeader.dual_llm(),
    )
    r = client.control.chat.create(messages=messages, **kwargs)
    call = r.choices[0].message.tool_calls[0]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": SECRET_RESULT},
    ]
    r2 = client.control.chat.create(messages=messages, model="gpt-5-mini", llm_api_key="k", tools=DOC_TOOLS)
    assert json.loads(r2.choices[0].message.content)["status"] == "success"
    return r.session_id


@pytest.mark.parametrize("level", ["metadata", "full", "none"])
def test_tool_content_logging_is_one_setting_for_both_architectures(
    relay, owner, client, fake_upstream, level
):
    for arch, run in (("single-llm", _single_tool_round), ("dual-llm", _dual_tool_round)):
        key, secret = key_of(owner, arch=arch, content_logging=level)
        sid = run(relay, secret, fake_upstream)
        s = session_with(key, pk=sid, status="success")
        assert s is not None, arch
        result = wait_for(lambda s=s: SessionEvent.objects.filter(session=s, type="tool_result").first())
        call = SessionEvent.objects.filter(session=s, type="tool_call").first()
        assert result is not None and call is not None, arch
        html = inspector(client, owner, s)
        if level == "full":
            assert SECRET_RESULT in result.data["content"], arch
            assert SECRET_RESULT in html, arch
        else:
            assert "content" not in result.data and result.data["withheld"] == level, arch
            assert SECRET_RESULT not in html, arch
            assert f'data-withheld="{level}"' in html, arch
        if level == "metadata":
            assert "meta" in result.data and "Metadata only" in html, arch
            assert call.data["args"]["q"]["value"] == "vault", arch
        if level == "none":
            assert "meta" not in result.data and call.data["args"]["q"] == {"withheld": True}, arch
            assert "vault" not in html, arch
