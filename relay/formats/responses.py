"""OpenAI Responses (``…/v1/responses``): decode, encode, pass-through, and translation to/from Chat
Completions for chat-only providers (``sequrity_azure``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from . import chat as _chat
from ._json import dumps_str, loads
from .model import (
    DecodedRequest,
    NewId,
    RequestError,
    ToolCall,
    ToolDef,
    ToolResult,
    Turn,
    Usage,
    check_common_params,
    fix_schema_alias,
    new_hex,
    normalise_json_schema_format,
    now,
    opt_type,
    parse_arguments,
    replace_tool_text,
    req_str,
    tool_text,
)
from .sse import SSEEvent, encode

API = "responses"
SEQURITY_FIELDS = ("user_provided_program", "context_vars", "session_id", "timeout")
MESSAGE_ROLES = ("user", "system", "developer", "assistant")
TEXT_PART_TYPES = ("input_text", "output_text", "text")
STREAM_TYPES = frozenset({
    "response.created", "response.in_progress", "response.completed", "response.failed", "response.incomplete",
    "response.output_item.added", "response.output_item.done", "response.content_part.added",
    "response.content_part.done", "response.output_text.delta", "response.output_text.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
})
FINAL_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})


# ================================================================================================ decoding


def parts_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(f"{where}: must be a string or an array of content items")
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise RequestError(f"{where}[{i}]: must be an object")
        ptype = part.get("type")
        if ptype in TEXT_PART_TYPES:
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestError(f"{where}[{i}].text: must be a string")
            texts.append(text)
        elif ptype == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
    return "".join(texts)


def decode_tools(tools: Any, where: str = "tools") -> list[ToolDef]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise RequestError(f"{where}: must be an array")
    out = []
    for i, tool in enumerate(tools):
        w = f"{where}[{i}]"
        if not isinstance(tool, dict):
            raise RequestError(f"{w}: must be an object")
        if tool.get("type") != "function":
            continue  # built-in / mcp / custom tools: forwarded untouched, not function tools
        name = req_str(tool, "name", f"{w}.")
        params = tool.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise RequestError(f"{w}.parameters: must be an object")
        desc = tool.get("description")
        if desc is not None and not isinstance(desc, str):
            raise RequestError(f"{w}.description: must be a string")
        out.append(ToolDef(name, desc or "", params or {}))
    return out


def item_kind(item: Mapping) -> str | None:
    """An input item's kind: its ``type``, falling back to ``message`` when it only has a ``role``."""
    itype = item.get("type")
    if itype is not None:
        return itype
    return "message" if "role" in item else None


def decode_input(input_: Any) -> list[Turn]:
    if input_ is None:
        return []
    if isinstance(input_, str):
        return [Turn("user", input_)]
    if not isinstance(input_, list):
        raise RequestError("input: must be a string or an array of items")
    turns: list[Turn] = []
    for i, item in enumerate(input_):
        w = f"input[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{w}: must be an object")
        kind = item_kind(item)
        if kind is None:
            raise RequestError(f"{w}.type: field required")
        if kind == "message":
            role = item.get("role")
            if role is None:
                raise RequestError(f"{w}.role: field required")
            if role not in MESSAGE_ROLES:
                raise RequestError(f"{w}.role: must be one of {', '.join(MESSAGE_ROLES)}")
            if "content" not in item:
                raise RequestError(f"{w}.content: field required")
            text = parts_text(item["content"], f"{w}.content")
            if role == "assistant":
                if turns and turns[-1].role == "assistant" and not turns[-1].tool_calls:
                    turns[-1].text += text
                else:
                    turns.append(Turn("assistant", text))
            else:
                turns.append(Turn("system" if role in ("system", "developer") else "user", text))
        elif kind == "function_call":
            call_id = req_str(item, "call_id", f"{w}.")
            name = req_str(item, "name", f"{w}.")
            args, raw = parse_arguments(item.get("arguments"))
            call = ToolCall(call_id, name, args, raw)
            if turns and turns[-1].role == "assistant":
                turns[-1].tool_calls.append(call)
            else:
                turns.append(Turn("assistant", "", [call]))
        elif kind == "function_call_output":
            call_id = req_str(item, "call_id", f"{w}.")
            output = item.get("output")
            if output is None:
                raise RequestError(f"{w}.output: field required")
            result = ToolResult(call_id, parts_text(output, f"{w}.output"))
            if turns and turns[-1].role == "tool":
                turns[-1].tool_results.append(result)
            else:
                turns.append(Turn("tool", "", [], [result]))
        # other item kinds (reasoning, mcp_*, item_reference, …) are kept in the body only
    return turns


