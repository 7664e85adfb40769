"""Single-LLM relay end to end: a live uvicorn server, the fake upstream, the official client and SDKs."""

import json

import httpx
import pytest
from sequrity import SequrityClient
from sequrity.control import FeaturesHeader, SecurityPolicyHeader

from apikeys import services
from tests import fake_upstream as fu

pytestmark = pytest.mark.live
SINGLE = FeaturesHeader.single_llm()


def sequrity(relay, key):
    return SequrityClient(api_key=key, base_url=relay)


def test_openai_sdk_chat_byok(relay, single_key, fake_upstream):
    import openai

    client = openai.OpenAI(
        api_key=single_key,
        base_url=f"{relay}/control/chat/openrouter/v1",
        default_headers={"X-Api-Key": "sk-or-byok"},
    )
    fake_upstream.push(fu.text("Hello from upstream"))
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from upstream"
    assert raw.headers["x-session-id"]
    sent = fake_upstream.requests[-1]
    assert sent.api_key == "sk-or-byok"
    assert sent.json["model"] == "openai/gpt-5-mini"


def test_official_client_chat_messages_responses(relay, single_key, fake_upstream):
    client = sequrity(relay, single_key)
    fake_upstream.push(fu.text("chat answer"))
    r = client.control.chat.create(
        messages=[{"role": "user", "content": "hi"}],
        model="gpt-5-mini",
        llm_api_key="sk-byok",
        features=SINGLE,
        provider="openai",
    )
    assert r.choices[0].message.content == "chat answer"
    assert r.session_id and fake_upstream.requests[-1].provider == "openai"

    fake_upstream.push(fu.text("claude answer"))
    m = client.control.messages.create(
        messages=[{"role": "user", "content": "hi"}],
        model="claude-sonnet-4-6",
        max_tokens=100,
        llm_api_key="sk-ant",
        provider="anthropic",
        features=SINGLE,
    )
    assert m.content[0].text == "claude answer" and m.session_id
    assert fake_upstream.requests[-1].headers["x-api-key"] == "sk-ant"

    fake_upstream.push(fu.text("responses answer"))
    resp = client.control.responses.create(
        model="gpt-5-mini", input="hi", llm_api_key="sk-oai", provider="openai", features=SINGLE
    )
    assert "responses answer" in resp.output_text


def test_official_client_streaming(relay, single_key, fake_upstream):
    client = sequrity(relay, single_key)
    fake_upstream.push(fu.text("streamed words arrive"))
    stream = client.control.chat.create(
        messages=[{"role": "user", "content": "hi"}],
        model="gpt-5-mini",
        llm_api_key="sk",
        features=SINGLE,
        stream=True,
    )
    chunks = list(stream)
    assert stream.session_id
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed words arrive"
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)

    fake_upstream.push(fu.text("claude streams"))
    events = list(
        client.control.messages.create(
            messages=[{"role": "user", "content": "hi"}],
            model="claude",
            max_tokens=50,
            llm_api_key="k",
            provider="anthropic",
            features=SINGLE,
            stream=True,
        )
    )
    assert events[0].type == "message_start" and events[-1].type == "message_stop"

    fake_upstream.push(fu.text("responses stream"))
    events = list(
        client.control.responses.create(
            model="gpt-5-mini", input="hi", llm_api_key="k", provider="openai", features=SINGLE, stream=True
        )
    )
    types = [e.type for e in events]
    assert (
        "response.created" in types
        and "response.output_text.delta" in types
        and "response.completed" in types
    )


def test_anthropic_sdk(relay, single_key, fake_upstream):
    import anthropic

    client = anthropic.Anthropic(
        api_key="sk-ant-byok",
        base_url=f"{relay}/control/chat/anthropic",
        default_headers={"Authorization": f"Bearer {single_key}", "X-Api-Key": "sk-ant-byok"},
    )
    fake_upstream.push(fu.text("hi from claude"))
    msg = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    assert msg.content[0].text == "hi from claude"


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
POLICY = 'tool "send_email" { hard deny when to.value in {str matching r".*@evil\\.com"}; }'


