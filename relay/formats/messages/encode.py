"""Anthropic Messages answers the relay writes itself: JSON messages and their event streams."""

from __future__ import annotations

from typing import Unpack

from .._json import dumps_str
from ..model import JsonObject, ToolCall, Usage, new_hex
from ..protocol import AnswerOptions, CallOptions
from ..sse import encode


def usage_dict(usage: Usage | None) -> JsonObject:
    u = usage or Usage()
    return {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}


def wire_tool_use(calls: list[ToolCall]) -> list[JsonObject]:
    return [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in calls]


def _message(content: list[JsonObject], stop: str, model: str, options: AnswerOptions) -> JsonObject:
    out = {
        "id": options.get("id") or f"msg_{new_hex()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage_dict(options.get("usage")),
    }
    out.update(options.get("extra") or {})
    return out


def text_answer(text: str, *, model: str, **options: Unpack[AnswerOptions]) -> JsonObject:
    """A final assistant message (``stop_reason`` ``end_turn`` also for failures, control-api §9.2)."""
    return _message(
        [{"type": "text", "text": text}], options.get("stop_reason") or "end_turn", model, options
    )


def _text_then(text: str | None, calls: list[ToolCall]) -> list[JsonObject]:
    return ([{"type": "text", "text": text}] if text else []) + wire_tool_use(calls)


def tool_call_answer(calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]) -> JsonObject:
    return _message(_text_then(options.get("text"), calls), "tool_use", model, options)


def event(obj: JsonObject) -> bytes:
    """One event of a Messages stream (named by its ``type``)."""
    return encode(obj, obj["type"])


def message_start(mid: str, model: str, usage: Usage | None) -> bytes:
    u = usage or Usage()
    return event(
        {
            "type": "message_start",
            "message": {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": u.prompt_tokens, "output_tokens": 0},
            },
        }
    )


def _block(index: int, start: JsonObject, delta: JsonObject) -> list[bytes]:
    return [
        event({"type": "content_block_start", "index": index, "content_block": start}),
        event({"type": "content_block_delta", "index": index, "delta": delta}),
        event({"type": "content_block_stop", "index": index}),
    ]


def text_block(index: int, text: str) -> list[bytes]:
    return _block(index, {"type": "text", "text": ""}, {"type": "text_delta", "text": text})


def tool_block(index: int, call: ToolCall) -> list[bytes]:
    return _block(
        index,
        {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
        {"type": "input_json_delta", "partial_json": dumps_str(call.arguments)},
    )


def message_end(stop: str, usage: Usage | None) -> list[bytes]:
    u = usage or Usage()
    return [
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": u.completion_tokens},
            }
        ),
        event({"type": "message_stop"}),
    ]


def stream_text_answer(text: str, *, model: str, **options: Unpack[AnswerOptions]) -> list[bytes]:
    """The six-event sequence of control-api §12.3 for a text answer (no ping)."""
    usage = options.get("usage")
    start = message_start(options.get("id") or f"msg_{new_hex()}", model, usage)
    return [start, *text_block(0, text), *message_end(options.get("stop_reason") or "end_turn", usage)]


def stream_tool_call_answer(
    calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]
) -> list[bytes]:
    usage = options.get("usage")
    out = [message_start(options.get("id") or f"msg_{new_hex()}", model, usage)]
    text = options.get("text")
    if text:
        out += text_block(0, text)
    first = 1 if text else 0
    for i, c in enumerate(calls):
        out += tool_block(first + i, c)
    return out + message_end("tool_use", usage)


__all__ = ["event", "message_end", "message_start", "stream_text_answer", "stream_tool_call_answer"]
__all__ += ["text_answer", "text_block", "tool_block", "tool_call_answer", "usage_dict", "wire_tool_use"]
