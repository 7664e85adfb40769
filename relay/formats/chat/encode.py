"""Chat Completions answers the relay writes itself: JSON completions and their chunk streams."""

from __future__ import annotations

from typing import Any, Unpack

from ..model import JsonObject, ToolCall, new_hex, now
from ..protocol import AnswerOptions, CallOptions
from ..sse import DONE, encode


def wire_tool_calls(calls: list[ToolCall]) -> list[JsonObject]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
        for c in calls
    ]


def _completion(message: JsonObject, finish: str, model: str, options: AnswerOptions) -> JsonObject:
    usage = options.get("usage")
    out: JsonObject = {
        "id": options.get("id") or f"chatcmpl-{new_hex()}",
        "object": "chat.completion",
        "created": options.get("created") or now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        out["usage"] = usage.as_dict()
    out.update(options.get("extra") or {})
    return out


def text_answer(text: str, *, model: str, **options: Unpack[AnswerOptions]) -> JsonObject:
    """A final assistant message (``failed``/``error`` are ignored: Chat has no status)."""
    message = {"role": "assistant", "content": text}
    return _completion(message, options.get("finish_reason") or "stop", model, options)


def tool_call_answer(calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]) -> JsonObject:
    message = {
        "role": "assistant",
        "content": options.get("text") or None,
        "tool_calls": wire_tool_calls(calls),
    }
    return _completion(message, "tool_calls", model, options)


class _Chunks:
    """The chunks of one streamed answer: same id, time and model on each."""

    def __init__(self, model: str, options: AnswerOptions) -> None:
        self.head = {
            "id": options.get("id") or f"chatcmpl-{new_hex()}",
            "object": "chat.completion.chunk",
            "created": options.get("created") or now(),
            "model": model,
        }
        self.usage = options.get("usage")

    def __call__(self, delta: JsonObject, finish: str | None = None, *, last: bool = False) -> bytes:
        obj: dict[str, Any] = {
            **self.head,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if last and self.usage is not None:
            obj["usage"] = self.usage.as_dict()
        return encode(obj)


def stream_text_answer(text: str, *, model: str, **options: Unpack[AnswerOptions]) -> list[bytes]:
    """Chunks of a final answer: role+content, finish (with usage), ``[DONE]`` (control-api §12.2)."""
    chunk = _Chunks(model, options)
    finish = options.get("finish_reason") or "stop"
    return [chunk({"role": "assistant", "content": text}), chunk({}, finish, last=True), DONE]


def stream_tool_call_answer(
    calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]
) -> list[bytes]:
    chunk = _Chunks(model, options)
    out = [chunk({"role": "assistant", "content": options.get("text") or None})]
    out += [chunk({"tool_calls": [{"index": i, **wire}]}) for i, wire in enumerate(wire_tool_calls(calls))]
    return [*out, chunk({}, "tool_calls", last=True), DONE]


__all__ = ["stream_text_answer", "stream_tool_call_answer", "text_answer", "tool_call_answer"]
__all__ += ["wire_tool_calls"]