def decode_request(body: Any) -> DecodedRequest:
    """Validate a Responses body and decode it (RequestError names the offending field)."""
    if not isinstance(body, dict):
        raise RequestError("Request body must be a JSON object", 400)
    model = req_str(body, "model", "")
    check_common_params(body)
    opt_type(body, "max_output_tokens", int, "an integer")
    turns = decode_input(body.get("input"))
    instructions = body.get("instructions")
    if instructions is not None:
        if isinstance(instructions, str):
            text = instructions
        elif isinstance(instructions, list):
            text = "\n\n".join(t.text for t in decode_input(instructions) if t.text)
        else:
            raise RequestError("instructions: must be a string")
        turns.insert(0, Turn("system", text))
    tools = decode_tools(body.get("tools"))
    prev = opt_type(body, "previous_response_id", str, "a string")
    text_cfg = opt_type(body, "text", dict, "an object")
    response_format = None
    if text_cfg and text_cfg.get("format") is not None:
        response_format = normalise_json_schema_format(text_cfg["format"], "text.format")
    return DecodedRequest(api=API, model=model, stream=bool(body.get("stream")), tools=tools, turns=turns,
                          body=body, response_format=response_format, previous_response_id=prev)


def upstream_body(body: Mapping, *, stream: bool | None = None) -> dict:
    """Copy of a client body fit for OpenAI's Responses API (Sequrity fields dropped, ``schema_`` fixed)."""
    out = {k: v for k, v in body.items() if k not in SEQURITY_FIELDS}
    text_cfg = out.get("text")
    if isinstance(text_cfg, dict) and isinstance(text_cfg.get("format"), dict) and "schema_" in text_cfg["format"]:
        out["text"] = {**text_cfg, "format": fix_schema_alias(text_cfg["format"])}
    if stream is not None:
        out["stream"] = stream
    return out


def response_echo(body: Mapping) -> dict:
    """The request fields a Response object echoes (``tools`` etc. are required by the client, §10.2)."""
    tools = body.get("tools")
    out: dict[str, Any] = {
        "tools": [t for t in tools if isinstance(t, dict) and isinstance(t.get("type"), str)]
        if isinstance(tools, list) else [],
        "tool_choice": body.get("tool_choice") if isinstance(body.get("tool_choice"), (str, dict)) else "auto",
        "parallel_tool_calls": body["parallel_tool_calls"]
        if isinstance(body.get("parallel_tool_calls"), bool) else True,
    }
    for key, types in (("instructions", str), ("previous_response_id", str), ("temperature", (int, float)),
                       ("top_p", (int, float)), ("max_output_tokens", int), ("metadata", dict)):
        value = body.get(key)
        if isinstance(value, types) and not isinstance(value, bool):
            out[key] = value
    return out


# ================================================================================================ encoding


