"""Anthropic Messages (``…/v1/messages``): decode, encode, single-LLM pass-through helpers."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

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
    opt_type,
    parse_arguments,
    replace_tool_text,
    req_str,
    tool_text,
)
from .sse import SSEEvent, encode, encode_raw

API = "messages"
SEQURITY_FIELDS = ("user_provided_program", "context_vars", "session_id", "reasoning_effort", "timeout")
STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")
BLOCK_TYPES = frozenset({"text", "thinking", "redacted_thinking", "tool_use", "server_tool_use",
                         "web_search_tool_result"})
STREAM_BLOCK_TYPES = frozenset({"text", "thinking", "redacted_thinking", "tool_use", "server_tool_use"})
DELTA_TYPES = frozenset({"text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta"})
SERVICE_TIERS = frozenset({"standard", "priority", "batch"})
STREAM_TYPES = frozenset({"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                          "message_delta", "message_stop"})


# ================================================================================================ decoding


def blocks_text(content: Any, where: str) -> str:
    """String or list of blocks -> concatenated text of the ``text`` blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(f"{where}: must be a string or an array of content blocks")
    texts = []
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            raise RequestError(f"{where}[{i}]: must be an object")
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise RequestError(f"{where}[{i}].text: must be a string")
            texts.append(text)
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
        if tool.get("type") not in (None, "custom") and "input_schema" not in tool:
            continue  # a server tool (web_search_…, bash_…): forwarded, but not a client function tool
        name = req_str(tool, "name", f"{w}.")
        schema = tool.get("input_schema")
        if schema is None:
            raise RequestError(f"{w}.input_schema: field required")
        if not isinstance(schema, dict):
            raise RequestError(f"{w}.input_schema: must be an object")
        desc = tool.get("description")
        if desc is not None and not isinstance(desc, str):
            raise RequestError(f"{w}.description: must be a string")
        out.append(ToolDef(name, desc or "", schema))
    return out


def _tool_result_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return blocks_text(content, where)


def decode_messages(messages: Any) -> list[Turn]:
    if messages is None:
        raise RequestError("messages: field required")
    if not isinstance(messages, list):
        raise RequestError("messages: must be an array")
    if not messages:
        raise RequestError("messages: must contain at least one message")
    turns: list[Turn] = []
    for i, msg in enumerate(messages):
        w = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise RequestError(f"{w}: must be an object")
        role = msg.get("role")
        if role is None:
            raise RequestError(f"{w}.role: field required")
        if role not in ("user", "assistant"):
            raise RequestError(f"{w}.role: must be one of user, assistant")
        if "content" not in msg:
            raise RequestError(f"{w}.content: field required")
        content = msg["content"]
        if isinstance(content, str):
            turns.append(Turn(role, content))
            continue
        if not isinstance(content, list):
            raise RequestError(f"{w}.content: must be a string or an array of content blocks")
        texts: list[str] = []
        calls: list[ToolCall] = []
        results: list[ToolResult] = []
        for j, block in enumerate(content):
            wb = f"{w}.content[{j}]"
            if not isinstance(block, dict):
                raise RequestError(f"{wb}: must be an object")
            btype = block.get("type")
            if btype is None:
                raise RequestError(f"{wb}.type: field required")
            if btype == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise RequestError(f"{wb}.text: must be a string")
                texts.append(text)
            elif btype == "tool_use":
                cid = req_str(block, "id", f"{wb}.")
                name = req_str(block, "name", f"{wb}.")
                args, raw = parse_arguments(block.get("input"))
                calls.append(ToolCall(cid, name, args, raw))
            elif btype == "tool_result":
                cid = req_str(block, "tool_use_id", f"{wb}.")
                results.append(ToolResult(cid, _tool_result_text(block.get("content"), f"{wb}.content"),
                                          bool(block.get("is_error"))))
        if role == "assistant":
            turns.append(Turn("assistant", "".join(texts), calls))
        else:
            if results:
                turns.append(Turn("tool", "", [], results))
            if texts or not results:
                turns.append(Turn("user", "".join(texts)))
    return turns