def test_tool_calls_policy_and_id_mapping(relay, single_key, fake_upstream):
    client = sequrity(relay, single_key)
    policy = SecurityPolicyHeader.single_llm(codes=POLICY)
    fake_upstream.push(fu.tool_calls(("send_email", {"to": "bob@corp.com", "body": "hi"})))
    messages = [{"role": "user", "content": "mail bob"}]
    r = client.control.chat.create(
        messages=messages,
        model="gpt-5-mini",
        llm_api_key="k",
        tools=TOOLS,
        features=SINGLE,
        security_policy=policy,
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("tc-") and call.id[3:39] == r.session_id
    upstream_id = fake_upstream.requests[-1]  # the request; the upstream id was generated by the fake
    messages += [
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sent"},
    ]
    fake_upstream.push(fu.text("done"))
    r2 = client.control.chat.create(
        messages=messages, model="gpt-5-mini", llm_api_key="k", tools=TOOLS, session_id=None
    )
    assert r2.choices[0].message.content == "done" and r2.session_id == r.session_id
    sent = fake_upstream.requests[-1].json["messages"]
    assert not any(m.get("tool_call_id", "").startswith("tc-") for m in sent)
    assert upstream_id is not None

    # A call to an untrusted address is denied and never reaches the client.
    fake_upstream.push(fu.tool_calls(("send_email", {"to": "x@evil.com", "body": "secrets"})))
    r3 = client.control.chat.create(
        messages=[{"role": "user", "content": "mail x"}],
        model="gpt-5-mini",
        llm_api_key="k",
        tools=TOOLS,
        features=SINGLE,
        security_policy=policy,
        session_id=None,
    )
    assert not r3.choices[0].message.tool_calls
    assert r3.choices[0].finish_reason == "stop"
    assert (
        "Tool call to 'send_email' is denied by argument checking policies." in r3.choices[0].message.content
    )


def post(relay, key, path="/control/chat/v1/chat/completions", body=None, headers=None, **kw):
    h = {"Authorization": f"Bearer {key}", "X-Api-Key": "k", **(headers or {})}
    return httpx.post(relay + path, json=body, headers=h, timeout=20, **kw)


BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_bad_requests(relay, single_key):
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {single_key}"},
    )
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = post(relay, single_key, body={"messages": []})
    assert r.status_code in (400, 422) and "model" in r.json()["detail"]
    r = post(relay, single_key, body={"model": "m"})
    assert r.status_code in (400, 422) and "messages" in r.json()["detail"]
    r = post(relay, single_key, body=BODY, headers={"X-Config": '{"fsm": {"max_n_turns": 0}}'})
    assert (
        r.status_code == 400 and "X-Config" in r.json()["detail"] and "fsm.max_n_turns" in r.json()["detail"]
    )
    r = post(relay, single_key, body=BODY, headers={"X-Features": "{oops"})
    assert r.status_code == 400 and "X-Features" in r.json()["detail"]
    r = post(
        relay,
        single_key,
        body=BODY,
        headers={"X-Policy": json.dumps({"codes": {"code": 'tool "x" {\n  must allow }'}})},
    )
    assert r.status_code == 400 and "line 2" in r.json()["detail"]
    r = post(relay, single_key, body={**BODY, "model": "a,b,c"})
    assert r.status_code == 400 and "model" in r.json()["detail"]


@pytest.mark.parametrize(
    "reply,status",
    [
        (fu.error(400, "bad model name"), 400),
        (fu.error(429, "slow down", retry_after="7"), 429),
        (fu.error(503, "overloaded"), 502),
        (fu.drop(), 502),
        (fu.text("late", delay=5), 504),
    ],
)
def test_upstream_errors(relay, single_key, fake_upstream, reply, status):
    fake_upstream.push(reply)
    r = post(relay, single_key, body=BODY)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    if status == 429:
        assert r.headers["retry-after"] == "7"
    if status == 400:
        assert "bad model name" in r.json()["detail"]