def usage_dict(usage: Usage | None) -> dict:
    u = usage or Usage()
    return {"input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.total_tokens}


def message_item(text: str, *, id: str | None = None, status: str = "completed") -> dict:
    return {"type": "message", "id": id or f"msg_{new_hex()}", "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def function_call_item(call: ToolCall, *, id: str | None = None, status: str = "completed") -> dict:
    return {"type": "function_call", "id": id or f"fc_{new_hex()}", "call_id": call.id, "name": call.name,
            "arguments": call.arguments_json(), "status": status}


def response_object(output: list[dict], *, model: str, id: str | None = None, status: str = "completed",
                    usage: Usage | None = None, created: float | None = None, error: dict | None = None,
                    incomplete_details: dict | None = None, extra: dict | None = None) -> dict:
    out: dict[str, Any] = {
        "id": id or f"resp_{new_hex()}", "object": "response", "created_at": created or now(),
        "model": model, "status": status, "output": output, "error": error,
        "incomplete_details": incomplete_details, "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [],
    }
    if usage is not None:
        out["usage"] = usage_dict(usage)
    if extra:
        out.update(extra)
    return out


def text_answer(text: str, *, model: str, id: str | None = None, usage: Usage | None = None,
                created: float | None = None, failed: bool = False, error: dict | None = None,
                extra: dict | None = None, **_: Any) -> dict:
    """A final answer: one message item; ``status`` ``failed`` (and ``error`` if given) when ``failed``."""
    return response_object([message_item(text)], model=model, id=id, status="failed" if failed else "completed",
                           usage=usage, created=created, error=error if failed else None, extra=extra)


def tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None, usage: Usage | None = None,
                     created: float | None = None, text: str | None = None, extra: dict | None = None,
                     **_: Any) -> dict:
    output = ([message_item(text)] if text else []) + [function_call_item(c) for c in calls]
    return response_object(output, model=model, id=id, usage=usage, created=created, extra=extra)


class ResponsesEmitter:
    """Builds a Responses event stream with a monotonic ``sequence_number`` (from 0) and tracks the output."""

    def __init__(self, *, model: str, id: str | None = None, created: float | None = None,
                 extra: dict | None = None) -> None:
        self.seq = 0
        self.output: list[dict] = []
        self.base = response_object([], model=model, id=id, status="in_progress", created=created, extra=extra)
        self.started = False
        self.finished = False
        self._msg: dict | None = None
        self._msg_index = -1

    def event(self, etype: str, **fields: Any) -> bytes:
        obj = {"type": etype, "sequence_number": self.seq, **fields}
        self.seq += 1
        return encode(obj, etype)

    def snapshot(self, status: str, **fields: Any) -> dict:
        return {**self.base, "status": status, "output": list(self.output), **fields}

    def start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        snap = self.snapshot("in_progress")
        return [self.event("response.created", response=snap), self.event("response.in_progress", response=snap)]

    def open_message(self, item_id: str | None = None) -> list[bytes]:
        if self._msg is not None:
            return []
        out = self.start()
        self._msg = {"type": "message", "id": item_id or f"msg_{new_hex()}", "role": "assistant",
                     "status": "in_progress", "content": []}
        self._msg_index = len(self.output)
        self.output.append(self._msg)
        mid, idx = self._msg["id"], self._msg_index
        out.append(self.event("response.output_item.added", output_index=idx, item=dict(self._msg, content=[])))
        part = {"type": "output_text", "text": "", "annotations": []}
        self._msg["content"].append(part)
        out.append(self.event("response.content_part.added", item_id=mid, output_index=idx, content_index=0,
                              part=dict(part)))
        return out

    def text_delta(self, text: str) -> list[bytes]:
        out = self.open_message()
        assert self._msg is not None
        self._msg["content"][0]["text"] += text
        out.append(self.event("response.output_text.delta", item_id=self._msg["id"],
                              output_index=self._msg_index, content_index=0, delta=text, logprobs=[]))
        return out

    def close_message(self) -> list[bytes]:
        if self._msg is None:
            return []
        msg, idx = self._msg, self._msg_index
        self._msg = None
        part = msg["content"][0]
        msg["status"] = "completed"
        return [
            self.event("response.output_text.done", item_id=msg["id"], output_index=idx, content_index=0,
                       text=part["text"], logprobs=[]),
            self.event("response.content_part.done", item_id=msg["id"], output_index=idx, content_index=0,
                       part=dict(part)),
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
        out.append(self.event("response.function_call_arguments.delta", item_id=item["id"], output_index=idx,
                              delta=args))
        out.append(self.event("response.function_call_arguments.done", item_id=item["id"], output_index=idx,
                              name=call.name, arguments=args))
        item["status"] = "completed"
        out.append(self.event("response.output_item.done", output_index=idx, item=item))
        return out

    def finish(self, status: str = "completed", *, usage: Usage | None = None, error: dict | None = None,
               incomplete_details: dict | None = None) -> list[bytes]:
        if self.finished:
            return []
        out = self.start() + self.close_message()
        self.finished = True
        snap = self.snapshot(status, error=error, incomplete_details=incomplete_details,
                             completed_at=now() if status == "completed" else None)
        if usage is not None:
            snap["usage"] = usage_dict(usage)
        etype = {"completed": "response.completed", "failed": "response.failed"}.get(status, "response.incomplete")
        out.append(self.event(etype, response=snap))
        return out


def stream_text_answer(text: str, *, model: str, id: str | None = None, usage: Usage | None = None,
                       created: float | None = None, failed: bool = False, error: dict | None = None,
                       extra: dict | None = None, **_: Any) -> list[bytes]:
    """created → in_progress → item/part added → text delta → done events → completed|failed (§12.4)."""
    em = ResponsesEmitter(model=model, id=id, created=created, extra=extra)
    return em.start() + em.message(text) + em.finish("failed" if failed else "completed", usage=usage,
                                                      error=error if failed else None)


def stream_tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None,
                            usage: Usage | None = None, created: float | None = None, text: str | None = None,
                            extra: dict | None = None, **_: Any) -> list[bytes]:
    em = ResponsesEmitter(model=model, id=id, created=created, extra=extra)
    out = em.start()
    if text:
        out += em.message(text)
    for c in calls:
        out += em.function_call(c)
    return out + em.finish("completed", usage=usage)


# ================================================================================ single-LLM pass-through


def _usage_from(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    return Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0))