def decode_request(body: Any) -> DecodedRequest:
    """Validate an Anthropic Messages body and decode it (RequestError names the offending field)."""
    if not isinstance(body, dict):
        raise RequestError("Request body must be a JSON object", 400)
    model = req_str(body, "model", "")
    if body.get("max_tokens") is None:
        raise RequestError("max_tokens: field required")
    mt = opt_type(body, "max_tokens", int, "an integer")
    if mt < 1:
        raise RequestError("max_tokens: must be >= 1")
    check_common_params(body)
    opt_type(body, "top_k", int, "an integer")
    turns = decode_messages(body.get("messages"))
    system = body.get("system")
    if system is not None:
        text = blocks_text(system, "system")
        turns.insert(0, Turn("system", text))
    tools = decode_tools(body.get("tools"))
    opt_type(body, "tool_choice", dict, "an object")
    oc = opt_type(body, "output_config", dict, "an object")
    response_format = None
    if oc and oc.get("format") is not None:
        response_format = normalise_json_schema_format(oc["format"], "output_config.format")
    program = opt_type(body, "user_provided_program", str, "a string")
    ctx = opt_type(body, "context_vars", dict, "an object")
    return DecodedRequest(api=API, model=model, stream=bool(body.get("stream")), tools=tools, turns=turns,
                          body=body, response_format=response_format, user_provided_program=program,
                          context_vars=ctx)


def _native_block(block: Any) -> Any:
    """Client-form thinking block (text in ``text``) -> Anthropic's native form; None to drop it."""
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return block
    if not block.get("signature"):
        return None  # Anthropic rejects unsigned thinking blocks; they are optional in history
    if "thinking" in block:
        return {k: v for k, v in block.items() if k != "text"}
    return {"type": "thinking", "thinking": block.get("text") or "", "signature": block["signature"]}


def upstream_body(body: Mapping, *, stream: bool | None = None) -> dict:
    """Copy of a client body fit for Anthropic: Sequrity-only and non-standard fields dropped, ``schema_``
    alias fixed, client-form thinking blocks converted (unsigned ones dropped)."""
    out = {k: v for k, v in body.items() if k not in SEQURITY_FIELDS}
    oc = out.get("output_config")
    if isinstance(oc, dict) and isinstance(oc.get("format"), dict) and "schema_" in oc["format"]:
        out["output_config"] = {**oc, "format": fix_schema_alias(oc["format"])}
    msgs = out.get("messages")
    if isinstance(msgs, list) and any(
        isinstance(m, dict) and isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") == "thinking" for b in m["content"]) for m in msgs
    ):
        new_msgs = []
        for m in msgs:
            if isinstance(m, dict) and isinstance(m.get("content"), list):
                blocks = [nb for nb in (_native_block(b) for b in m["content"]) if nb is not None]
                m = {**m, "content": blocks}
            new_msgs.append(m)
        out["messages"] = new_msgs
    if stream is not None:
        out["stream"] = stream
    return out


# ================================================================================================ encoding


def _usage(usage: Usage | None) -> dict:
    u = usage or Usage()
    return {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}


def wire_tool_use(calls: list[ToolCall]) -> list[dict]:
    return [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in calls]


def _message(content: list[dict], stop: str, *, model: str, id: str | None, usage: Usage | None,
             extra: dict | None) -> dict:
    out = {"id": id or f"msg_{new_hex()}", "type": "message", "role": "assistant", "model": model,
           "content": content, "stop_reason": stop, "stop_sequence": None, "usage": _usage(usage)}
    if extra:
        out.update(extra)
    return out


def text_answer(text: str, *, model: str, id: str | None = None, usage: Usage | None = None,
                stop_reason: str = "end_turn", extra: dict | None = None, **_: Any) -> dict:
    """A final assistant message (``stop_reason`` ``end_turn`` also for failures, control-api §9.2)."""
    return _message([{"type": "text", "text": text}], stop_reason, model=model, id=id, usage=usage, extra=extra)


def tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None, usage: Usage | None = None,
                     text: str | None = None, extra: dict | None = None, **_: Any) -> dict:
    content = ([{"type": "text", "text": text}] if text else []) + wire_tool_use(calls)
    return _message(content, "tool_use", model=model, id=id, usage=usage, extra=extra)


def _ev(obj: dict) -> bytes:
    return encode(obj, obj["type"])


