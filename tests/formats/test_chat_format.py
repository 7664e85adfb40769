import json

import pytest
from sequrity.types.chat_completion.request import ChatCompletionRequest

from relay.formats import RequestError, SSEEvent, ToolCall, Usage, chat, error_body
from tests.fake_upstream import Reply, chat_json, chat_stream
from tests.formats.relay_driver import run_relay as _run_relay
from tests.formats.sdk_check import check_chat_json, check_chat_stream

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "book_flight",
            "description": "Book a flight",
            "parameters": {
                "type": "object",
                "properties": {"flight": {"type": "string"}, "date": {"type": "string"}},
                "required": ["flight"],
            },
        },
    }
]


def client_body(**kw):
    """A body exactly as the sequrity client serialises it (nulls dropped, schema_ alias…)."""
    return ChatCompletionRequest.model_validate(kw).model_dump(exclude_none=True)


# ------------------------------------------------------------------------------------------------ decode


def test_decode_client_body_with_tool_history():
    body = client_body(
        model="gpt-5-mini",
        tools=TOOLS,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Book BA263"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "tc-1",
                        "type": "function",
                        "function": {"name": "book_flight", "arguments": '{"flight": "BA263"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "tc-1", "content": "booked"},
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
    )
    assert "content" not in body["messages"][2]  # the client drops the null content
    assert "schema_" in body["response_format"]["json_schema"]
    req = chat.decode_request(body)
    assert req.model == "gpt-5-mini" and not req.stream
    assert [t.role for t in req.turns] == ["system", "user", "assistant", "tool"]
    assert req.tools[0].name == "book_flight" and req.tools[0].parameters["required"] == ["flight"]
    assert req.turns[2].tool_calls == [ToolCall("tc-1", "book_flight", {"flight": "BA263"})]
    assert req.user_query == "Book BA263"
    assert req.system_text == "be brief"
    assert [r.call_id for r in req.trailing_tool_results] == ["tc-1"]
    assert req.response_format["schema"] == {"type": "object"}
    assert req.tool_call_ids() == ["tc-1"] and req.tool_result_ids() == ["tc-1"]


def test_decode_extras_parts_and_legacy_fields():
    req = chat.decode_request(
        {
            "model": "m",
            "n": 1,
            "stream_options": {"include_usage": True},
            "stream": True,
            "parallel_tool_calls": False,
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {
                    "role": "user",
                    "name": "bob",
                    "content": [
                        {"type": "text", "text": "look "},
                        {"type": "image_url", "image_url": {"url": "http://x"}},
                        {"type": "text", "text": "here"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": '{"status": "success"}',
                    "refusal": None,
                    "annotations": [],
                    "function_call": None,
                    "audio": None,
                },
                {"role": "user", "content": "next"},
            ],
        }
    )
    assert req.stream and req.include_usage
    assert req.turns[0].role == "system" and req.turns[1].text == "look here"
    assert req.user_query == "next"
    assert req.trailing_tool_results == []


def test_trailing_results_with_new_user_message_and_parallel_calls():
    req = chat.decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "not json"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "A"}]},
                {"role": "tool", "tool_call_id": "b", "name": "g", "content": "B"},
                {"role": "user", "content": "and now?"},
            ],
        }
    )
    assert [r.content for r in req.trailing_tool_results] == ["A", "B"]
    assert req.turns[1].tool_calls[1].raw_arguments == "not json"
    assert req.turns[1].tool_calls[1].arguments == {}
    assert len(req.turns) == 4  # the two tool messages form one tool turn
    assert req.last_role == "user"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"model": "m"}, "messages: field required"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model: field required"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model: must be a string"),
        ({"model": "m", "messages": "hi"}, "messages: must be an array"),
        ({"model": "m", "messages": []}, "messages: must contain at least one message"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role: field required"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role: must be one of"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content: field required"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id: field required",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": 3}]},
            "messages[0].content: must be a string",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "x", "function": {}}]}]},
            "messages[0].tool_calls[0].function.name: field required",
        ),
        (
            {"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]},
            "stream: must be a boolean",
        ),
        (
            {"model": "m", "temperature": "hot", "messages": [{"role": "user", "content": "x"}]},
            "temperature: must be a number",
        ),
        (
            {
                "model": "m",
                "tools": [{"type": "function", "function": {"name": "bad name"}}],
                "messages": [{"role": "user", "content": "x"}],
            },
            "tools[0].function.name: must match",
        ),
        (
            {
                "model": "m",
                "response_format": {"type": "xml"},
                "messages": [{"role": "user", "content": "x"}],
            },
            "response_format.type: must be one of",
        ),
    ],
)
def test_decode_errors_name_the_field(body, message):
    with pytest.raises(RequestError) as info:
        chat.decode_request(body)
    assert info.value.message.startswith(message), info.value.message
    assert info.value.status == 422


