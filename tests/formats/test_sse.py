import asyncio
import json

import pytest

from relay.formats import SSEEvent, SSEParser, ToolCall, chat, pump
from relay.formats.sse import encode

STREAM = (
    b'event: message_start\ndata: {"a": 1}\n\n'
    b": comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b'id: 7\nretry: 100\ndata:{"no":"space"}\n\n'
    b"event: ping\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("message_start", '{"a": 1}'),
    SSEEvent(None, "line one\nline two"),
    SSEEvent(None, '{"no":"space"}'),
    SSEEvent(None, "[DONE]"),
]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_parser_any_split_any_newline(newline, size):
    data = STREAM.replace(b"\n", newline)
    parser = SSEParser()
    got = []
    for i in range(0, len(data), size):
        got += parser.feed(data[i : i + size])
    got += parser.flush()
    assert got == EXPECTED


def test_parser_unterminated_last_event_and_utf8():
    parser = SSEParser()
    payload = json.dumps({"t": "héllo ✓"}, ensure_ascii=False).encode()
    got = parser.feed(b"data: " + payload[:9]) + parser.feed(payload[9:])
    assert got == []
    assert parser.flush() == [SSEEvent(None, json.dumps({"t": "héllo ✓"}, ensure_ascii=False))]
    assert parser.flush() == []


def test_encode_is_one_line():
    out = encode({"text": "a\nb", "n": 1}, "message_delta")
    assert out.startswith(b"event: message_delta\ndata: {") and out.endswith(b"}\n\n")
    assert out.count(b"\n") == 3


def test_pump_decides_and_aborts_on_error():
    async def events():
        yield SSEEvent(
            None,
            json.dumps(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "role": "assistant",
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
                }
            ),
        )
        yield SSEEvent(None, "[DONE]")

    decided = []

    async def decide(pending: list[ToolCall]):
        decided.append([c.name for c in pending])
        return [], "denied"

    async def collect(gen):
        return [chunk async for chunk in gen]

    relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
    out = asyncio.run(collect(pump(relay, events(), decide)))
    assert decided == [["f"]] and out[-1] == b"data: [DONE]\n\n"
    assert relay.text == "denied" and relay.finish_reason == "stop"

    async def failing():
        yield SSEEvent(
            None,
            json.dumps(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
                }
            ),
        )
        raise RuntimeError("upstream went away")

    relay = chat.ChatStreamRelay(lambda u: u)
    out = asyncio.run(collect(pump(relay, failing())))
    assert b"upstream went away" in b"".join(out) and out[-1] == b"data: [DONE]\n\n"
