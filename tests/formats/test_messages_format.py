import json

import pytest
from sequrity.types.messages.request import AnthropicMessageRequest

from relay.formats import RequestError, SSEEvent, ToolCall, Usage, messages
from tests.fake_upstream import Reply, messages_json, messages_stream
from tests.formats.relay_driver import run_relay as _run
from tests.formats.sdk_check import check_messages_json, check_messages_stream

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
]


def client_body(**kw):
    return AnthropicMessageRequest.model_validate(kw).model_dump(exclude_none=True)


def test_decode_client_body():
    body = client_body(
        model="claude-sonnet-4-5",
        max_tokens=256,
        system="be brief",
        tools=TOOLS[:1],
        messages=[
            {"role": "user", "content": "What's the weather in London?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking"},
                    {"type": "tool_use", "id": "tc-1", "name": "get_weather", "input": {"city": "London"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tc-1", "content": "rainy"},
                    {"type": "text", "text": "Thanks, and Paris?"},
                ],
            },
        ],
    )
    req = messages.decode_request(body)
    assert [t.role for t in req.turns] == ["system", "user", "assistant", "tool", "user"]
    assert req.turns[2].tool_calls == [ToolCall("tc-1", "get_weather", {"city": "London"})]
    assert req.turns[2].text == "Checking"
    assert req.user_query == "Thanks, and Paris?"
    assert [(r.call_id, r.content) for r in req.trailing_tool_results] == [("tc-1", "rainy")]
    assert req.tools[0].parameters["additionalProperties"] is False


def test_decode_server_tools_blocks_and_output_config():
    req = messages.decode_request(
        {
            "model": "c",
            "max_tokens": 10,
            "tools": TOOLS,
            "thinking": {"type": "adaptive"},
            "reasoning_effort": "low",
            "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "metadata": {"user_id": "u"},
            "output_config": {"format": {"type": "json_schema", "schema_": {"type": "object"}}},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "http://x"}},
                        {"type": "text", "text": "describe"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "text": "hmm"}, {"type": "text", "text": "ok"}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "is_error": True,
                            "content": [{"type": "text", "text": "boom"}],
                        }
                    ],
                },
            ],
        }
    )
    assert [t.name for t in req.tools] == ["get_weather"]  # the server tool is not a function tool
    assert req.system_text == "ab"
    assert req.turns[1].text == "describe"
    assert req.response_format == {
        "type": "json_schema",
        "name": "output",
        "schema": {"type": "object"},
        "strict": None,
        "description": None,
    }
    assert req.turns[-1].role == "tool" and req.turns[-1].tool_results[0].is_error
    assert req.trailing_tool_results == []  # the last assistant turn has no tool calls


@pytest.mark.parametrize(
    "body, message",
    [
        ({"model": "c", "messages": [{"role": "user", "content": "x"}]}, "max_tokens: field required"),
        (
            {"model": "c", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]},
            "max_tokens: must be an integer",
        ),
        ({"model": "c", "max_tokens": 5}, "messages: field required"),
        ({"max_tokens": 5, "messages": []}, "model: field required"),
        (
            {"model": "c", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages[0].role: must be one of user, assistant",
        ),
        (
            {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type: field required",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "tool_result"}]}],
            },
            "messages[0].content[0].tool_use_id: field required",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "tools": [{"name": "x"}],
                "messages": [{"role": "user", "content": "x"}],
            },
            "tools[0].input_schema: field required",
        ),
    ],
)
def test_decode_errors(body, message):
    with pytest.raises(RequestError) as info:
        messages.decode_request(body)
    assert info.value.message.startswith(message), info.value.message


def test_upstream_body():
    body = {
        "model": "c",
        "max_tokens": 5,
        "reasoning_effort": "low",
        "context_vars": {},
        "timeout": 3,
        "output_config": {"format": {"type": "json_schema", "schema_": {"type": "object"}}},
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "text": "t", "signature": "sig"},
                    {"type": "thinking", "text": "unsigned"},
                    {"type": "text", "text": "x"},
                ],
            }
        ],
    }
    out = messages.upstream_body(body, stream=True)
    assert set(out) == {"model", "max_tokens", "output_config", "messages", "stream"}
    assert out["output_config"]["format"] == {"type": "json_schema", "schema": {"type": "object"}}
    assert out["messages"][0]["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "sig"},
        {"type": "text", "text": "x"},
    ]
    assert body["messages"][0]["content"][0] == {"type": "thinking", "text": "t", "signature": "sig"}


