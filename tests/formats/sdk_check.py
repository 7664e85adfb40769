"""Validate what the relay emits the way real clients read it: the `sequrity` client's own SSE line parser
and models, plus the official openai / anthropic SDK types and stream accumulators."""

from __future__ import annotations

import json
from typing import Any

from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter
from sequrity.control._stream import _parse_sse_line
from sequrity.types.chat_completion.response import ChatCompletionResponse
from sequrity.types.chat_completion.stream import ChatCompletionChunk as SqChunk
from sequrity.types.messages.response import AnthropicMessageResponse
from sequrity.types.messages.stream import AnthropicStreamEvent
from sequrity.types.responses.response import ResponsesResponse
from sequrity.types.responses.stream import OpenAiResponseStreamEvent

from relay.formats import SSEParser

_SQ_CHUNK = TypeAdapter(SqChunk)
_SQ_ANTHROPIC = TypeAdapter(AnthropicStreamEvent)
_SQ_RESPONSES = TypeAdapter(OpenAiResponseStreamEvent)
_OA_RESPONSES = TypeAdapter(ResponseStreamEvent)
_AN_EVENTS = TypeAdapter(RawMessageStreamEvent)


def roundtrip(obj: dict) -> dict:
    """What a client receives: the JSON text of the answer, parsed back."""
    return json.loads(json.dumps(obj))


def client_lines(chunks: list[bytes]) -> list[str]:
    """Split an SSE byte stream into lines as the sequrity client does (httpx iter_lines)."""
    data = b"".join(chunks).decode()
    for ev in chunks:
        assert ev.endswith(b"\n\n"), ev
    return data.splitlines()


def sequrity_parse(chunks: list[bytes], adapter: TypeAdapter) -> list[Any]:
    out = []
    for line in client_lines(chunks):
        parsed = _parse_sse_line(line, adapter)
        if parsed is not None:
            out.append(parsed)
    return out


def events(chunks: list[bytes]) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    evs = parser.feed(b"".join(chunks)) + parser.flush()
    for ev in evs:
        assert "\n" not in ev.data, "one data line per event"
    return [(e.event, e.data) for e in evs]


# ------------------------------------------------------------------------------------------------ chat


def check_chat_json(obj: dict) -> ChatCompletion:
    obj = roundtrip(obj)
    ChatCompletionResponse.model_validate(obj)
    return ChatCompletion.model_validate(obj)


def check_chat_stream(chunks: list[bytes]) -> tuple[list[dict], Any]:
    """Validate every chunk with both SDKs; returns (chunk dicts, openai accumulated final completion)."""
    assert chunks[-1] == b"data: [DONE]\n\n"
    sequrity_parse(chunks, _SQ_CHUNK)
    state = ChatCompletionStreamState()
    dicts = []
    for event, data in events(chunks):
        assert event is None
        if data == "[DONE]":
            continue
        obj = json.loads(data)
        dicts.append(obj)
        chunk = ChatCompletionChunk.model_validate(obj)
        for ch in obj["choices"]:
            assert "delta" in ch and ch.get("finish_reason") != "error"
        state.handle_chunk(chunk)
    return dicts, state.get_final_completion()


# ------------------------------------------------------------------------------------------- messages


def check_messages_json(obj: dict) -> AnthropicMessage:
    obj = roundtrip(obj)
    AnthropicMessageResponse.model_validate(obj)
    return AnthropicMessage.model_validate(obj)


def check_messages_stream(chunks: list[bytes]) -> tuple[list[dict], Any]:
    """Six event types only, event: line = type, first message_start, last message_stop; returns
    (event dicts, anthropic-SDK accumulated final message)."""
    sequrity_parse(chunks, _SQ_ANTHROPIC)
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    dicts = []
    for event, data in events(chunks):
        obj = json.loads(data)
        assert event == obj["type"]
        assert obj["type"] in (
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        )
        dicts.append(obj)
        ev = _AN_EVENTS.validate_python(obj)
        snapshot = accumulate_event(event=ev, current_snapshot=snapshot, json_bufs=json_bufs)
    assert dicts[0]["type"] == "message_start" and dicts[-1]["type"] == "message_stop"
    assert any(d["type"] == "message_delta" for d in dicts)
    # indices: contiguous, each block started once, stopped once, deltas inside
    started, stopped = [], []
    for d in dicts:
        if d["type"] == "content_block_start":
            assert d["index"] == len(started)
            started.append(d["index"])
        elif d["type"] == "content_block_delta":
            assert d["index"] in started and d["index"] not in stopped
        elif d["type"] == "content_block_stop":
            stopped.append(d["index"])
    assert sorted(stopped) == started
    return dicts, snapshot


# ------------------------------------------------------------------------------------------ responses


def check_responses_json(obj: dict, openai_sdk: bool = True) -> Any:
    """Validate with the sequrity model, and with the openai SDK's ``Response`` unless ``openai_sdk`` is False
    (the SDK restricts ``error.code`` to OpenAI's own codes; Sequrity's dual-LLM codes are not among them)."""
    obj = roundtrip(obj)
    sq = ResponsesResponse.model_validate(obj)
    if not openai_sdk:
        return sq
    resp = Response.model_validate(obj)
    assert sq.output_text == resp.output_text
    return resp


def check_responses_stream(chunks: list[bytes], openai_sdk: bool = True) -> list[dict]:
    sequrity_parse(chunks, _SQ_RESPONSES)
    dicts = []
    for event, data in events(chunks):
        obj = json.loads(data)
        assert event == obj["type"]
        if openai_sdk or obj["type"] != "response.failed":
            _OA_RESPONSES.validate_python(obj)
        dicts.append(obj)
    seqs = [d["sequence_number"] for d in dicts]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert dicts[0]["type"] == "response.created"
    assert dicts[-1]["type"] in ("response.completed", "response.failed", "response.incomplete")
    check_responses_json(dicts[-1]["response"], openai_sdk)
    # output indices of added items are contiguous
    added = [d["output_index"] for d in dicts if d["type"] == "response.output_item.added"]
    assert added == list(range(len(added))), added
    return dicts


def responses_stream_text(dicts: list[dict]) -> str:
    return "".join(d["delta"] for d in dicts if d["type"] == "response.output_text.delta")