STATUSES = frozenset({"completed", "failed", "in_progress", "cancelled", "queued", "incomplete"})


def sanitize_answer(answer: dict, *, echo: Mapping | None = None) -> dict:
    """Make an upstream Response safe for strict clients (RSP-1…RSP-7), in place: required top-level fields
    filled (from ``echo`` = ``response_echo(body)`` when given), ``status``/``error``/``incomplete_details``
    kept in the client's vocabulary, usage details completed, tools reduced to objects with a ``type``."""
    answer.setdefault("object", "response")
    if not isinstance(answer.get("created_at"), (int, float)):
        answer["created_at"] = now()
    for key, default in (("tools", []), ("tool_choice", "auto"), ("parallel_tool_calls", True)):
        if answer.get(key) is None:
            answer[key] = (echo or {}).get(key, default)
    answer["tools"] = [t for t in answer["tools"] if isinstance(t, dict) and isinstance(t.get("type"), str)]
    if not isinstance(answer.get("output"), list):
        answer["output"] = []
    if answer.get("status") is not None and answer["status"] not in STATUSES:
        answer["status"] = "completed"
    err = answer.get("error")
    if err is not None:
        if isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str):
            pass
        else:
            e = err if isinstance(err, dict) else {"message": err}
            answer["error"] = {"code": str(e.get("code") or "server_error"), "message": str(e.get("message") or e)}
    inc = answer.get("incomplete_details")
    if isinstance(inc, dict) and inc.get("reason") not in (None, "max_output_tokens", "content_filter"):
        answer["incomplete_details"] = {"reason": None}
    usage = answer.get("usage")
    if isinstance(usage, dict):
        if not isinstance(usage.get("input_tokens_details"), dict):
            usage["input_tokens_details"] = {"cached_tokens": 0}
        usage["input_tokens_details"].setdefault("cached_tokens", 0)
        if not isinstance(usage.get("output_tokens_details"), dict):
            usage["output_tokens_details"] = {"reasoning_tokens": 0}
        usage["output_tokens_details"].setdefault("reasoning_tokens", 0)
        for key in ("input_tokens", "output_tokens"):
            usage[key] = int(usage.get(key) or 0)
        usage.setdefault("total_tokens", usage["input_tokens"] + usage["output_tokens"])
    elif usage is not None:
        del answer["usage"]
    return answer


def extract_usage(answer: Mapping) -> Usage:
    return _usage_from(answer.get("usage"))


def extract_text(answer: Mapping) -> str:
    texts = []
    for item in answer.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(part.get("text") or "")
    return "".join(texts)


def extract_tool_calls(answer: Mapping) -> list[ToolCall]:
    out = []
    for item in answer.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "function_call":
            args, raw = parse_arguments(item.get("arguments"))
            out.append(ToolCall(item.get("call_id") or "", item.get("name") or "", args, raw))
    return out