def test_decode_non_object():
    with pytest.raises(RequestError) as info:
        chat.decode_request([1])
    assert info.value.status == 400


def test_upstream_body_fixes_alias_and_asks_for_usage():
    body = client_body(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}},
    )
    body["user_provided_program"] = "x = 1"
    out = chat.upstream_body(body)
    assert out["response_format"]["json_schema"] == {"name": "o", "schema": {"type": "object"}}
    assert out["stream_options"] == {"include_usage": True}
    assert "user_provided_program" not in out
    assert "schema_" in body["response_format"]["json_schema"]  # the client body is not mutated
    assert "stream_options" not in chat.upstream_body({**body, "stream": False})


# ------------------------------------------------------------------------------------------------ encode


def test_text_answer_validates():
    obj = chat.text_answer('{"status": "success"}', model="a,b", id="sess", usage=Usage(10, 5))
    c = check_chat_json(obj)
    assert c.choices[0].finish_reason == "stop" and c.id == "sess" and c.usage.total_tokens == 15
    assert c.model == "a,b"


def test_tool_call_answer_validates():
    calls = [ToolCall("tc-x-1", "book_flight", {"flight": "BA263"}), ToolCall("tc-x-2", "f", {})]
    c = check_chat_json(chat.tool_call_answer(calls, model="m", usage=Usage(1, 2)))
    assert c.choices[0].finish_reason == "tool_calls"
    assert [t.id for t in c.choices[0].message.tool_calls] == ["tc-x-1", "tc-x-2"]
    assert json.loads(c.choices[0].message.tool_calls[0].function.arguments) == {"flight": "BA263"}


def test_stream_text_answer():
    chunks = chat.stream_text_answer("Hello there", model="m", usage=Usage(3, 2))
    dicts, final = check_chat_stream(chunks)
    assert final.choices[0].message.content == "Hello there"
    assert final.choices[0].finish_reason == "stop"
    assert any(d["choices"][0]["delta"].get("content") for d in dicts)
    assert final.usage.total_tokens == 5


def test_stream_tool_call_answer():
    calls = [ToolCall("tc-1", "book_flight", {"flight": "BA263"}), ToolCall("tc-2", "f", {"a": [1]})]
    dicts, final = check_chat_stream(chat.stream_tool_call_answer(calls, model="m"))
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in msg.tool_calls] == [
        ("tc-1", "book_flight", {"flight": "BA263"}),
        ("tc-2", "f", {"a": [1]}),
    ]


def test_error_body_shapes():
    assert error_body(502, "OpenAI upstream error", "chat") == {
        "detail": "OpenAI upstream error",
        "error": {"message": "OpenAI upstream error", "type": "upstream_error", "code": "upstream_error"},
    }
    m = error_body(401, "bad key", "messages")
    assert m == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "bad key"},
        "detail": "bad key",
    }
    import anthropic
    import openai

    # the SDKs read error.message
    assert openai.APIStatusError(
        "x", response=_fake_response(400), body=error_body(400, "m", "responses")
    ).body
    assert (
        anthropic.APIStatusError("x", response=_fake_response(400), body=m).body["error"]["message"]
        == "bad key"
    )


def _fake_response(status):
    import httpx

    return httpx.Response(status, request=httpx.Request("POST", "http://x"))


# ----------------------------------------------------------------------------------------- pass-through


