"""The shared parts of the formats: ``FORMATS[api]`` as an ApiFormat, the names callers use, the pydantic
request fields' messages, and the copy-on-write and tool-call-shape helpers."""

from __future__ import annotations

import pytest

from relay.formats import FORMATS, RequestError, chat, messages, responses
from relay.formats.protocol import FormatBundle
from relay.formats.wire import CallShape, map_field, map_list

MEMBERS = (
    "decode_request",
    "upstream_body",
    "text_answer",
    "tool_call_answer",
    "stream_text_answer",
    "stream_tool_call_answer",
    "extract_usage",
    "extract_text",
    "extract_tool_calls",
    "filter_tool_calls",
    "sanitize_answer",
    "rewrite_answer_ids",
    "rewrite_ids_in_request",
    "rewrite_tool_results",
    "rewrite_call_arguments",
    "rewrite_answer_arguments",
    "stream_relay",
)


@pytest.mark.parametrize(
    "api, module, relay",
    [
        ("chat", chat, "ChatStreamRelay"),
        ("messages", messages, "MessagesStreamRelay"),
        ("responses", responses, "ResponsesStreamRelay"),
    ],
)
def test_each_format_is_one_object_with_the_names_callers_use(api, module, relay):
    fmt = FORMATS[api]
    assert isinstance(fmt, FormatBundle) and fmt.api == api and fmt is module.FORMAT
    for name in MEMBERS:
        assert callable(getattr(fmt, name)), name
        if name != "stream_relay":
            assert getattr(fmt, name) is getattr(module, name), name  # the package's function, importable too
    assert fmt.__dict__[relay] is getattr(module, relay) is fmt.stream_relay
    decoded = fmt.decode_request(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}], "input": "q"}
    )
    assert decoded.api == api and decoded.user_query == "q"


def test_responses_extras_stay_reachable():
    from relay.formats.responses import response_echo

    assert FORMATS["responses"].response_echo is response_echo
    assert FORMATS["responses"].ChatToResponsesRelay is responses.ChatToResponsesRelay
    assert responses.to_chat_request({"model": "m", "input": "x"})["messages"] == [
        {"role": "user", "content": "x"}
    ]
    assert chat._normalise_finish("tool_use") == "tool_calls"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model: must not be empty"),
        (
            {"model": "m", "seed": True, "messages": [{"role": "user", "content": "x"}]},
            "seed: must be an integer",
        ),
        (
            {"model": "m", "temperature": False, "messages": [{"role": "user", "content": "x"}]},
            "temperature: must be a number",
        ),
        (
            {
                "model": "m",
                "top_p": None,
                "stream_options": [],
                "messages": [{"role": "user", "content": "x"}],
            },
            "stream_options: must be an object",
        ),
        (
            {"model": "m", "user_provided_program": 1, "messages": [{"role": "user", "content": "x"}]},
            "user_provided_program: must be a string",
        ),
    ],
)
def test_top_level_fields_name_the_field(body, message):
    with pytest.raises(RequestError) as info:
        chat.decode_request(body)
    assert info.value.message == message and info.value.status == 422


@pytest.mark.parametrize(
    "max_tokens, message",
    [
        (None, "max_tokens: field required"),
        (0, "max_tokens: must be >= 1"),
        (True, "max_tokens: must be an integer"),
    ],
)
def test_messages_max_tokens(max_tokens, message):
    with pytest.raises(RequestError) as info:
        messages.decode_request(
            {"model": "c", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "x"}]}
        )
    assert info.value.message == message


def test_map_list_and_map_field_are_copy_on_write():
    items = [1, 2, 3]
    assert map_list(items, lambda x: x) is None
    assert map_list(items, lambda x: x * 10 if x == 2 else x) == [1, 20, 3]
    body = {"messages": items, "model": "m"}
    assert map_field(body, "messages", lambda x: x) is body
    changed = map_field(body, "messages", lambda x: -x)
    assert changed == {"messages": [-1, -2, -3], "model": "m"} and body["messages"] == [1, 2, 3]
    assert map_field({"messages": "not a list"}, "messages", lambda x: -x) == {"messages": "not a list"}


@pytest.mark.parametrize(
    "shape, call",
    [
        (chat.CALL, {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}),
        (messages.CALL, {"type": "tool_use", "id": "a", "name": "f", "input": {"x": 1}}),
        (responses.CALL, {"type": "function_call", "call_id": "a", "name": "f", "arguments": '{"x": 1}'}),
    ],
)
def test_call_shape_reads_and_rewrites_each_api(shape: CallShape, call):
    read = shape.read(call)
    assert (read.id, read.name, read.arguments) == ("a", "f", {"x": 1})
    shape.rewrite_id([call], lambda upstream: "tc-" + upstream)
    shape.rewrite_arguments([call], lambda cid, name, args: {**args, "y": 2} if cid == "tc-a" else None)
    again = shape.read(call)
    assert again.id == "tc-a" and again.arguments == {"x": 1, "y": 2}
    history = shape.history_rewriter(lambda cid, raw: None)
    assert history(call) is call  # None keeps the call, the very same object
