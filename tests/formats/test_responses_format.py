import json

import pytest
from sequrity.types.responses.request import ResponsesRequest

from relay.formats import RequestError, SSEEvent, ToolCall, Usage, chat, responses
from tests.fake_upstream import Reply, chat_json, chat_stream, responses_json, responses_stream
from tests.formats.relay_driver import run_relay as _run
from tests.formats.sdk_check import (
    check_chat_json,
    check_responses_json,
    check_responses_stream,
    responses_stream_text,
)

TOOLS = [
    {
        "type": "function",
        "name": "book_flight",
        "description": "Book",
        "parameters": {
            "type": "object",
            "properties": {"flight": {"type": "string"}},
            "required": ["flight"],
        },
    },
    {"type": "web_search"},
]


def client_body(**kw):
    return ResponsesRequest.model_validate(kw).model_dump(exclude_none=True)


def test_decode_client_items_without_type():
    body = client_body(
        model="gpt-5-mini",
        instructions="be brief",
        tools=TOOLS[:1],
        input=[
            {"role": "user", "content": "Book BA263"},
            {
                "type": "function_call",
                "call_id": "tc-1",
                "name": "book_flight",
                "arguments": '{"flight": "BA263"}',
            },
            {"type": "function_call_output", "call_id": "tc-1", "output": "booked"},
            {"role": "user", "content": [{"type": "input_text", "text": "and BA289"}]},
        ],
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
    )
    assert "type" not in body["input"][0]
    req = responses.decode_request(body)
    assert [t.role for t in req.turns] == ["system", "user", "assistant", "tool", "user"]
    assert req.turns[2].tool_calls == [ToolCall("tc-1", "book_flight", {"flight": "BA263"})]
    assert req.user_query == "and BA289"
    assert [r.content for r in req.trailing_tool_results] == ["booked"]
    assert req.response_format["name"] == "out" and req.response_format["schema"] == {"type": "object"}


def test_decode_continuation_and_string_input():
    req = responses.decode_request(
        {
            "model": "m",
            "previous_response_id": "resp_1",
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "tc-9",
                    "output": [{"type": "input_text", "text": "ok"}],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
        }
    )
    assert req.previous_response_id == "resp_1"
    assert [r.call_id for r in req.trailing_tool_results] == ["tc-9"]
    assert req.user_query is None
    req = responses.decode_request({"model": "m", "input": "What is 2+2?", "stream": True})
    assert req.user_query == "What is 2+2?" and req.stream
    req = responses.decode_request(
        {
            "model": "m",
            "input": [
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "prev", "annotations": []}],
                },
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ],
        }
    )
    assert len(req.turns) == 1 and req.turns[0].text == "prev" and req.turns[0].tool_calls[0].id == "c"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"input": "x"}, "model: field required"),
        ({"model": "m", "input": 5}, "input: must be a string or an array"),
        ({"model": "m", "input": [{"content": "x"}]}, "input[0].type: field required"),
        ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role: must be one of"),
        (
            {"model": "m", "input": [{"type": "function_call", "name": "f"}]},
            "input[0].call_id: field required",
        ),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]},
            "input[0].output: field required",
        ),
        ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name: field required"),
        ({"model": "m", "previous_response_id": 3}, "previous_response_id: must be a string"),
    ],
)
def test_decode_errors(body, message):
    with pytest.raises(RequestError) as info:
        responses.decode_request(body)
    assert info.value.message.startswith(message), info.value.message


def test_answers_validate_and_echo():
    body = {
        "model": "m",
        "tools": TOOLS,
        "tool_choice": "auto",
        "previous_response_id": "resp_0",
        "instructions": "x",
        "temperature": 0.2,
    }
    echo = responses.response_echo(body)
    r = check_responses_json(responses.text_answer("97", model="m", usage=Usage(10, 5), extra=echo))
    assert r.status == "completed" and r.output_text == "97" and r.previous_response_id == "resp_0"
    assert [t.type for t in r.tools] == ["function", "web_search"]
    assert r.usage.input_tokens_details.cached_tokens == 0 and r.usage.total_tokens == 15
    r = check_responses_json(
        responses.text_answer(
            '{"status": "failure"}',
            model="m",
            failed=True,
            error={"code": "policy_violation", "message": "Tool call to 'send_email' is denied"},
        ),
        openai_sdk=False,
    )
    assert r.status == "failed" and r.error.code == "policy_violation" and "failure" in r.output_text
    r = check_responses_json(
        responses.tool_call_answer([ToolCall("tc-1", "book_flight", {"flight": "BA263"})], model="m")
    )
    fc = r.output[0]
    assert (
        fc.type == "function_call"
        and fc.call_id == "tc-1"
        and json.loads(fc.arguments) == {"flight": "BA263"}
    )


