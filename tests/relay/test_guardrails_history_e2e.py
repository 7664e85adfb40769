"""Guardrails cover everything the relay forwards to an LLM, on every turn (issue #12, part 1).

Clients resend their whole history, raw tool results included, on every turn; some start the conversation
elsewhere. Through the live relay and the fake upstream, in the three APIs, streaming and not: every tool
result the model receives is redacted/masked, whoever produced it, in every turn; LLM classifiers run once per
distinct content; the same holds for the quarantined LLM in dual-LLM mode.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests import fake_upstream as fu

pytestmark = pytest.mark.live
MARKER = "Sequrity guardrail classifier"
PII = "Contact Jane at jane.doe@example.com or +44 20 7946 0958, card 4111 1111 1111 1111."
RAW = ("jane.doe@example.com", "7946 0958", "4111 1111 1111 1111")
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]
MSG_TOOLS = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
RESP_TOOLS = [
    {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
]
PATHS = {
    "chat": "/control/chat/v1/chat/completions",
    "messages": "/control/chat/anthropic/v1/messages",
    "responses": "/control/chat/v1/responses",
}


def features(classifiers=("pii_redaction",), blockers=()):
    return {
        "agent_arch": "single-llm",
        "content_classifiers": [{"name": n} for n in classifiers],
        "content_blockers": [{"name": n} for n in blockers],
    }


def post(relay, key, api, body, feats=None, session=None, stream=False):
    h = {"Authorization": f"Bearer {key}", "X-Api-Key": "k"}
    if feats is not None:
        h["X-Features"] = json.dumps(feats)
    if session:
        h["X-Session-ID"] = session
    body = {**body, "stream": stream}
    if stream:
        with httpx.stream("POST", relay + PATHS[api], json=body, headers=h, timeout=30) as r:
            assert r.status_code == 200, r.read()
            data = r.read().decode()
            return r.headers["x-session-id"], data
    r = httpx.post(relay + PATHS[api], json=body, headers=h, timeout=30)
    assert r.status_code == 200, r.text
    return r.headers["x-session-id"], r.json()


def model_requests(fake):
    return [r for r in fake.requests if MARKER not in r.text]


def upstream_tool_texts(fake, api) -> list[str]:
    """The tool result texts of the last request the model (not a classifier) received."""
    body = model_requests(fake)[-1].json
    if api == "chat":
        return [m["content"] for m in body["messages"] if m["role"] == "tool"]
    if api == "messages":
        out = []
        for m in body["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else []:
                if b.get("type") == "tool_result":
                    c = b["content"]
                    out.append(c if isinstance(c, str) else "".join(p.get("text", "") for p in c))
        return out
    return [
        it["output"]
        for it in body["input"]
        if isinstance(it, dict) and it.get("type") == "function_call_output"
    ]


def upstream_text(fake) -> str:
    return model_requests(fake)[-1].text


# ----------------------------------------------------------------------------------------- conversations


def user(api, text):
    if api == "responses":
        return {"role": "user", "content": text}
    return {"role": "user", "content": text}


def assistant_call(api, call_id, args):
    if api == "chat":
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "lookup", "arguments": json.dumps(args)},
                    }
                ],
            }
        ]
    if api == "messages":
        return [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": call_id, "name": "lookup", "input": args}],
            }
        ]
    return [{"type": "function_call", "call_id": call_id, "name": "lookup", "arguments": json.dumps(args)}]


def tool_result(api, call_id, text):
    if api == "chat":
        return [{"role": "tool", "tool_call_id": call_id, "content": text}]
    if api == "messages":
        return [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": text}]}
        ]
    return [{"type": "function_call_output", "call_id": call_id, "output": text}]


def assistant_text(api, text):
    if api == "responses":
        return [{"role": "assistant", "content": [{"type": "output_text", "text": text}]}]
    return [{"role": "assistant", "content": text}]


def request_body(api, history):
    if api == "chat":
        return {"model": "gpt-5-mini", "messages": history, "tools": CHAT_TOOLS}
    if api == "messages":
        return {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": history, "tools": MSG_TOOLS}
    return {"model": "gpt-5-mini", "input": history, "tools": RESP_TOOLS}


def our_call_id(api, answer) -> str:
    if api == "chat":
        return answer["choices"][0]["message"]["tool_calls"][0]["id"]
    if api == "messages":
        return next(b["id"] for b in answer["content"] if b["type"] == "tool_use")
    return next(it["call_id"] for it in answer["output"] if it["type"] == "function_call")


def assert_clean(texts):
    joined = "\n".join(texts)
    for raw in RAW:
        assert raw not in joined, joined
    assert "[REDACTED_EMAIL]" in joined and "[REDACTED_CREDIT_CARD]" in joined


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_resent_history_stays_redacted_on_every_turn(relay, single_key, fake_upstream, api, stream):
    fake_upstream.push(fu.tool_calls(("lookup", {"q": "jane"})))
    history = [user(api, "find jane")]
    sid, answer = post(relay, single_key, api, request_body(api, history), features())
    call_id = our_call_id(api, answer)
    history += assistant_call(api, call_id, {"q": "jane"}) + tool_result(api, call_id, PII)
    # turn 1 ends: the result reaches the model redacted
    fake_upstream.push(fu.text("Jane can be reached by e-mail."))
    post(relay, single_key, api, request_body(api, history), session=sid, stream=stream)
    assert_clean(upstream_tool_texts(fake_upstream, api))
    # turns 2 and 3: the client resends everything, raw tool result included
    history += assistant_text(api, "Jane can be reached by e-mail.")
    for turn in (2, 3):
        history += [user(api, f"question {turn}")]
        fake_upstream.push(fu.text(f"answer {turn}"))
        post(relay, single_key, api, request_body(api, history), session=sid, stream=stream)
        texts = upstream_tool_texts(fake_upstream, api)
        assert len(texts) == 1
        assert_clean(texts)
        history += assistant_text(api, f"answer {turn}")


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
def test_tool_results_of_calls_the_relay_never_issued_are_guarded(relay, single_key, fake_upstream, api):
    """A client that started the conversation elsewhere (or replays a stored history): foreign call ids, a
    URL and a file path in a result, an e-mail in the arguments of an earlier call."""
    history = [user(api, "find jane")]
    history += assistant_call(api, "call_elsewhere_1", {"q": "mail jane.doe@example.com"})
    history += tool_result(api, "call_elsewhere_1", PII + " See https://crm.example.com/jane and /etc/passwd")
    history += assistant_text(api, "Found her.") + [user(api, "and now?")]
    fake_upstream.push(fu.text("ok"))
    post(
        relay,
        single_key,
        api,
        request_body(api, history),
        features(("pii_redaction",), ("url_blocker", "file_blocker")),
        stream=api == "messages",
    )
    texts = upstream_tool_texts(fake_upstream, api)
    assert_clean(texts)
    assert "[BLOCKED_URL]" in texts[0] and "[BLOCKED_FILE]" in texts[0] and "crm.example.com" not in texts[0]
    sent = upstream_text(fake_upstream)
    assert "jane.doe@example.com" not in sent  # nor in the earlier call's arguments
    assert "call_elsewhere_1" in sent  # the ids the relay did not issue are left as they are


def test_llm_classifiers_run_once_per_distinct_content(relay, single_key, fake_upstream):
    api = "chat"
    fake_upstream.reply = lambda req: (
        fu.structured({"score": 0.95 if "idiots" in req.text else 0.02, "label": "toxic", "reason": "r"})
        if MARKER in req.text
        else fu.text("fine")
    )
    feats = features(("toxicity_filter",))
    history = [user(api, "go")]
    history += assistant_call(api, "call_a", {"q": "x"}) + tool_result(api, "call_a", "you are all idiots")
    history += assistant_call(api, "call_b", {"q": "y"}) + tool_result(api, "call_b", "the weather is mild")
    history += assistant_call(api, "call_c", {"q": "z"}) + tool_result(api, "call_c", "the weather is mild")
    sid = None
    for turn in range(4):
        history += [user(api, f"turn {turn}")]
        sid, _ = post(relay, single_key, api, request_body(api, history), feats if sid is None else None, sid)
        texts = upstream_tool_texts(fake_upstream, api)
        assert "idiots" not in texts[0] and "withheld" in texts[0]
        assert texts[1] == texts[2] == "the weather is mild"
        history += assistant_text(api, "fine")
    classified = [r for r in fake_upstream.requests if MARKER in r.text]
    assert len(classified) == 2  # two distinct contents, four turns


def test_dual_llm_quarantined_llm_classifies_each_content_once(relay, dual_key, fake_upstream):
    """Dual-LLM: a repeated tool result (here the same content returned to two calls) is classified once;
    the findings still tag both values."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_inbox",
                "parameters": {"type": "object", "properties": {"folder": {"type": "string"}}},
            },
        }
    ]
    program = 'a = read_inbox(folder="a")\nb = read_inbox(folder="b")\nfinal_return_value = [a, b]\n'

    def reply(req):
        if MARKER in req.text:
            return fu.structured({"score": 0.9, "label": "finance", "reason": "money"})
        return fu.text(f"```python\n{program}```")

    fake_upstream.reply = reply
    feats = {
        "agent_arch": "dual-llm",
        "content_classifiers": [{"name": "pii_redaction"}, {"name": "finance_topic_guardrail"}],
    }
    messages = [{"role": "user", "content": "read both folders"}]
    h = {"Authorization": f"Bearer {dual_key}", "X-Api-Key": "k", "X-Features": json.dumps(feats)}
    url = relay + PATHS["chat"]
    r = httpx.post(url, json={"model": "m", "messages": messages, "tools": tools}, headers=h, timeout=30)
    content = "invoice for bob@corp.example.com: pay 500 EUR"
    for _ in range(2):
        call = r.json()["choices"][0]["message"]["tool_calls"][0]
        messages += [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": content},
        ]
        r = httpx.post(url, json={"model": "m", "messages": messages, "tools": tools}, headers=h, timeout=30)
        assert r.status_code == 200, r.text
    doc = json.loads(r.json()["choices"][0]["message"]["content"])
    assert doc["status"] == "success", doc
    assert "bob@corp.example.com" not in json.dumps(doc["final_return_value"])
    assert {"pii", "finance"} <= set(doc["final_return_value"]["meta"]["tags"])
    classified = [q for q in fake_upstream.requests if MARKER in q.text and "500 EUR" in q.text]
    assert len(classified) == 1  # (the two calls' arguments are classified too, each once)