def test_server_credentials_and_allow_list(relay, single_key, fake_upstream):
    h = {"Authorization": f"Bearer {single_key}"}
    r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=h)
    assert r.status_code == 403 and "X-Api-Key" in r.json()["detail"]
    services.do_set_provider_credential(
        provider="openrouter", api_key="sk-server", allowed_models=["gpt-5-mini"]
    )
    import time

    from apikeys.models import ProviderCredential

    try:
        time.sleep(5.2)  # the relay caches credentials for a few seconds
        fake_upstream.push(fu.text("ok"))
        r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=h)
        assert r.status_code == 200, r.text
        assert fake_upstream.requests[-1].api_key == "sk-server"
        r = httpx.post(
            f"{relay}/control/chat/v1/chat/completions", json={**BODY, "model": "gpt-9"}, headers=h
        )
        assert r.status_code == 403 and "gpt-9" in r.json()["detail"]
    finally:
        # The live server is shared by later tests: leave it without a server credential, and wait until
        # its credential cache has seen that (not a fixed sleep).
        ProviderCredential.objects.filter(provider="openrouter").delete()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            fake_upstream.push(fu.text("ok"))
            r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=h)
            if r.status_code == 403:
                break
            time.sleep(0.5)
        fake_upstream.reset()


def test_revoked_key_stops_working(relay, transactional_db, fake_upstream):
    from apikeys.models import ApiKey
    from tests.factories import UserFactory, make_key

    key, secret = make_key(UserFactory(), arch="single-llm")
    assert post(relay, secret, body=BODY).status_code == 200
    services.do_revoke_api_key(key=ApiKey.objects.get(pk=key.pk))
    import time

    time.sleep(0.5)
    assert post(relay, secret, body=BODY).status_code == 401


def test_routes_index_health_and_404(relay):
    assert httpx.get(f"{relay}/control/health").json()["status"] == "ok"
    routes = httpx.get(f"{relay}/control/").json()["routes"]
    assert {"method": "POST", "path": "/control/chat/openrouter/v1/chat/completions"} in routes
    assert httpx.get(f"{relay}/control").status_code == 200
    for path in (
        "/control/chat/llama/v1/chat/completions",
        "/control/lang-graph/v1/responses",
        "/control/chat/v2/chat/completions",
        "/control/nope",
    ):
        r = httpx.post(relay + path, json={})
        assert r.status_code == 404 and r.json()["detail"], path
    # A base URL ending in "/" gives a doubled slash; it still routes.
    assert httpx.get(f"{relay}//control/health").status_code == 200


def test_large_policy_header_is_accepted(relay, single_key, fake_upstream):
    """The whole SQRT source travels in X-Policy: headers of 64 KiB and more must pass."""
    rules = "\n".join(
        f'tool "tool_{i}" {{ hard deny when x.value == "{"v" * 40}{i}"; }}' for i in range(1100)
    )
    header = json.dumps({"codes": {"code": rules, "language": "sqrt"}})
    assert len(header) > 64 * 1024
    r = post(relay, single_key, body=BODY, headers={"X-Policy": header})
    assert r.status_code == 200, r.text


def test_config_llm_pllm_applies_to_the_single_llm(relay, single_key, fake_upstream):
    fake_upstream.push(fu.text("ok"))
    cfg = json.dumps({"llm": {"pllm": {"temperature": 0.2, "seed": 7}}})
    r = post(relay, single_key, body={**BODY, "seed": 9}, headers={"X-Config": cfg})
    assert r.status_code == 200
    sent = fake_upstream.requests[-1].json
    assert sent["temperature"] == 0.2 and sent["seed"] == 9  # the request's own field wins


def test_tool_filtering_with_many_tools(relay, single_key, fake_upstream):
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": f"does thing {i}",
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for i in range(12)
    ]
    fake_upstream.push(fu.structured({"tools": ["tool_3", "tool_7"]}), fu.text("ok"))
    r = post(relay, single_key, body={**BODY, "tools": tools})
    assert r.status_code == 200, r.text
    selection, answer = fake_upstream.requests[-2], fake_upstream.requests[-1]
    assert selection.json["response_format"]["type"] == "json_schema"
    assert [t["function"]["name"] for t in answer.json["tools"]] == ["tool_3", "tool_7"]
    # Below the threshold nothing is filtered.
    fake_upstream.push(fu.text("ok"))
    post(relay, single_key, body={**BODY, "tools": tools[:3]})
    assert len(fake_upstream.requests[-1].json["tools"]) == 3