def test_answers_validate():
    m = check_messages_json(messages.text_answer('{"status": "success"}', model="a,b", usage=Usage(16, 4)))
    assert m.stop_reason == "end_turn" and m.usage.input_tokens == 16 and m.content[0].text.startswith("{")
    calls = [ToolCall("tc-1", "get_weather", {"city": "London"})]
    m = check_messages_json(messages.tool_call_answer(calls, model="m", text="Let me check"))
    assert m.stop_reason == "tool_use"
    assert [b.type for b in m.content] == ["text", "tool_use"] and m.content[1].input == {"city": "London"}


def test_stream_answers():
    dicts, snap = check_messages_stream(messages.stream_text_answer("Hello", model="m", usage=Usage(5, 1)))
    assert [d["type"] for d in dicts] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert (
        snap.content[0].text == "Hello" and snap.stop_reason == "end_turn" and snap.usage.output_tokens == 1
    )
    calls = [ToolCall("tc-1", "get_weather", {"city": "London"}), ToolCall("tc-2", "f", {})]
    dicts, snap = check_messages_stream(messages.stream_tool_call_answer(calls, model="m"))
    assert snap.stop_reason == "tool_use"
    assert [(b.id, b.input) for b in snap.content] == [("tc-1", {"city": "London"}), ("tc-2", {})]


def test_passthrough_json_helpers():
    answer = messages_json(Reply("tool_calls", text="ok", calls=[("a", {"x": 1}), ("b", {})]), {}, "claude")
    calls = messages.extract_tool_calls(answer)
    assert [c.name for c in calls] == ["a", "b"] and calls[0].arguments == {"x": 1}
    assert messages.extract_text(answer) == "ok"
    assert messages.extract_usage(answer) == Usage(12, 7)
    messages.filter_tool_calls(
        answer, {calls[0].id}, "Tool call to 'b' is denied by argument checking policies."
    )
    messages.rewrite_answer_ids(answer, lambda u: "tc-" + u)
    m = check_messages_json(answer)
    assert [b.type for b in m.content] == ["text", "tool_use", "text"]
    assert m.content[1].id == "tc-" + calls[0].id and m.stop_reason == "tool_use"
    messages.filter_tool_calls(answer, set(), None)
    assert check_messages_json(answer).stop_reason == "end_turn"
    body = {
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "tc-A", "name": "a", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tc-A", "content": "r"}]},
            {"role": "user", "content": "plain"},
        ]
    }
    out = messages.rewrite_ids_in_request(body, {"tc-A": "toolu_A"})
    assert out["messages"][0]["content"][0]["id"] == "toolu_A"
    assert out["messages"][1]["content"][0]["tool_use_id"] == "toolu_A"
    assert body["messages"][0]["content"][0]["id"] == "tc-A"


def _events(reply, body=None):
    return [SSEEvent(e, d) for e, d in messages_stream(reply, body or {}, "claude-sonnet-4-5")]


def test_stream_relay_text_drops_ping():
    relay = messages.MessagesStreamRelay(lambda u: "tc-" + u)
    out = _run(relay, _events(Reply("text", text="Hello there friend", usage=(30, 9))))
    dicts, snap = check_messages_stream(out)
    assert all(d["type"] != "ping" for d in dicts)
    assert snap.content[0].text == "Hello there friend"
    assert relay.usage == Usage(30, 9) and relay.text == "Hello there friend"


def test_stream_relay_tool_use_hold_rewrite_and_deny():
    reply = Reply(
        "tool_calls", text="Sure", calls=[("get_weather", {"city": "London"}), ("send", {"to": "x"})]
    )
    evs = _events(reply)
    relay = messages.MessagesStreamRelay(lambda u: "tc-" + u)
    denial = "Tool call to 'send' is denied by argument checking policies."
    out = _run(relay, evs, lambda p: ([c.id for c in p if c.name != "send"], denial))
    dicts, snap = check_messages_stream(out)
    assert [b.type for b in snap.content] == ["text", "tool_use", "text"]
    assert snap.content[1].id.startswith("tc-toolu_") and snap.content[1].input == {"city": "London"}
    assert snap.content[2].text == denial
    assert snap.stop_reason == "tool_use"
    assert [c.name for c in relay.denied] == ["send"] and relay.id_map[snap.content[1].id] == snap.content[
        1
    ].id[3:]
    # everything denied -> end_turn
    relay = messages.MessagesStreamRelay(lambda u: "tc-" + u)
    _, snap = check_messages_stream(_run(relay, evs, lambda p: ([], denial)))
    assert snap.stop_reason == "end_turn" and [b.type for b in snap.content] == ["text", "text"]


