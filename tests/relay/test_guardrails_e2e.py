"""Guardrails end to end through the live relay; the fake upstream also answers the classification calls."""

import json

import httpx
import pytest

from tests import fake_upstream as fu

pytestmark = pytest.mark.live
MARKER = "Sequrity guardrail classifier"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "fetch",
            "parameters": {
                "type": "object",
                "properties": {"url": {"type": "string"}, "note": {"type": "string"}},
            },
        },
    }
]


def post(relay, key, body, features=None, policy=None):
    h = {"Authorization": f"Bearer {key}", "X-Api-Key": "k"}
    if features is not None:
        h["X-Features"] = json.dumps(features)
    if policy is not None:
        h["X-Policy"] = json.dumps(policy)
    r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=body, headers=h, timeout=30)
    assert r.status_code == 200, r.text
    return r


def single(classifiers=(), blockers=()):
    return {
        "agent_arch": "single-llm",
        "content_classifiers": [{"name": n} for n in classifiers],
        "content_blockers": [{"name": n} for n in blockers],
    }


def one_tool_round(relay, key, fake, features, tool_result, policy=None):
    fake.push(fu.tool_calls(("fetch", {"note": "x"})))
    messages = [{"role": "user", "content": "go"}]
    r1 = post(relay, key, {"model": "m", "messages": messages, "tools": TOOLS}, features, policy)
    call = r1.json()["choices"][0]["message"]["tool_calls"][0]
    messages += [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": tool_result},
    ]
    if fake.reply is None:
        fake.push(fu.text("final"))  # (with a reply function set, it answers; queued replies would go first)
    return post(relay, key, {"model": "m", "messages": messages, "tools": TOOLS})


def upstream_tool_message(fake):
    msgs = [r for r in fake.requests if MARKER not in r.text][-1].json["messages"]
    return [m for m in msgs if m["role"] == "tool"][-1]["content"]


def test_pii_redacted_in_tool_results_before_the_model(relay, single_key, fake_upstream):
    result = "Contact Jane at jane.doe@example.com or +44 20 7946 0958, card 4111 1111 1111 1111."
    one_tool_round(relay, single_key, fake_upstream, single(["pii_redaction"]), result)
    seen = upstream_tool_message(fake_upstream)
    assert "jane.doe@example.com" not in seen and "[REDACTED_EMAIL]" in seen
    assert "[REDACTED_PHONE]" in seen and "[REDACTED_CREDIT_CARD]" in seen


def test_pii_tag_lets_a_policy_deny_the_call(relay, single_key, fake_upstream):
    policy = {"codes": {"code": 'tool "fetch" { hard deny when note.tags overlaps {"pii"}; }'}}
    fake_upstream.push(fu.tool_calls(("fetch", {"note": "mail bob@corp.example.com"})))
    r = post(
        relay,
        single_key,
        {"model": "m", "messages": [{"role": "user", "content": "go"}], "tools": TOOLS},
        single(["pii_redaction"]),
        policy,
    )
    msg = r.json()["choices"][0]["message"]
    assert not msg.get("tool_calls") and "'fetch' is denied" in msg["content"]


def test_url_blocker_blocks_calls_and_masks_results(relay, single_key, fake_upstream):
    fake_upstream.push(fu.tool_calls(("fetch", {"url": "https://evil.example.com/x"})))
    r = post(
        relay,
        single_key,
        {"model": "m", "messages": [{"role": "user", "content": "go"}], "tools": TOOLS},
        single(blockers=["url_blocker"]),
    )
    msg = r.json()["choices"][0]["message"]
    assert not msg.get("tool_calls") and "blocked" in msg["content"] and "url_blocker" in msg["content"]
    one_tool_round(
        relay,
        single_key,
        fake_upstream,
        single(blockers=["url_blocker", "file_blocker"]),
        "see https://docs.example.com/a and /etc/passwd",
    )
    seen = upstream_tool_message(fake_upstream)
    assert "[BLOCKED_URL]" in seen and "[BLOCKED_FILE]" in seen and "docs.example.com" not in seen


def test_toxicity_classifier_withholds_toxic_results(relay, single_key, fake_upstream):
    fake_upstream.reply = lambda req: (
        fu.structured({"score": 0.95 if "idiots" in req.text else 0.01, "label": "toxic", "reason": "abuse"})
        if MARKER in req.text
        else fu.text("final")
    )
    one_tool_round(relay, single_key, fake_upstream, single(["toxicity_filter"]), "you are all idiots")
    seen = upstream_tool_message(fake_upstream)
    assert "idiots" not in seen and "withheld" in seen
    classification = [r for r in fake_upstream.requests if MARKER in r.text]
    assert classification and classification[-1].json.get("response_format", {}).get("type") == "json_schema"


def test_finance_guardrail_flags_without_blocking(relay, single_key, fake_upstream):
    fake_upstream.reply = lambda req: (
        fu.structured({"score": 0.9, "label": "finance", "reason": "stocks"})
        if MARKER in req.text
        else fu.text("final")
    )
    policy = {
        "codes": {
            "code": 'tool "fetch" -> session @tags |= @result.tags;\n'
            'tool "fetch2" { must deny when "finance" in @session.tags; }'
        }
    }
    one_tool_round(
        relay,
        single_key,
        fake_upstream,
        single(["finance_topic_guardrail"]),
        "Buy ACME shares now",
        policy=policy,
    )
    assert "Buy ACME shares now" in upstream_tool_message(fake_upstream)


def test_dual_llm_findings_become_tags(relay, dual_key, fake_upstream):
    tools = [
        {
            "type": "function",
            "function": {"name": "read_inbox", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    fake_upstream.push(fu.text("```python\nfinal_return_value = read_inbox()\n```"))
    features = {"agent_arch": "dual-llm", "content_classifiers": [{"name": "pii_redaction"}]}
    messages = [{"role": "user", "content": "read my inbox"}]
    r1 = post(relay, dual_key, {"model": "m", "messages": messages, "tools": tools}, features)
    call = r1.json()["choices"][0]["message"]["tool_calls"][0]
    messages += [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "mail from bob@corp.example.com"},
    ]
    r2 = post(relay, dual_key, {"model": "m", "messages": messages, "tools": tools})
    doc = json.loads(r2.json()["choices"][0]["message"]["content"])
    assert doc["status"] == "success"
    assert "pii" in doc["final_return_value"]["meta"]["tags"]
    assert "bob@corp.example.com" not in doc["final_return_value"]["value"]
