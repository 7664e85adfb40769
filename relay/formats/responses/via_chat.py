"""Responses through a chat-only provider (``sequrity_azure``): the request translated to Chat Completions,
the answer and the stream translated back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import chat as _chat
from ..chat.stream import ChatStreamRelay
from ..model import JsonObject, NewId
from .decode import TEXT_PART_TYPES, item_kind
from .encode import ResponsesEmitter, function_call_item, message_item, response_object


def _chat_content(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        ptype = part.get("type")
        if ptype in TEXT_PART_TYPES:
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif ptype == "refusal":
            parts.append({"type": "text", "text": part.get("refusal") or ""})
        elif ptype == "input_image" and part.get("image_url"):
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": part["image_url"], "detail": part.get("detail") or "auto"},
                }
            )
        elif ptype == "input_file":
            f = {k: part[k] for k in ("file_id", "file_data", "filename") if part.get(k)}
            parts.append({"type": "file", "file": f})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _chat_messages(body: Mapping[str, Any]) -> list[JsonObject]:
    """The Responses ``instructions`` and ``input`` as Chat messages."""
    messages: list[JsonObject] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    input_ = body.get("input")
    if isinstance(input_, str):
        messages.append({"role": "user", "content": input_})
    for item in input_ if isinstance(input_, list) else ():
        if isinstance(item, dict):
            _add_item(messages, item)
    return messages


def _add_item(messages: list[JsonObject], item: JsonObject) -> None:
    kind = item_kind(item)
    if kind == "message":
        role = item.get("role")
        content = _chat_content(item.get("content"))
        if role == "assistant":
            messages.append({"role": "assistant", "content": content if content else None})
        elif role in ("system", "developer", "user"):
            messages.append({"role": role, "content": content})
    elif kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        messages.append(
            {
                "role": "tool",
                "tool_call_id": item.get("call_id"),
                "content": output if isinstance(output, str) else _chat_content(output),
            }
        )


def _chat_tools(body: Mapping[str, Any], out: JsonObject) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                k: t[k] for k in ("name", "description", "parameters", "strict") if t.get(k) is not None
            },
        }
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    if not tools:
        return
    out["tools"] = tools
    tc = body.get("tool_choice")
    if isinstance(tc, str):
        out["tool_choice"] = tc
    elif isinstance(tc, dict) and tc.get("type") == "function" and tc.get("name"):
        out["tool_choice"] = {"type": "function", "function": {"name": tc["name"]}}
    if isinstance(body.get("parallel_tool_calls"), bool):
        out["parallel_tool_calls"] = body["parallel_tool_calls"]


def _chat_response_format(fmt: Any) -> JsonObject | None:
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema") if fmt.get("schema") is not None else fmt.get("schema_")
    js = {"name": fmt.get("name") or "output", "schema": schema or {}}
    if fmt.get("strict") is not None:
        js["strict"] = fmt["strict"]
    if fmt.get("description"):
        js["description"] = fmt["description"]
    return {"type": "json_schema", "json_schema": js}


_COPIED = (
    "temperature",
    "top_p",
    "user",
    "metadata",
    "service_tier",
    "store",
    "prompt_cache_key",
    "safety_identifier",
)


def to_chat_request(body: Mapping[str, Any], *, stream: bool | None = None) -> JsonObject:
    """Translate a Responses request into a Chat Completions request (for ``sequrity_azure``)."""
    out: JsonObject = {"model": body.get("model"), "messages": _chat_messages(body)}
    _chat_tools(body, out)
    out.update({key: body[key] for key in _COPIED if body.get(key) is not None})
    if isinstance(body.get("max_output_tokens"), int):
        out["max_completion_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        out["reasoning_effort"] = reasoning["effort"]
    text = body.get("text")
    response_format = _chat_response_format(text.get("format") if isinstance(text, dict) else None)
    if response_format is not None:
        out["response_format"] = response_format
    if stream if stream is not None else bool(body.get("stream")):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _status_for_finish(finish: str | None) -> tuple[str, JsonObject | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def from_chat_answer(
    answer: Mapping[str, Any],
    *,
    model: str | None = None,
    id: str | None = None,
    extra: JsonObject | None = None,
) -> JsonObject:
    """Translate a Chat Completions answer into a Response object (tool-call ids are kept as ``call_id``)."""
    text = _chat.extract_text(answer)
    calls = _chat.extract_tool_calls(answer)
    output = ([message_item(text)] if text else []) + [function_call_item(c) for c in calls]
    if not output:
        output = [message_item("")]
    choices = answer.get("choices") or []
    status, incomplete = _status_for_finish(choices[0].get("finish_reason") if choices else None)
    return response_object(
        output,
        model=model or answer.get("model") or "",
        id=id,
        status=status,
        usage=_chat.extract_usage(answer),
        created=answer.get("created"),
        incomplete_details=incomplete,
        extra=extra,
    )


class ChatToResponsesRelay(ChatStreamRelay):
    """A Chat Completions upstream stream relayed as a Responses stream (``sequrity_azure``).

    Inherits the chat relay's hold-back / decision / id-rewriting behaviour; every chunk the chat relay
    would emit is translated into Responses events instead (text → one message item's text deltas; each
    released tool call → a complete ``function_call`` item; the end → ``response.completed`` /
    ``response.incomplete``; ``abort`` → ``response.failed``).
    """

    def __init__(
        self, new_id: NewId, *, model: str, id: str | None = None, extra: JsonObject | None = None
    ) -> None:
        super().__init__(new_id, include_usage=False, model=model)
        self._em = ResponsesEmitter(model=model, id=id, extra=extra)
        self._r_finish: str | None = None
        self.status: str | None = None

    @property
    def response_id(self) -> str | None:
        """The id of the response the client receives (to find the session by ``previous_response_id``)."""
        return self._em.base.get("id")

    def _emit(self, obj: JsonObject, raw: str) -> list[bytes]:
        em = self._em
        out = em.start()
        for choice in (obj.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                out += em.text_delta(content)
            for tc in delta.get("tool_calls") or []:
                out += em.function_call(_chat.CALL.read(tc))
            if choice.get("finish_reason"):
                self._r_finish = choice["finish_reason"]
        return out

    def _final(self) -> list[bytes]:
        status, incomplete = _status_for_finish(self._r_finish)
        self.status = status
        return self._em.finish(status, usage=self.usage, incomplete_details=incomplete)

    def _abort(self, message: str) -> list[bytes]:
        em = self._em
        self.text = self._joined(message)
        self._done = True
        self.status = "failed"
        out = em.start() + em.close_message() + em.message(message)
        return out + em.finish("failed", usage=self.usage, error={"code": "server_error", "message": message})


__all__ = ["ChatToResponsesRelay", "from_chat_answer", "to_chat_request"]