def test_stream_relay_reindexes_text_after_held_tool_block():
    def ev(obj):
        return SSEEvent(obj["type"], json.dumps(obj))

    evs = [
        ev(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "c",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 3, "output_tokens": 1},
                },
            }
        ),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ": 1}"},
            }
        ),
        ev({"type": "content_block_stop", "index": 0}),
        ev({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ev({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "after"}}),
        ev({"type": "content_block_stop", "index": 1}),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            }
        ),
        ev({"type": "message_stop"}),
    ]
    relay = messages.MessagesStreamRelay(lambda u: "tc-" + u)
    _, snap = check_messages_stream(_run(relay, evs))
    assert [b.type for b in snap.content] == ["text", "tool_use"]
    assert snap.content[1].input == {"a": 1} and snap.content[1].id == "tc-toolu_1"


def test_stream_relay_error_event_and_abort():
    evs = _events(Reply("text", text="some words that stream"))
    relay = messages.MessagesStreamRelay(lambda u: u)
    out = []
    for e in evs[:4]:
        out += relay.feed(e)
    out += relay.feed(
        SSEEvent(
            "error",
            json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )
    )
    out += relay.end()
    _, snap = check_messages_stream(out)
    assert snap.content[-1].text == "Overloaded" and snap.stop_reason == "end_turn"
    _, snap = check_messages_stream(messages.MessagesStreamRelay(lambda u: u, model="c").abort("down"))
    assert snap.content[0].text == "down"


def test_stream_relay_upstream_ends_early():
    evs = _events(Reply("text", text="cut short"))
    relay = messages.MessagesStreamRelay(lambda u: u)
    out = []
    for e in evs[:4]:
        out += relay.feed(e)
    out += relay.end()
    _, snap = check_messages_stream(out)
    assert snap.content[0].text


def test_sanitize_answer():
    answer = messages_json(Reply("text", text="97"), {}, "claude")
    answer["content"].insert(0, {"type": "thinking", "thinking": "let me think", "signature": "s"})
    answer["content"].append({"type": "web_fetch_tool_result", "tool_use_id": "x", "content": {}})
    answer["stop_reason"] = "model_context_window_exceeded"
    answer["usage"]["service_tier"] = "flex"
    from sequrity.types.messages.response import AnthropicMessageResponse

    m = AnthropicMessageResponse.model_validate(messages.sanitize_answer(answer))
    assert [b.type for b in m.content] == ["thinking", "text"] and m.content[0].text == "let me think"
    assert m.stop_reason == "max_tokens"
    check_messages_json(answer)


def test_stream_relay_drops_unparseable_blocks_and_keeps_thinking():
    def ev(obj):
        return SSEEvent(obj["type"], json.dumps(obj))

    evs = [
        ev(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "c",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 3, "output_tokens": 1, "service_tier": "flex"},
                },
            }
        ),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hmm"},
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig"},
            }
        ),
        ev({"type": "content_block_stop", "index": 0}),
        ev(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "web_fetch_tool_result", "tool_use_id": "s", "content": {}},
            }
        ),
        ev({"type": "content_block_stop", "index": 1}),
        ev({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
        ev({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "answer"}}),
        ev({"type": "content_block_stop", "index": 2}),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "model_context_window_exceeded", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            }
        ),
        ev({"type": "message_stop"}),
    ]
    relay = messages.MessagesStreamRelay(lambda u: u)
    dicts, snap = check_messages_stream(_run(relay, evs))
    assert [b.type for b in snap.content] == ["thinking", "text"]
    assert snap.content[0].thinking == "hmm" and snap.content[1].text == "answer"
    assert snap.stop_reason == "max_tokens" and relay.text == "answer"
    assert "service_tier" not in dicts[0]["message"]["usage"]
