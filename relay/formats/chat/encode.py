"""Chat Completions answers the relay writes itself: JSON completions and their chunk streams (§12.2)."""

from __future__ import annotations

from typing import Any

from ..model import JsonObject, ToolCall, Usage, new_hex, now
from ..sse import DONE, encode


def wire_tool_calls(calls: list[ToolCall]) -> list[JsonObject]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
            for c in calls]


def _completion(message: JsonObject, finish: str, *, model: str, id: str | None, usage: Usage | None,
                created: int | None, extra: JsonObject | None) -> JsonObject:
    out: JsonObject = {
        "id": id or f"chatcmpl-{new_hex()}",
        "object": "chat.completion",
        "created": created or now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        out["usage"] = usage.as_dict()
    if extra:
        out.update(extra)
    return out


def text_answer(text: str, *, model: str, id: str | None = None, usage: Usage | None = None,
                created: int | None = None, finish_reason: str = "stop", extra: JsonObject | None = None,
                **_: Any) -> JsonObject:
    """A final assistant message. (``failed``/``error`` keywords are accepted and ignored: Chat has no status.)"""
    return _completion({"role": "assistant", "content": text}, finish_reason, model=model, id=id,
                       usage=usage, created=created, extra=extra)


def tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None, usage: Usage | None = None,
                     created: int | None = None, text: str | None = None, extra: JsonObject | None = None,
                     **_: Any) -> JsonObject:
    message = {"role": "assistant", "content": text or None, "tool_calls": wire_tool_calls(calls)}
    return _completion(message, "tool_calls", model=model, id=id, usage=usage, created=created, extra=extra)


def _chunk(cid: str, created: int, model: str, delta: JsonObject, finish: str | None = None,
           usage: Usage | None = None) -> bytes:
    obj: JsonObject = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        obj["usage"] = usage.as_dict()
    return encode(obj)


def stream_text_answer(text: str, *, model: str, id: str | None = None, usage: Usage | None = None,
                       created: int | None = None, finish_reason: str = "stop", **_: Any) -> list[bytes]:
    """Chunks of a final answer: role+content, finish (with usage), ``[DONE]`` (control-api §12.2)."""
    cid, ts = id or f"chatcmpl-{new_hex()}", created or now()
    return [
        _chunk(cid, ts, model, {"role": "assistant", "content": text}),
        _chunk(cid, ts, model, {}, finish_reason, usage),
        DONE,
    ]


def stream_tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None,
                            usage: Usage | None = None, created: int | None = None,
                            text: str | None = None, **_: Any) -> list[bytes]:
    cid, ts = id or f"chatcmpl-{new_hex()}", created or now()
    out = [_chunk(cid, ts, model, {"role": "assistant", "content": text or None})]
    for i, wire in enumerate(wire_tool_calls(calls)):
        out.append(_chunk(cid, ts, model, {"tool_calls": [{"index": i, **wire}]}))
    out.append(_chunk(cid, ts, model, {}, "tool_calls", usage))
    out.append(DONE)
    return out

__all__ = [
    "stream_text_answer", "stream_tool_call_answer", "text_answer", "tool_call_answer", "wire_tool_calls"
]