def test_stream_answers():
    dicts = check_responses_stream(responses.stream_text_answer("Hello world", model="m", usage=Usage(2, 2)))
    assert [d["type"] for d in dicts] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert dicts[0]["sequence_number"] == 0
    assert dicts[-1]["response"]["output"][0]["content"][0]["text"] == "Hello world"
    dicts = check_responses_stream(
        responses.stream_text_answer("denied", model="m", failed=True, error={"code": "x", "message": "y"}),
        openai_sdk=False,
    )
    assert dicts[-1]["type"] == "response.failed" and dicts[-1]["response"]["error"]["code"] == "x"
    calls = [ToolCall("tc-1", "book_flight", {"flight": "BA263"}), ToolCall("tc-2", "f", {})]
    dicts = check_responses_stream(responses.stream_tool_call_answer(calls, model="m", text="ok"))
    final = dicts[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["message", "function_call", "function_call"]
    assert [o.get("call_id") for o in final["output"][1:]] == ["tc-1", "tc-2"]


def test_passthrough_json_helpers():
    answer = responses_json(Reply("tool_calls", text="sure", calls=[("a", {"x": 1}), ("b", {})]), {}, "gpt")
    calls = responses.extract_tool_calls(answer)
    assert [c.name for c in calls] == ["a", "b"] and responses.extract_text(answer) == "sure"
    assert responses.extract_usage(answer) == Usage(12, 7)
    responses.filter_tool_calls(
        answer, {calls[0].id}, "Tool call to 'b' is denied by argument checking policies."
    )
    responses.rewrite_answer_ids(answer, lambda u: "tc-" + u)
    r = check_responses_json(answer)
    assert [o.type for o in r.output] == ["message", "function_call", "message"]
    assert r.output[1].call_id == "tc-" + calls[0].id and "denied" in r.output_text
    body = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "tc-A", "name": "a", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "tc-A", "output": "r"},
            {"role": "user", "content": "x"},
        ],
    }
    out = responses.rewrite_ids_in_request(body, {"tc-A": "call_A"})
    assert [i.get("call_id") for i in out["input"]] == ["call_A", "call_A", None]
    assert body["input"][0]["call_id"] == "tc-A"


def test_upstream_body():
    out = responses.upstream_body(
        {
            "model": "m",
            "timeout": 5,
            "input": "x",
            "text": {"format": {"type": "json_schema", "name": "o", "schema_": {}}},
        },
        stream=True,
    )
    assert out == {
        "model": "m",
        "input": "x",
        "stream": True,
        "text": {"format": {"type": "json_schema", "name": "o", "schema": {}}},
    }


def _events(reply, body=None):
    return [SSEEvent(e, d) for e, d in responses_stream(reply, body or {}, "gpt-5-mini")]


def test_stream_relay_text():
    relay = responses.ResponsesStreamRelay(lambda u: "tc-" + u)
    evs = _events(Reply("text", text="Hello in one word", usage=(8, 3)))
    evs.insert(
        3,
        SSEEvent(
            "response.output_text.annotation.added",
            json.dumps({"type": "response.output_text.annotation.added", "sequence_number": 99}),
        ),
    )
    dicts = check_responses_stream(_run(relay, evs))
    assert responses_stream_text(dicts) == "Hello in one word"
    assert all(d["type"] != "response.output_text.annotation.added" for d in dicts)
    assert relay.usage == Usage(8, 3) and relay.status == "completed"


def test_stream_relay_function_calls_hold_rewrite_deny():
    evs = _events(
        Reply(
            "tool_calls",
            text="Booking",
            calls=[("book_flight", {"flight": "BA263"}), ("send_email", {"to": "x"})],
        )
    )
    relay = responses.ResponsesStreamRelay(lambda u: "tc-" + u)
    denial = "Tool call to 'send_email' is denied by argument checking policies."
    dicts = check_responses_stream(
        _run(relay, evs, lambda p: ([c.id for c in p if c.name == "book_flight"], denial))
    )
    final = dicts[-1]["response"]
    assert dicts[-1]["type"] == "response.completed"
    assert [o["type"] for o in final["output"]] == ["message", "function_call", "message"]
    fc = final["output"][1]
    assert fc["call_id"].startswith("tc-call_") and json.loads(fc["arguments"]) == {"flight": "BA263"}
    assert relay.tool_calls[0].id == fc["call_id"] and relay.id_map[fc["call_id"]] == fc["call_id"][3:]
    streamed_calls = [
        d["item"]
        for d in dicts
        if d["type"] == "response.output_item.done" and d["item"]["type"] == "function_call"
    ]
    assert [c["call_id"] for c in streamed_calls] == [fc["call_id"]]
    assert denial in responses_stream_text(dicts)


def test_stream_relay_error_event_and_early_end():
    evs = _events(Reply("text", text="partial stuff here"))
    relay = responses.ResponsesStreamRelay(lambda u: u)
    out = []
    for e in evs[:5]:
        out += relay.feed(e)
    out += relay.feed(
        SSEEvent(
            "error",
            json.dumps({"type": "error", "code": "server_error", "message": "boom", "sequence_number": 5}),
        )
    )
    dicts = check_responses_stream(out + relay.end())
    assert dicts[-1]["type"] == "response.failed" and dicts[-1]["response"]["error"]["message"] == "boom"
    relay = responses.ResponsesStreamRelay(lambda u: u)
    out = []
    for e in evs[:5]:
        out += relay.feed(e)
    dicts = check_responses_stream(out + relay.end())
    assert dicts[-1]["type"] == "response.failed"


