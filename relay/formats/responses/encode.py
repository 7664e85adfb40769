"""OpenAI Responses answers the relay writes itself: Response objects and their event streams."""

from __future__ import annotations

from typing import Any, Unpack

from ..model import JsonObject, ToolCall, Usage, new_hex, now
from ..protocol import AnswerOptions, CallOptions
from ..sse import encode


def usage_dict(usage: Usage | None) -> JsonObject:
    u = usage or Usage()
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    }


def message_item(text: str, *, id: str | None = None, status: str = "completed") -> JsonObject:
    return {
        "type": "message",
        "id": id or f"msg_{new_hex()}",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call_item(call: ToolCall, *, id: str | None = None, status: str = "completed") -> JsonObject:
    return {
        "type": "function_call",
        "id": id or f"fc_{new_hex()}",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments_json(),
        "status": status,
    }


def response_object(
    output: list[JsonObject],
    *,
    model: str,
    id: str | None = None,
    status: str = "completed",
    usage: Usage | None = None,
    created: float | None = None,
    error: JsonObject | None = None,
    incomplete_details: JsonObject | None = None,
    extra: JsonObject | None = None,
) -> JsonObject:
    out: dict[str, Any] = {
        "id": id or f"resp_{new_hex()}",
        "object": "response",
        "created_at": created or now(),
        "model": model,
        "status": status,
        "output": output,
        "error": error,
        "incomplete_details": incomplete_details,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    if usage is not None:
        out["usage"] = usage_dict(usage)
    if extra:
        out.update(extra)
    return out


def _status(options: AnswerOptions) -> tuple[str, JsonObject | None]:
    """(status, error) of our own answer: ``failed`` with its error, else ``completed``."""
    return ("failed", options.get("error")) if options.get("failed") else ("completed", None)


def _answer(output: list[JsonObject], model: str, options: AnswerOptions) -> JsonObject:
    """A Response object; ``status`` ``failed`` (and ``error`` if given) when ``failed``."""
    failed = bool(options.get("failed"))
    return response_object(
        output,
        model=model,
        id=options.get("id"),
        status="failed" if failed else "completed",
        usage=options.get("usage"),
        created=options.get("created"),
        error=options.get("error") if failed else None,
        extra=options.get("extra"),
    )


def text_answer(text: str, *, model: str, **options: Unpack[AnswerOptions]) -> JsonObject:
    """A final answer: one message item."""
    return _answer([message_item(text)], model, options)


def tool_call_answer(calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]) -> JsonObject:
    text = options.get("text")
    return _answer(
        ([message_item(text)] if text else []) + [function_call_item(c) for c in calls], model, options
    )


class ResponsesEmitter:
    """Builds a Responses event stream with a monotonic ``sequence_number`` (from 0) and tracks the output."""

    def __init__(
        self,
        *,
        model: str,
        id: str | None = None,
        created: float | None = None,
        extra: JsonObject | None = None,
    ) -> None:
        self.seq = 0
        self.output: list[JsonObject | None] = []  # None: an item the stream relay forwarded itself
        self.base = response_object(
            [], model=model, id=id, status="in_progress", created=created, extra=extra
        )
        self.started = False
        self.finished = False
        self._msg: JsonObject | None = None
        self._msg_index = -1

    def event(self, etype: str, **fields: Any) -> bytes:
        obj = {"type": etype, "sequence_number": self.seq, **fields}
        self.seq += 1
        return encode(obj, etype)

    def snapshot(self, status: str, **fields: Any) -> JsonObject:
        return {**self.base, "status": status, "output": list(self.output), **fields}

    def start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        snap = self.snapshot("in_progress")
        return [
            self.event("response.created", response=snap),
            self.event("response.in_progress", response=snap),
        ]

    def open_message(self, item_id: str | None = None) -> list[bytes]:
        if self._msg is not None:
            return []
        out = self.start()
        self._msg = {
            "type": "message",
            "id": item_id or f"msg_{new_hex()}",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self._msg_index = len(self.output)
        self.output.append(self._msg)
        mid, idx = self._msg["id"], self._msg_index
        out.append(
            self.event("response.output_item.added", output_index=idx, item=dict(self._msg, content=[]))
        )
        part = {"type": "output_text", "text": "", "annotations": []}
        self._msg["content"].append(part)
        out.append(
            self.event(
                "response.content_part.added", item_id=mid, output_index=idx, content_index=0, part=dict(part)
            )
        )
        return out

    def text_delta(self, text: str) -> list[bytes]:
        out = self.open_message()
        assert self._msg is not None
        self._msg["content"][0]["text"] += text
        out.append(
            self.event(
                "response.output_text.delta",
                item_id=self._msg["id"],
                output_index=self._msg_index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return out

    def close_message(self) -> list[bytes]:
        if self._msg is None:
            return []
        msg, idx = self._msg, self._msg_index
        self._msg = None
        part = msg["content"][0]
        msg["status"] = "completed"
        return [
            self.event(
                "response.output_text.done",
                item_id=msg["id"],
                output_index=idx,
                content_index=0,
                text=part["text"],
                logprobs=[],
            ),
            self.event(
                "response.content_part.done",
                item_id=msg["id"],
                output_index=idx,
                content_index=0,
                part=dict(part),
            ),
            self.event("response.output_item.done", output_index=idx, item=msg),
        ]

    def message(self, text: str) -> list[bytes]:
        return self.open_message() + self.text_delta(text) + self.close_message()

    def function_call(self, call: ToolCall, item_id: str | None = None) -> list[bytes]:
        out = self.close_message() if self._msg is not None else self.start()
        item = function_call_item(call, id=item_id, status="in_progress")
        idx = len(self.output)
        self.output.append(item)
        args = item["arguments"]
        out.append(self.event("response.output_item.added", output_index=idx, item=dict(item, arguments="")))
        out.append(
            self.event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=idx, delta=args
            )
        )
        out.append(
            self.event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=idx,
                name=call.name,
                arguments=args,
            )
        )
        item["status"] = "completed"
        out.append(self.event("response.output_item.done", output_index=idx, item=item))
        return out

    def finish(
        self,
        status: str = "completed",
        *,
        usage: Usage | None = None,
        error: JsonObject | None = None,
        incomplete_details: JsonObject | None = None,
    ) -> list[bytes]:
        if self.finished:
            return []
        out = self.start() + self.close_message()
        self.finished = True
        snap = self.snapshot(
            status,
            error=error,
            incomplete_details=incomplete_details,
            completed_at=now() if status == "completed" else None,
        )
        if usage is not None:
            snap["usage"] = usage_dict(usage)
        etype = {"completed": "response.completed", "failed": "response.failed"}.get(
            status, "response.incomplete"
        )
        out.append(self.event(etype, response=snap))
        return out


def _emitter(model: str, options: AnswerOptions) -> ResponsesEmitter:
    return ResponsesEmitter(
        model=model, id=options.get("id"), created=options.get("created"), extra=options.get("extra")
    )


def stream_text_answer(text: str, *, model: str, **options: Unpack[AnswerOptions]) -> list[bytes]:
    """created → in_progress → item/part added → text delta → done events → completed|failed (§12.4)."""
    em = _emitter(model, options)
    failed = bool(options.get("failed"))
    status, error = ("failed", options.get("error")) if failed else ("completed", None)
    return em.start() + em.message(text) + em.finish(status, usage=options.get("usage"), error=error)


def stream_tool_call_answer(
    calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]
) -> list[bytes]:
    em = _emitter(model, options)
    out = em.start()
    text = options.get("text")
    if text:
        out += em.message(text)
    for c in calls:
        out += em.function_call(c)
    return out + em.finish("completed", usage=options.get("usage"))


__all__ = ["ResponsesEmitter", "function_call_item", "message_item", "response_object"]
__all__ += ["stream_text_answer", "stream_tool_call_answer", "text_answer", "tool_call_answer"]
__all__ += ["usage_dict"]