def _message_start(mid: str, model: str, usage: Usage | None) -> bytes:
    u = usage or Usage()
    return _ev({"type": "message_start", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": u.prompt_tokens, "output_tokens": 0}}})


def _text_block(index: int, text: str) -> list[bytes]:
    return [
        _ev({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        _ev({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
        _ev({"type": "content_block_stop", "index": index}),
    ]


def _tool_block(index: int, call: ToolCall) -> list[bytes]:
    return [
        _ev({"type": "content_block_start", "index": index,
             "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}}),
        _ev({"type": "content_block_delta", "index": index,
             "delta": {"type": "input_json_delta", "partial_json": dumps_str(call.arguments)}}),
        _ev({"type": "content_block_stop", "index": index}),
    ]


def _message_end(stop: str, usage: Usage | None) -> list[bytes]:
    u = usage or Usage()
    return [
        _ev({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": u.completion_tokens}}),
        _ev({"type": "message_stop"}),
    ]


def stream_text_answer(text: str, *, model: str, id: str | None = None, usage: Usage | None = None,
                       stop_reason: str = "end_turn", **_: Any) -> list[bytes]:
    """The six-event sequence of control-api §12.3 for a text answer (no ping)."""
    return ([_message_start(id or f"msg_{new_hex()}", model, usage)] + _text_block(0, text)
            + _message_end(stop_reason, usage))


def stream_tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None,
                            usage: Usage | None = None, text: str | None = None, **_: Any) -> list[bytes]:
    out = [_message_start(id or f"msg_{new_hex()}", model, usage)]
    index = 0
    if text:
        out += _text_block(0, text)
        index = 1
    for i, c in enumerate(calls):
        out += _tool_block(index + i, c)
    return out + _message_end("tool_use", usage)


# ================================================================================ single-LLM pass-through


def _usage_from(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    prompt = int(u.get("input_tokens") or 0) + int(u.get("cache_creation_input_tokens") or 0) \
        + int(u.get("cache_read_input_tokens") or 0)
    return Usage(prompt, int(u.get("output_tokens") or 0))


def normalise_stop(stop: Any) -> str | None:
    """A stop reason outside the client's vocabulary (§9.2) -> the nearest allowed one."""
    if stop is None or stop in STOP_REASONS:
        return stop
    return "max_tokens" if "token" in str(stop) or "window" in str(stop) else "end_turn"


def sanitize_answer(answer: dict) -> dict:
    """Make an upstream Message safe for strict clients (MSG-1…MSG-6), in place: thinking blocks get their
    text in ``text``; block types the client cannot parse are dropped; ``stop_reason`` and
    ``usage.service_tier`` are kept inside the client's vocabulary."""
    content = answer.get("content")
    if isinstance(content, list):
        kept = []
        for b in content:
            if not isinstance(b, dict) or b.get("type") not in BLOCK_TYPES:
                continue
            if b["type"] == "thinking" and not isinstance(b.get("text"), str):
                b = {**b, "text": b.get("thinking") or ""}
            kept.append(b)
        answer["content"] = kept
    answer["stop_reason"] = normalise_stop(answer.get("stop_reason"))
    usage = answer.get("usage")
    if isinstance(usage, dict) and usage.get("service_tier") is not None \
            and usage["service_tier"] not in SERVICE_TIERS:
        usage.pop("service_tier")
    return answer


def extract_usage(answer: Mapping) -> Usage:
    return _usage_from(answer.get("usage"))


def extract_text(answer: Mapping) -> str:
    return "".join(b.get("text") or "" for b in answer.get("content") or []
                   if isinstance(b, dict) and b.get("type") == "text")


def extract_tool_calls(answer: Mapping) -> list[ToolCall]:
    out = []
    for b in answer.get("content") or []:
        if isinstance(b, dict) and b.get("type") == "tool_use":
            args, raw = parse_arguments(b.get("input"))
            out.append(ToolCall(b.get("id") or "", b.get("name") or "", args, raw))
    return out


def filter_tool_calls(answer: dict, allowed_ids: Collection[str], denial_text: str | None = None) -> dict:
    """Drop ``tool_use`` blocks whose upstream id is not allowed; add ``denial_text`` as a text block.

    ``stop_reason`` becomes ``end_turn`` when no tool_use survives. Mutates and returns ``answer``.
    """
    content = answer.get("content") or []
    uses = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
    if not uses:
        return answer
    kept = [b for b in content
            if not (isinstance(b, dict) and b.get("type") == "tool_use" and b.get("id") not in allowed_ids)]
    if denial_text and len(kept) < len(content):
        kept.append({"type": "text", "text": denial_text})
    answer["content"] = kept
    if not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in kept) \
            and answer.get("stop_reason") == "tool_use":
        answer["stop_reason"] = "end_turn"
    return answer


def rewrite_answer_ids(answer: dict, new_id: NewId) -> dict:
    for b in answer.get("content") or []:
        if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("id"):
            b["id"] = new_id(b["id"])
    return answer


def rewrite_ids_in_request(body: Mapping, mapping: Mapping[str, str]) -> dict:
    """Copy of ``body`` with our tool ids (``tool_use.id``, ``tool_result.tool_use_id``) mapped back."""
    messages = body.get("messages")
    if not mapping or not isinstance(messages, list):
        return dict(body)
    changed = False
    new_messages = []
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, list):
            new_messages.append(msg)
            continue
        new_content = []
        touched = False
        for b in content:
            if isinstance(b, dict):
                if b.get("type") == "tool_use" and b.get("id") in mapping:
                    b = {**b, "id": mapping[b["id"]]}
                    touched = True
                elif b.get("type") == "tool_result" and b.get("tool_use_id") in mapping:
                    b = {**b, "tool_use_id": mapping[b["tool_use_id"]]}
                    touched = True
            new_content.append(b)
        if touched:
            msg = {**msg, "content": new_content}
            changed = True
        new_messages.append(msg)
    out = dict(body)
    if changed:
        out["messages"] = new_messages
    return out


def rewrite_tool_results(body: dict, fn: Callable[[str, str], str | None]) -> dict:
    """Copy of ``body`` whose ``tool_result`` blocks' text is ``fn(tool_use_id, text)`` (copy-on-write)."""
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return body
    out, changed = [], False
    for m in msgs:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            blocks = []
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    text = tool_text(b.get("content")) if b.get("content") is not None else ""
                    new = fn(str(b.get("tool_use_id") or ""), text) if text is not None else None
                    if new is not None and new != text:
                        b, changed = {**b, "content": replace_tool_text(b.get("content"), new)}, True
                blocks.append(b)
            m = {**m, "content": blocks}
        out.append(m)
    return {**body, "messages": out} if changed else body


def rewrite_call_arguments(body: dict, fn: Callable[[str, Any], Any]) -> dict:
    """Copy of ``body`` whose ``tool_use`` blocks' ``input`` (an object) is ``fn(id, input)`` (None keeps it;
    copy-on-write). Every tool call of the history is passed to ``fn``, in order."""
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return body
    out, changed = [], False
    for m in msgs:
        content = m.get("content") if isinstance(m, dict) and m.get("role") == "assistant" else None
        if isinstance(content, list):
            blocks, touched = [], False
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("input") is not None:
                    new = fn(str(b.get("id") or ""), b["input"])
                    if new is not None and new != b["input"]:
                        b, touched = {**b, "input": new}, True
                blocks.append(b)
            if touched:
                m, changed = {**m, "content": blocks}, True
        out.append(m)
    return {**body, "messages": out} if changed else body


def rewrite_answer_arguments(answer: dict, fn: Callable[[str, str, dict], dict | None]) -> dict:
    """Replace proposed ``tool_use`` inputs by ``fn(id, name, input)`` (None keeps them); in place."""
    for block in answer.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
            new = fn(block.get("id", ""), block.get("name", ""), block["input"])
            if new is not None:
                block["input"] = new
    return answer


class MessagesStreamRelay:
    """Single-LLM pass-through of an upstream Anthropic stream (see ``sse.StreamRelay``).

    ``message_start`` and text/thinking blocks are forwarded as they arrive; ``ping`` (and any type outside the
    six the client can parse) is dropped; an upstream ``error`` event ends the stream well-formed. ``tool_use``
    blocks are held back until complete; at ``message_delta`` (or end of stream) the relay asks for a decision,
    then emits the allowed blocks (our ids, fresh contiguous indices after the forwarded blocks), an optional
    text block with the denial text, and ``message_delta`` with ``stop_reason`` ``tool_use`` if a call
    survived, else ``end_turn``. Block indices are renumbered so the client sees 0, 1, 2, … in order.
    """

    def __init__(self, new_id: NewId, *, model: str | None = None) -> None:
        self.new_id = new_id
        self.usage = Usage()
        self.text = ""
        self.tool_calls: list[ToolCall] = []
        self.denied: list[ToolCall] = []
        self.id_map: dict[str, str] = {}
        self.stop_reason: str | None = None
        self._model = model or ""
        self._id = f"msg_{new_hex()}"
        self._held: dict[int, dict] = {}
        self._held_order: list[int] = []
        self._dropped: set[int] = set()
        self._index_map: dict[int, int] = {}
        self._next_index = 0
        self._open: set[int] = set()
        self._awaiting = False
        self._delta_template: dict | None = None
        self._backlog: list[SSEEvent | None] = []
        self._started = False
        self._done = False

    @property
    def awaiting_decision(self) -> bool:
        return self._awaiting

    @property
    def done(self) -> bool:
        return self._done

    @property
    def pending(self) -> list[ToolCall]:
        out = []
        for idx in self._held_order:
            h = self._held[idx]
            args, raw = parse_arguments(h["json"] or h["input"] or "{}")
            out.append(ToolCall(h["id"], h["name"], args, raw))
        return out

    def feed(self, ev: SSEEvent) -> list[bytes]:
        if self._awaiting:
            self._backlog.append(ev)
            return []
        try:
            obj = loads(ev.data)
        except ValueError:
            return []
        if not isinstance(obj, dict):
            return []
        etype = obj.get("type") or ev.event
        if etype == "error":
            err = obj.get("error") or {}
            return self.abort(str(err.get("message") if isinstance(err, dict) else err))
        if etype not in STREAM_TYPES:
            return []  # ping and future event types the client cannot parse
        if etype == "message_start":
            msg = obj.get("message") or {}
            self._id = msg.get("id") or self._id
            self._model = msg.get("model") or self._model
            self.usage = _usage_from(msg.get("usage"))
            self._started = True
            tier = (msg.get("usage") or {}).get("service_tier") if isinstance(msg.get("usage"), dict) else None
            if (tier is not None and tier not in SERVICE_TIERS) or "\n" in ev.data:
                usage = {k: v for k, v in (msg.get("usage") or {}).items() if k != "service_tier"}
                return [encode({**obj, "message": {**msg, "usage": usage}}, etype)]
            return [encode_raw(ev.data, etype)]
        if etype == "content_block_start":
            idx = obj.get("index", 0)
            block = obj.get("content_block") or {}
            if block.get("type") not in STREAM_BLOCK_TYPES:
                self._dropped.add(idx)  # e.g. web_fetch_tool_result: the client cannot parse it
                return []
            if block.get("type") == "tool_use":
                self._held[idx] = {"id": block.get("id") or f"toolu_{new_hex()}", "name": block.get("name") or "",
                                   "json": "", "input": dumps_str(block["input"]) if block.get("input") else ""}
                self._held_order.append(idx)
                return []
            out_idx = self._next_index
            self._next_index += 1
            self._index_map[idx] = out_idx
            self._open.add(out_idx)
            return self._forward(obj, ev.data, etype, idx, out_idx)
        if etype == "content_block_delta":
            idx = obj.get("index", 0)
            delta = obj.get("delta") or {}
            if idx in self._dropped or delta.get("type") not in DELTA_TYPES:
                return []
            if idx in self._held:
                if delta.get("type") == "input_json_delta":
                    self._held[idx]["json"] += delta.get("partial_json") or ""
                return []
            if delta.get("type") == "text_delta":
                self.text += delta.get("text") or ""
            return self._forward(obj, ev.data, etype, idx, self._index_map.get(idx, idx))
        if etype == "content_block_stop":
            idx = obj.get("index", 0)
            if idx in self._held or idx in self._dropped:
                return []
            out_idx = self._index_map.get(idx, idx)
            self._open.discard(out_idx)
            return self._forward(obj, ev.data, etype, idx, out_idx)
        if etype == "message_delta":
            u = obj.get("usage")
            if isinstance(u, dict):
                if u.get("output_tokens") is not None:
                    self.usage.completion_tokens = int(u["output_tokens"])
                if u.get("input_tokens") is not None:
                    self.usage.prompt_tokens = _usage_from(u).prompt_tokens
            delta = obj.get("delta") or {}
            stop = delta.get("stop_reason")
            if stop is not None and stop not in STOP_REASONS:
                obj["delta"] = {**delta, "stop_reason": normalise_stop(stop)}
            self.stop_reason = obj["delta"].get("stop_reason") if isinstance(obj.get("delta"), dict) \
                and obj["delta"].get("stop_reason") else self.stop_reason
            if self._held:
                self._delta_template = obj
                self._awaiting = True
                return []
            if obj.get("delta") is not delta or "\n" in ev.data:
                return [encode(obj, etype)]
            return [encode_raw(ev.data, etype)]
        # message_stop
        if self._held:
            self._awaiting = True
            self._backlog.append(ev)
            return []
        self._done = True
        return [encode_raw(ev.data, etype)]

    def decide(self, allowed_ids: Collection[str], denial_text: str | None = None) -> list[bytes]:
        if not self._awaiting:
            return []
        self._awaiting = False
        calls = self.pending
        allowed = [c for c in calls if c.id in allowed_ids]
        self.denied = [c for c in calls if c.id not in allowed_ids]
        self._held.clear()
        self._held_order.clear()
        out: list[bytes] = []
        for c in allowed:
            ours = self.new_id(c.id)
            self.id_map[ours] = c.id
            mine = ToolCall(ours, c.name, c.arguments, c.raw_arguments)
            self.tool_calls.append(mine)
            out += _tool_block(self._next_index, mine)
            self._next_index += 1
        if denial_text and self.denied:
            out += self._text(denial_text)
        stop = "tool_use" if allowed else ("end_turn" if self.stop_reason in (None, "tool_use")
                                           else self.stop_reason)
        self.stop_reason = stop
        tpl = self._delta_template or {"type": "message_delta", "delta": {"stop_sequence": None},
                                       "usage": {"output_tokens": self.usage.completion_tokens}}
        self._delta_template = None
        out.append(_ev({**tpl, "delta": {**(tpl.get("delta") or {}), "stop_reason": stop}}))
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
        # Upstream ended without message_stop: close what is open and end well-formed.
        out = self._close_open()
        if not self._started:
            out.insert(0, _message_start(self._id, self._model, self.usage))
            self._started = True
        out += _message_end(self.stop_reason or "end_turn", self.usage)
        self._done = True
        return out

    def abort(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._held.clear()
        self._held_order.clear()
        self._awaiting = False
        self._backlog.clear()
        out: list[bytes] = []
        if not self._started:
            out.append(_message_start(self._id, self._model, self.usage))
            self._started = True
        out += self._close_open()
        out += self._text(message)
        self.stop_reason = "end_turn"
        out += _message_end("end_turn", self.usage)
        self._done = True
        return out

    # -- internals -------------------------------------------------------------------------------------

    def _text(self, text: str) -> list[bytes]:
        self.text += text if not self.text else "\n\n" + text
        out = _text_block(self._next_index, text)
        self._next_index += 1
        return out

    def _close_open(self) -> list[bytes]:
        out = [_ev({"type": "content_block_stop", "index": i}) for i in sorted(self._open)]
        self._open.clear()
        return out

    @staticmethod
    def _forward(obj: dict, raw: str, etype: str, idx: int, out_idx: int) -> list[bytes]:
        if idx == out_idx and "\n" not in raw:
            return [encode_raw(raw, etype)]
        return [encode({**obj, "index": out_idx}, etype)]


__all__ = [
    "API", "decode_request", "upstream_body", "text_answer", "tool_call_answer", "stream_text_answer",
    "stream_tool_call_answer", "sanitize_answer", "normalise_stop", "extract_usage", "extract_text", "extract_tool_calls", "filter_tool_calls",
    "rewrite_answer_ids", "rewrite_ids_in_request", "MessagesStreamRelay",
]