# ------------------------------------------------------------------------------ via a chat-only provider


def test_to_chat_request():
    body = client_body(
        model="gpt-5-mini",
        instructions="sys",
        tools=TOOLS,
        tool_choice="auto",
        max_output_tokens=50,
        reasoning={"effort": "low"},
        stream=True,
        input=[
            {"role": "user", "content": "Book BA263"},
            {
                "type": "message",
                "role": "assistant",
                "id": "m1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "ok", "annotations": []}],
            },
            {"type": "function_call", "call_id": "tc-1", "name": "book_flight", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "tc-1", "output": "booked"},
        ],
        text={"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}},
    )
    out = responses.to_chat_request(body)
    req = chat.decode_request(out)  # a valid chat request
    assert [t.role for t in req.turns] == ["system", "user", "assistant", "tool"]
    assert out["messages"][2] == {
        "role": "assistant",
        "content": "ok",
        "tool_calls": [
            {"id": "tc-1", "type": "function", "function": {"name": "book_flight", "arguments": "{}"}}
        ],
    }
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "book_flight", "description": "Book", "parameters": TOOLS[0]["parameters"]},
        }
    ]
    assert out["max_completion_tokens"] == 50 and out["reasoning_effort"] == "low"
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "o", "schema": {"type": "object"}},
    }
    assert out["stream"] and out["stream_options"] == {"include_usage": True}


def test_from_chat_answer():
    r = check_responses_json(
        responses.from_chat_answer(chat_json(Reply("text", text="97"), {}, "gpt-5-mini"), extra={"tools": []})
    )
    assert r.output_text == "97" and r.status == "completed" and r.usage.total_tokens == 19
    answer = chat_json(Reply("tool_calls", calls=[("f", {"a": 1})]), {}, "gpt")
    chat.rewrite_answer_ids(answer, lambda u: "tc-" + u)
    check_chat_json(answer)
    r = check_responses_json(responses.from_chat_answer(answer))
    assert r.output[0].type == "function_call" and r.output[0].call_id.startswith("tc-call_")
    r = check_responses_json(
        responses.from_chat_answer(chat_json(Reply("text", text="cut", finish="length"), {}, "g"))
    )
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"


def _chat_events(reply):
    return [
        SSEEvent(e, d)
        for e, d in chat_stream(reply, {"stream_options": {"include_usage": True}}, "gpt-5-mini")
    ]


def test_chat_to_responses_relay_text():
    relay = responses.ChatToResponsesRelay(lambda u: "tc-" + u, model="gpt-5-mini", extra={"tools": []})
    dicts = check_responses_stream(
        _run(relay, _chat_events(Reply("text", text="Hello in one word", usage=(4, 4))))
    )
    assert responses_stream_text(dicts) == "Hello in one word"
    assert dicts[-1]["type"] == "response.completed" and dicts[-1]["response"]["usage"]["total_tokens"] == 8


def test_chat_to_responses_relay_calls_and_denial():
    relay = responses.ChatToResponsesRelay(lambda u: "tc-" + u, model="gpt-5-mini")
    evs = _chat_events(Reply("tool_calls", calls=[("a", {"x": 1}), ("b", {})]))
    dicts = check_responses_stream(_run(relay, evs, lambda p: ([p[0].id], "Tool call to 'b' is denied")))
    final = dicts[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["function_call", "message"]
    assert final["output"][0]["call_id"].startswith("tc-call_")
    assert "denied" in responses_stream_text(dicts)


def test_chat_to_responses_relay_abort():
    relay = responses.ChatToResponsesRelay(lambda u: u, model="m")
    out = []
    for e in _chat_events(Reply("text", text="a b c d e f"))[:3]:
        out += relay.feed(e)
    dicts = check_responses_stream(out + relay.abort("Sequrity Azure upstream error (500): x") + relay.end())
    assert dicts[-1]["type"] == "response.failed"
    assert "upstream error" in responses_stream_text(dicts)


def test_sanitize_answer():
    answer = responses_json(Reply("text", text="97"), {}, "gpt")
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        del answer[key]
    answer["usage"] = {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    answer["status"] = "weird"
    answer["error"] = {"message": "no code"}
    answer["incomplete_details"] = {"reason": "other"}
    echo = responses.response_echo({"tools": TOOLS, "tool_choice": "required"})
    from sequrity.types.responses.response import ResponsesResponse

    r = ResponsesResponse.model_validate(responses.sanitize_answer(answer, echo=echo))
    assert r.tool_choice == "required" and [t.type for t in r.tools] == ["function", "web_search"]
    assert r.status == "completed" and r.error.code == "server_error" and r.output_text == "97"
    assert r.usage.input_tokens_details.cached_tokens == 0