def filter_tool_calls(answer: dict, allowed_ids: Collection[str], denial_text: str | None = None) -> dict:
    """Drop ``function_call`` items whose upstream ``call_id`` is not allowed; add a message with
    ``denial_text``. Mutates and returns ``answer``."""
    output = answer.get("output") or []
    kept = [it for it in output
            if not (isinstance(it, dict) and it.get("type") == "function_call"
                    and it.get("call_id") not in allowed_ids)]
    if len(kept) < len(output):
        if denial_text:
            kept.append(message_item(denial_text))
        answer["output"] = kept
    return answer


def rewrite_answer_ids(answer: dict, new_id: NewId) -> dict:
    for item in answer.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "function_call" and item.get("call_id"):
            item["call_id"] = new_id(item["call_id"])
    return answer


def rewrite_ids_in_request(body: Mapping, mapping: Mapping[str, str]) -> dict:
    """Copy of ``body`` with our ``call_id``s (function_call / function_call_output items) mapped back."""
    items = body.get("input")
    if not mapping or not isinstance(items, list):
        return dict(body)
    changed = False
    new_items = []
    for item in items:
        if isinstance(item, dict) and item.get("call_id") in mapping \
                and item.get("type") in ("function_call", "function_call_output"):
            item = {**item, "call_id": mapping[item["call_id"]]}
            changed = True
        new_items.append(item)
    out = dict(body)
    if changed:
        out["input"] = new_items
    return out


def rewrite_tool_results(body: dict, fn: Callable[[str, str], str | None]) -> dict:
    """Copy of ``body`` whose ``function_call_output`` text is ``fn(call_id, text)`` (copy-on-write)."""
    items = body.get("input")
    if not isinstance(items, list):
        return body
    out, changed = [], False
    for it in items:
        if isinstance(it, dict) and it.get("type") == "function_call_output":
            text = tool_text(it.get("output"))
            new = fn(str(it.get("call_id") or ""), text) if text is not None else None
            if new is not None and new != text:
                it, changed = {**it, "output": replace_tool_text(it.get("output"), new)}, True
        out.append(it)
    return {**body, "input": out} if changed else body


def rewrite_call_arguments(body: dict, fn: Callable[[str, Any], Any]) -> dict:
    """Copy of ``body`` whose ``function_call`` items' ``arguments`` (a JSON string) are ``fn(call_id, raw)``
    (None keeps them; copy-on-write). Every tool call of the input is passed to ``fn``, in order."""
    items = body.get("input")
    if not isinstance(items, list):
        return body
    out, changed = [], False
    for it in items:
        if isinstance(it, dict) and it.get("type") == "function_call" and it.get("arguments") is not None:
            new = fn(str(it.get("call_id") or ""), it["arguments"])
            if new is not None and new != it["arguments"]:
                it, changed = {**it, "arguments": new}, True
        out.append(it)
    return {**body, "input": out} if changed else body


def rewrite_answer_arguments(answer: dict, fn: Callable[[str, str, dict], dict | None]) -> dict:
    """Replace proposed ``function_call`` arguments by ``fn(call_id, name, args)`` (None keeps them)."""
    for item in answer.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "function_call":
            args, _ = parse_arguments(item.get("arguments"))
            new = fn(item.get("call_id", ""), item.get("name", ""), args)
            if new is not None:
                item["arguments"] = dumps_str(new)
    return answer