def test_rewrite_ids_json_and_request():
    answer = chat_json(Reply("tool_calls", calls=[("f", {"a": 1}), ("g", {})]), {}, "gpt")
    upstream_ids = [c["id"] for c in answer["choices"][0]["message"]["tool_calls"]]
    calls = chat.extract_tool_calls(answer)
    assert [c.id for c in calls] == upstream_ids and calls[0].arguments == {"a": 1}
    chat.rewrite_answer_ids(answer, lambda uid: "tc-" + uid)
    ours = [c["id"] for c in answer["choices"][0]["message"]["tool_calls"]]
    assert ours == ["tc-" + u for u in upstream_ids]
    check_chat_json(answer)
    mapping = dict(zip(ours, upstream_ids, strict=True))
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": answer["choices"][0]["message"]["tool_calls"]},
            {"role": "tool", "tool_call_id": ours[0], "content": "r"},
            {"role": "tool", "tool_call_id": "unknown", "content": "r"},
        ],
    }
    out = chat.rewrite_ids_in_request(body, mapping)
    assert [c["id"] for c in out["messages"][1]["tool_calls"]] == upstream_ids
    assert out["messages"][2]["tool_call_id"] == upstream_ids[0]
    assert out["messages"][3]["tool_call_id"] == "unknown"
    assert body["messages"][2]["tool_call_id"] == ours[0]  # copy-on-write
    assert out["messages"][0] is body["messages"][0]


def test_filter_tool_calls_json():
    answer = chat_json(Reply("tool_calls", calls=[("f", {}), ("send_email", {"to": "x"})]), {}, "gpt")
    calls = chat.extract_tool_calls(answer)
    chat.filter_tool_calls(
        answer, {calls[0].id}, "Tool call to 'send_email' is denied by argument checking policies."
    )
    msg = answer["choices"][0]["message"]
    assert [c["function"]["name"] for c in msg["tool_calls"]] == ["f"]
    assert "denied by argument checking policies" in msg["content"]
    assert answer["choices"][0]["finish_reason"] == "tool_calls"
    chat.filter_tool_calls(answer, set(), "denied")
    assert "tool_calls" not in answer["choices"][0]["message"]
    assert answer["choices"][0]["finish_reason"] == "stop"
    check_chat_json(answer)
    assert chat.extract_usage(answer) == Usage(12, 7)


def _upstream_events(reply, include_usage=True):
    body = {"stream": True, "stream_options": {"include_usage": include_usage}}
    return [SSEEvent(e, d) for e, d in chat_stream(reply, body, "gpt-5-mini")]


def test_stream_relay_text_passthrough_and_usage():
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u, include_usage=False)
    evs = _upstream_events(Reply("text", text="Hello from upstream", usage=(20, 4)))
    out = _run_relay(relay, evs)
    dicts, final = check_chat_stream(out)
    assert final.choices[0].message.content == "Hello from upstream"
    assert relay.usage == Usage(20, 4) and relay.text == "Hello from upstream"
    assert all(d["choices"] for d in dicts)  # the usage-only chunk is not forwarded
    # with include_usage it is forwarded untouched
    relay = chat.ChatStreamRelay(lambda u: u, include_usage=True)
    dicts, _ = check_chat_stream(_run_relay(relay, evs))
    assert dicts[-1]["choices"] == [] and dicts[-1]["usage"]["total_tokens"] == 24


def test_stream_relay_holds_tool_calls_and_rewrites_ids():
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    evs = _upstream_events(
        Reply("tool_calls", text="Let me", calls=[("f", {"a": 1}), ("g", {"b": "x" * 40})])
    )
    out = []
    held_seen = False
    for ev in evs:
        produced = relay.feed(ev)
        for chunk in produced:
            assert b"tool_calls" not in chunk or relay.tool_calls  # nothing leaks before the decision
        out += produced
        if relay.awaiting_decision:
            held_seen = True
            pending = relay.pending
            assert [c.name for c in pending] == ["f", "g"] and pending[1].arguments == {"b": "x" * 40}
            out += relay.decide([c.id for c in pending])
    out += relay.end()
    assert held_seen
    _, final = check_chat_stream(out)
    calls = final.choices[0].message.tool_calls
    assert [c.id for c in calls] == [c.id for c in relay.tool_calls]
    assert all(c.id.startswith("tc-call_") for c in calls)
    assert relay.id_map == {c.id: c.id[3:] for c in calls}
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.choices[0].message.content == "Let me"


def test_stream_relay_denies_a_call():
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    evs = _upstream_events(Reply("tool_calls", calls=[("read", {}), ("send_email", {"to": "a@b"})]))
    denial = "Tool call to 'send_email' is denied by argument checking policies."
    out = _run_relay(relay, evs, lambda p: ([c.id for c in p if c.name != "send_email"], denial))
    _, final = check_chat_stream(out)
    assert [c.function.name for c in final.choices[0].message.tool_calls] == ["read"]
    assert final.choices[0].message.tool_calls[0].index == 0
    assert denial in final.choices[0].message.content
    assert [c.name for c in relay.denied] == ["send_email"]
    # all denied -> finish stop, no tool calls
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    _, final = check_chat_stream(_run_relay(relay, evs, lambda p: ([], denial)))
    assert final.choices[0].finish_reason == "stop" and not final.choices[0].message.tool_calls
    assert final.choices[0].message.content == denial