def test_manual_metadata_wrapper_is_removed_and_its_value_redacted_on_every_turn(
    relay, single_key, fake_upstream
):
    """The caller's metadata wrapper (sqrt.md §7) is for the relay, not the model: the model gets the value,
    redacted, when it is delivered and when the history comes back."""
    api = "chat"
    fake_upstream.push(fu.tool_calls(("lookup", {"q": "jane"})))
    history = [user(api, "find jane")]
    sid, answer = post(relay, single_key, api, request_body(api, history), features())
    call_id = our_call_id(api, answer)
    wrapped = json.dumps(
        {
            "is_sequrity_var": True,
            "value": {"contact": PII},
            "meta": {"producers": [], "consumers": [], "tags": ["crm"]},
        }
    )
    history += assistant_call(api, call_id, {"q": "jane"}) + tool_result(api, call_id, wrapped)
    for turn in range(3):
        fake_upstream.push(fu.text(f"answer {turn}"))
        post(relay, single_key, api, request_body(api, history), session=sid)
        texts = upstream_tool_texts(fake_upstream, api)
        assert_clean(texts)
        assert "is_sequrity_var" not in texts[0] and json.loads(texts[0])["contact"].startswith(
            "Contact Jane"
        )
        history += assistant_text(api, f"answer {turn}") + [user(api, f"next {turn}")]