class ResponsesStreamRelay:
    """Single-LLM pass-through of an upstream Responses stream (see ``sse.StreamRelay``).

    Every forwarded event is re-sequenced (``sequence_number`` from 0) and only the 17 event types the client
    parses pass; others (annotations, web-search progress, ``error`` → ends the stream with
    ``response.failed``) are dropped. ``function_call`` items (all their events, by ``output_index``) are
    held back until the final ``response.completed``/``incomplete``/``failed`` event; then the relay asks
    for a decision, emits the allowed calls (our ``call_id``s) as complete items after the forwarded ones, an
    optional message item with the denial text, and the final event whose ``response.output`` lists the
    forwarded items, the allowed calls and the denial message, in that (emitted) order.
    """

    def __init__(self, new_id: NewId, *, model: str | None = None) -> None:
        self.new_id = new_id
        self.usage = Usage()
        self.text = ""
        self.tool_calls: list[ToolCall] = []
        self.denied: list[ToolCall] = []
        self.id_map: dict[str, str] = {}
        self.status: str | None = None
        self._em = ResponsesEmitter(model=model or "")
        self._held: dict[int, dict] = {}
        self._held_order: list[int] = []
        self._index_map: dict[int, int] = {}
        self._next_index = 0
        self._final: dict | None = None
        self._forwarded: list[dict] = []
        self._awaiting = False
        self._backlog: list[SSEEvent | None] = []
        self._done = False

    @property
    def awaiting_decision(self) -> bool:
        return self._awaiting

    @property
    def done(self) -> bool:
        return self._done

    @property
    def response_id(self) -> str | None:
        """The id of the response the client receives (to find the session by ``previous_response_id``)."""
        final = (self._final or {}).get("response") if isinstance(self._final, dict) else None
        rid = (final or {}).get("id") if isinstance(final, dict) else None
        return rid or self._em.base.get("id")

    @property
    def pending(self) -> list[ToolCall]:
        out = []
        for idx in self._held_order:
            item = self._held[idx]
            if not item.get("call_id"):
                item["call_id"] = f"call_{new_hex()}"
            args, raw = parse_arguments(item.get("arguments"))
            out.append(ToolCall(item["call_id"], item.get("name") or "", args, raw))
        return out

    def feed(self, ev: SSEEvent) -> list[bytes]:
        if self._awaiting:
            self._backlog.append(ev)
            return []
        if self._done:
            return []
        try:
            obj = loads(ev.data)
        except ValueError:
            return []
        if not isinstance(obj, dict):
            return []
        etype = obj.get("type") or ev.event
        if etype == "error":
            return self.abort(str(obj.get("message") or (obj.get("error") or {}).get("message") or "error"))
        if etype not in STREAM_TYPES:
            return []
        em = self._em
        if etype in ("response.created", "response.in_progress"):
            resp = obj.get("response") or {}
            em.base = {**resp, "output": [], "status": resp.get("status") or "in_progress"}
            em.started = True
            return [self._resequence(obj, etype)]
        if etype in FINAL_TYPES:
            resp = obj.get("response") or {}
            self.usage = _usage_from(resp.get("usage"))
            self.status = resp.get("status")
            self._final = obj
            if self._held:
                self._awaiting = True
                return []
            return self._emit_final()
        idx = obj.get("output_index")
        if etype == "response.output_item.added":
            item = obj.get("item") or {}
            if item.get("type") == "function_call":
                self._held[idx] = dict(item)
                self._held_order.append(idx)
                return []
            out_idx = self._next_index
            self._next_index += 1
            self._index_map[idx] = out_idx
            return [self._resequence(obj, etype, out_idx)]
        if idx in self._held:
            item = self._held[idx]
            if etype == "response.function_call_arguments.delta":
                item["arguments"] = (item.get("arguments") or "") + (obj.get("delta") or "")
            elif etype == "response.function_call_arguments.done" and isinstance(obj.get("arguments"), str):
                item["arguments"] = obj["arguments"]
            elif etype == "response.output_item.done" and isinstance(obj.get("item"), dict):
                self._held[idx] = {**item, **obj["item"]}
            return []
        if etype == "response.output_text.delta":
            self.text += obj.get("delta") or ""
        elif etype == "response.output_item.done" and isinstance(obj.get("item"), dict):
            self._forwarded.append(obj["item"])
        return [self._resequence(obj, etype, self._index_map.get(idx, idx) if idx is not None else None)]

    def decide(self, allowed_ids: Collection[str], denial_text: str | None = None) -> list[bytes]:
        if not self._awaiting:
            return []
        self._awaiting = False
        em = self._em
        calls = self.pending
        items = {c.id: self._held[idx] for c, idx in zip(calls, self._held_order, strict=True)}
        allowed = [c for c in calls if c.id in allowed_ids]
        self.denied = [c for c in calls if c.id not in allowed_ids]
        self._held.clear()
        self._held_order.clear()
        out: list[bytes] = []
        added: list[dict] = []
        for c in allowed:
            ours = self.new_id(c.id)
            self.id_map[ours] = c.id
            mine = ToolCall(ours, c.name, c.arguments, c.raw_arguments)
            self.tool_calls.append(mine)
            item_id = items[c.id].get("id")
            out += self._synth(lambda m=mine, iid=item_id: em.function_call(m, iid))
            added.append(em.output[-1])
        if denial_text and self.denied:
            self.text += denial_text if not self.text else "\n\n" + denial_text
            out += self._synth(lambda: em.message(denial_text))
            added.append(em.output[-1])
        out += self._emit_final(added)
        backlog, self._backlog = self._backlog, []
        for ev in backlog:
            out += self.end() if ev is None else self.feed(ev)
        return out

    def end(self) -> list[bytes]:
        if self._awaiting:
            self._backlog.append(None)
            return []
        if self._held:
            self._awaiting = True
            self._backlog.append(None)
            return []
        if self._done:
            return []
        return self.abort("The upstream stream ended before the response was complete")

    def abort(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._held.clear()
        self._held_order.clear()
        self._awaiting = False
        self._backlog.clear()
        em = self._em
        out = self._synth(lambda: em.message(message))
        self.text += message if not self.text else "\n\n" + message
        output = self._forwarded + [it for it in em.output if it is not None]
        snap = {**em.base, "status": "failed", "output": output,
                "error": {"code": "server_error", "message": message}}
        self.status = "failed"
        out.append(em.event("response.failed", response=snap))
        self._done = True
        return out

    # -- internals -------------------------------------------------------------------------------------

    def _synth(self, fn: Any) -> list[bytes]:
        """Run an emitter method so that its new items get output indices after everything forwarded.

        The emitter's ``output`` holds placeholders (``None``) for the forwarded items.
        """
        em = self._em
        em.started = True
        while len(em.output) < self._next_index:
            em.output.append(None)
        out = fn()
        self._next_index = len(em.output)
        return out

    def _resequence(self, obj: dict, etype: str, out_idx: int | None = None) -> bytes:
        obj = dict(obj)
        obj["sequence_number"] = self._em.seq
        self._em.seq += 1
        if out_idx is not None and "output_index" in obj:
            obj["output_index"] = out_idx
        return encode(obj, etype)

    def _emit_final(self, added: list[dict] | None = None) -> list[bytes]:
        obj = self._final or {"type": "response.completed",
                              "response": {**self._em.base, "status": "completed"}}
        etype = obj.get("type") or "response.completed"
        resp = dict(obj.get("response") or {})
        output = [it for it in resp.get("output") or []
                  if not (isinstance(it, dict) and it.get("type") == "function_call")]
        resp["output"] = output + (added or [])
        self._done = True
        return [self._resequence({**obj, "response": resp}, etype)]


# ============================================================ Responses through a chat-only provider


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
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"],
                                                             "detail": part.get("detail") or "auto"}})
        elif ptype == "input_file":
            f = {k: part[k] for k in ("file_id", "file_data", "filename") if part.get(k)}
            parts.append({"type": "file", "file": f})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def to_chat_request(body: Mapping, *, stream: bool | None = None) -> dict:
    """Translate a Responses request into a Chat Completions request (for ``sequrity_azure``)."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    input_ = body.get("input")
    if isinstance(input_, str):
        messages.append({"role": "user", "content": input_})
    elif isinstance(input_, list):
        for item in input_:
            if not isinstance(item, dict):
                continue
            kind = item_kind(item)
            if kind == "message":
                role = item.get("role")
                content = _chat_content(item.get("content"))
                if role == "assistant":
                    messages.append({"role": "assistant", "content": content if content else None})
                elif role in ("system", "developer", "user"):
                    messages.append({"role": role, "content": content})
            elif kind == "function_call":
                call = {"id": item.get("call_id"), "type": "function",
                        "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant":
                    last.setdefault("tool_calls", []).append(call)
                else:
                    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif kind == "function_call_output":
                output = item.get("output")
                messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                                 "content": output if isinstance(output, str) else _chat_content(output)})
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    tools = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters", "strict")
                                               if t.get(k) is not None}}
             for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    if tools:
        out["tools"] = tools
        tc = body.get("tool_choice")
        if isinstance(tc, str):
            out["tool_choice"] = tc
        elif isinstance(tc, dict) and tc.get("type") == "function" and tc.get("name"):
            out["tool_choice"] = {"type": "function", "function": {"name": tc["name"]}}
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    for key in ("temperature", "top_p", "user", "metadata", "service_tier", "store", "prompt_cache_key",
                "safety_identifier"):
        if body.get(key) is not None:
            out[key] = body[key]
    if isinstance(body.get("max_output_tokens"), int):
        out["max_completion_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        out["reasoning_effort"] = reasoning["effort"]
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            out["response_format"] = {"type": "json_object"}
        elif fmt.get("type") == "json_schema":
            schema = fmt.get("schema") if fmt.get("schema") is not None else fmt.get("schema_")
            js = {"name": fmt.get("name") or "output", "schema": schema or {}}
            if fmt.get("strict") is not None:
                js["strict"] = fmt["strict"]
            if fmt.get("description"):
                js["description"] = fmt["description"]
            out["response_format"] = {"type": "json_schema", "json_schema": js}
    if stream is None:
        stream = bool(body.get("stream"))
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _status_for_finish(finish: str | None) -> tuple[str, dict | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def from_chat_answer(answer: Mapping, *, model: str | None = None, id: str | None = None,
                     extra: dict | None = None) -> dict:
    """Translate a Chat Completions answer into a Response object (tool-call ids are kept as ``call_id``)."""
    text = _chat.extract_text(answer)
    calls = _chat.extract_tool_calls(answer)
    output = ([message_item(text)] if text else []) + [function_call_item(c) for c in calls]
    if not output:
        output = [message_item("")]
    choices = answer.get("choices") or []
    status, incomplete = _status_for_finish(choices[0].get("finish_reason") if choices else None)
    return response_object(output, model=model or answer.get("model") or "", id=id, status=status,
                           usage=_chat.extract_usage(answer), created=answer.get("created"),
                           incomplete_details=incomplete, extra=extra)


class ChatToResponsesRelay(_chat.ChatStreamRelay):
    """A Chat Completions upstream stream relayed as a Responses stream (``sequrity_azure``).

    Inherits the chat relay's hold-back / decision / id-rewriting behaviour; every chunk the chat relay
    would emit is translated into Responses events instead (text → one message item's text deltas; each
    released tool call → a complete ``function_call`` item; the end → ``response.completed`` /
    ``response.incomplete``; ``abort`` → ``response.failed``).
    """

    def __init__(self, new_id: NewId, *, model: str, id: str | None = None, extra: dict | None = None) -> None:
        super().__init__(new_id, include_usage=False, model=model)
        self._em = ResponsesEmitter(model=model, id=id, extra=extra)
        self._r_finish: str | None = None
        self.status: str | None = None

    @property
    def response_id(self) -> str | None:
        """The id of the response the client receives (to find the session by ``previous_response_id``)."""
        return self._em.base.get("id")

    def _emit(self, obj: dict, raw: str) -> list[bytes]:
        em = self._em
        out = em.start()
        for choice in (obj.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                out += em.text_delta(content)
            for tc in delta.get("tool_calls") or []:
                fn = tc.get("function") or {}
                args, rawargs = parse_arguments(fn.get("arguments"))
                out += em.function_call(ToolCall(tc.get("id") or "", fn.get("name") or "", args, rawargs))
            if choice.get("finish_reason"):
                self._r_finish = choice["finish_reason"]
        return out

    def _final(self) -> list[bytes]:
        status, incomplete = _status_for_finish(self._r_finish)
        self.status = status
        return self._em.finish(status, usage=self.usage, incomplete_details=incomplete)

    def _abort(self, message: str) -> list[bytes]:
        em = self._em
        self.text += message if not self.text else "\n\n" + message
        self._done = True
        self.status = "failed"
        out = em.start() + em.close_message() + em.message(message)
        return out + em.finish("failed", usage=self.usage, error={"code": "server_error", "message": message})


__all__ = [
    "API", "decode_request", "upstream_body", "response_echo", "text_answer", "tool_call_answer",
    "stream_text_answer", "stream_tool_call_answer", "ResponsesEmitter", "sanitize_answer", "extract_usage", "extract_text",
    "extract_tool_calls", "filter_tool_calls", "rewrite_answer_ids", "rewrite_ids_in_request",
    "ResponsesStreamRelay", "to_chat_request", "from_chat_answer", "ChatToResponsesRelay",
]