def test_stream_relay_finish_and_calls_in_one_chunk_and_no_done():
    """Some providers send a whole call plus finish_reason in one chunk and end without [DONE]."""
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    out = _run_relay(relay, [SSEEvent(None, json.dumps(chunk))])
    _, final = check_chat_stream(out)
    assert final.choices[0].message.tool_calls[0].id == "tc-call_1"
    assert relay.usage == Usage(3, 4)


def test_stream_relay_abort_is_well_formed():
    relay = chat.ChatStreamRelay(lambda u: u)
    evs = _upstream_events(Reply("text", text="partial answer here"))
    out = []
    for ev in evs[:2]:
        out += relay.feed(ev)
    out += relay.abort("OpenAI upstream error (500): boom")
    out += relay.end()  # nothing more after an abort
    _, final = check_chat_stream(out)
    assert final.choices[0].finish_reason == "stop"
    assert "boom" in final.choices[0].message.content
    # abort before anything was received
    _, final = check_chat_stream(chat.ChatStreamRelay(lambda u: u).abort("nothing"))
    assert final.choices[0].message.content == "nothing"


def test_stream_relay_upstream_error_chunk():
    relay = chat.ChatStreamRelay(lambda u: u)
    out = relay.feed(
        SSEEvent(None, json.dumps({"error": {"message": "Provider returned error", "code": 502}}))
    )
    _, final = check_chat_stream(out)
    assert "Provider returned error" in final.choices[0].message.content


def test_sanitize_answer():
    answer = chat_json(Reply("text", text="hi"), {}, "m")
    msg = answer["choices"][0]["message"]
    msg["annotations"] = [
        {"type": "url_citation", "url_citation": {"url": "u"}},
        {
            "type": "url_citation",
            "url_citation": {"start_index": 0, "end_index": 1, "title": "t", "url": "u"},
        },
    ]
    msg["audio"] = {"id": "a"}
    answer["usage"] = {"prompt_tokens": 1, "completion_tokens": None, "total_tokens": 1}
    answer["choices"][0]["finish_reason"] = None
    c = check_chat_json(chat.sanitize_answer(answer))
    assert len(c.choices[0].message.annotations) == 1 and c.choices[0].message.audio is None
    assert c.usage is None and c.choices[0].finish_reason == "stop"


def test_stream_relay_normalises_provider_quirks():
    def chunk(delta, finish=None, **extra):
        return SSEEvent(
            None,
            json.dumps(
                {
                    "id": "gen-1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "g",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    **extra,
                }
            ),
        )

    evs = [
        chunk({"role": "assistant", "content": "hi"}, service_tier="on_demand"),
        chunk(
            {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]}
        ),
        chunk(
            {
                "tool_calls": [
                    {"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"x":'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"function": {"arguments": " 1}"}}]}),
        chunk({}, "error"),
    ]
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    dicts, final = check_chat_stream(_run_relay(relay, evs))
    assert all("service_tier" not in d for d in dicts)
    calls = final.choices[0].message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("tc-c1", "a", {}),
        ("tc-c2", "b", {"x": 1}),
    ]
    # text only, invalid finish reason
    relay = chat.ChatStreamRelay(lambda u: u)
    dicts, final = check_chat_stream(_run_relay(relay, [chunk({"content": "x"}), chunk({}, "eos")]))
    assert final.choices[0].finish_reason == "stop"
    assert chat._normalise_finish("MAX_TOKENS") == "length"
    assert chat._normalise_finish("SAFETY") == "content_filter"


def test_stream_relay_call_without_upstream_id():
    evs = [
        SSEEvent(
            None,
            json.dumps(
                {
                    "id": "g",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "tool_calls",
                            "delta": {
                                "tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]
                            },
                        }
                    ],
                }
            ),
        )
    ]
    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    _, final = check_chat_stream(_run_relay(relay, evs))
    assert final.choices[0].message.tool_calls[0].id.startswith("tc-call_")
