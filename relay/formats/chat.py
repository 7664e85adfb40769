"""OpenAI Chat Completions (``…/v1/chat/completions``): decode, encode, single-LLM pass-through helpers."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ._json import dumps, dumps_str, loads
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
from .sse import DONE, SSEEvent, encode, encode_raw

API = "chat"
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
SERVICE_TIERS = frozenset({"auto", "default", "flex", "scale", "priority"})
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Body fields that belong to the Sequrity API and must not reach a provider.
SEQURITY_FIELDS = ("user_provided_program", "context_vars", "session_id")


# ================================================================================================ decoding


def content_text(content: Any, where: str) -> str:
    """String or array of parts -> concatenated text of the text parts (other parts are ignored)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
                continue
            if not isinstance(part, dict):
                raise RequestError(f"{where}[{i}]: must be an object")
            ptype = part.get("type")
            if ptype == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise RequestError(f"{where}[{i}].text: must be a string")
                texts.append(text)
            elif ptype == "refusal" and isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
        return "".join(texts)
    raise RequestError(f"{where}: must be a string or an array of content parts")


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
        if tool.get("type", "function") != "function":
            continue  # custom/other tool kinds are forwarded untouched but are not function tools
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise RequestError(f"{w}.function: field required")
        name = req_str(fn, "name", f"{w}.function.")
        if not TOOL_NAME_RE.match(name):
            raise RequestError(f"{w}.function.name: must match ^[a-zA-Z0-9_-]{{1,64}}$")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise RequestError(f"{w}.function.parameters: must be an object")
        desc = fn.get("description")
        if desc is not None and not isinstance(desc, str):
            raise RequestError(f"{w}.function.description: must be a string")
        out.append(ToolDef(name, desc or "", params or {}))
    return out


def _decode_tool_calls(calls: Any, where: str) -> list[ToolCall]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise RequestError(f"{where}: must be an array")
    out = []
    for i, call in enumerate(calls):
        w = f"{where}[{i}]"
        if not isinstance(call, dict):
            raise RequestError(f"{w}: must be an object")
        cid = req_str(call, "id", f"{w}.")
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise RequestError(f"{w}.function: field required")
        name = req_str(fn, "name", f"{w}.function.")
        args, raw = parse_arguments(fn.get("arguments"))
        out.append(ToolCall(cid, name, args, raw))
    return out


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
        if role not in ROLES:
            raise RequestError(f"{w}.role: must be one of {', '.join(ROLES)}")
        content = msg.get("content")
        if role in ("system", "developer", "user", "tool") and "content" not in msg:
            raise RequestError(f"{w}.content: field required")
        text = content_text(content, f"{w}.content")
        if role in ("system", "developer"):
            turns.append(Turn("system", text))
        elif role == "user":
            turns.append(Turn("user", text))
        elif role == "assistant":
            calls = _decode_tool_calls(msg.get("tool_calls"), f"{w}.tool_calls")
            fc = msg.get("function_call")
            if not calls and isinstance(fc, dict) and isinstance(fc.get("name"), str):
                args, raw = parse_arguments(fc.get("arguments"))
                calls = [ToolCall(fc["name"], fc["name"], args, raw)]
            turns.append(Turn("assistant", text, calls))
        else:  # tool / function
            if role == "tool":
                call_id = req_str(msg, "tool_call_id", f"{w}.")
            else:
                call_id = req_str(msg, "name", f"{w}.")
            result = ToolResult(call_id, text)
            if turns and turns[-1].role == "tool":
                turns[-1].tool_results.append(result)
            else:
                turns.append(Turn("tool", "", [], [result]))
    return turns


def decode_request(body: Any) -> DecodedRequest:
    """Validate a Chat Completions body and decode it (RequestError names the offending field)."""
    if not isinstance(body, dict):
        raise RequestError("Request body must be a JSON object", 400)
    model = req_str(body, "model", "")
    check_common_params(body)
    turns = decode_messages(body.get("messages"))
    tools = decode_tools(body.get("tools"))
    rf = body.get("response_format")
    response_format = normalise_json_schema_format(rf, "response_format") if rf is not None else None
    so = opt_type(body, "stream_options", dict, "an object")
    program = opt_type(body, "user_provided_program", str, "a string")
    ctx = opt_type(body, "context_vars", dict, "an object")
    return DecodedRequest(
        api=API,
        model=model,
        stream=bool(body.get("stream")),
        tools=tools,
        turns=turns,
        body=body,
        response_format=response_format,
        include_usage=bool(so and so.get("include_usage")),
        user_provided_program=program,
        context_vars=ctx,
    )


def upstream_body(body: Mapping, *, stream: bool | None = None) -> dict:
    """Copy of a client body fit for an OpenAI-style provider (single-LLM pass-through).

    Drops Sequrity-only fields, fixes the ``schema_`` alias, and for streams asks for usage
    (``stream_options.include_usage``) so the relay can account tokens.
    """
    out = {k: v for k, v in body.items() if k not in SEQURITY_FIELDS}
    rf = out.get("response_format")
    if isinstance(rf, dict) and isinstance(rf.get("json_schema"), dict) and "schema_" in rf["json_schema"]:
        out["response_format"] = {**rf, "json_schema": fix_schema_alias(rf["json_schema"])}
    if stream is not None:
        out["stream"] = stream
    if out.get("stream"):
        so = out.get("stream_options")
        out["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
    else:
        out.pop("stream_options", None)
    return out


# ================================================================================================ encoding


def _usage_dict(usage: Usage | None) -> dict | None:
    return usage.as_dict() if usage is not None else None


def wire_tool_calls(calls: list[ToolCall]) -> list[dict]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
            for c in calls]


def _completion(message: dict, finish: str, *, model: str, id: str | None, usage: Usage | None,
                created: int | None, extra: dict | None) -> dict:
    out = {
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
                created: int | None = None, finish_reason: str = "stop", extra: dict | None = None,
                **_: Any) -> dict:
    """A final assistant message. (``failed``/``error`` keywords are accepted and ignored: Chat has no status.)"""
    return _completion({"role": "assistant", "content": text}, finish_reason, model=model, id=id,
                       usage=usage, created=created, extra=extra)


def tool_call_answer(calls: list[ToolCall], *, model: str, id: str | None = None, usage: Usage | None = None,
                     created: int | None = None, text: str | None = None, extra: dict | None = None) -> dict:
    message = {"role": "assistant", "content": text or None, "tool_calls": wire_tool_calls(calls)}
    return _completion(message, "tool_calls", model=model, id=id, usage=usage, created=created, extra=extra)


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None = None,
           usage: Usage | None = None) -> bytes:
    obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
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
    first: dict[str, Any] = {"role": "assistant", "content": text or None}
    out = [_chunk(cid, ts, model, first)]
    for i, c in enumerate(calls):
        out.append(_chunk(cid, ts, model, {"tool_calls": [
            {"index": i, "id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments_json()}}]}))
    out.append(_chunk(cid, ts, model, {}, "tool_calls", usage))
    out.append(DONE)
    return out


# ================================================================================ single-LLM pass-through


def extract_usage(answer: Mapping) -> Usage:
    u = answer.get("usage")
    if not isinstance(u, dict):
        return Usage()
    return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))


def extract_text(answer: Mapping) -> str:
    choices = answer.get("choices") or []
    if not choices:
        return ""
    content = (choices[0].get("message") or {}).get("content")
    if isinstance(content, str):
        return content
    try:
        return content_text(content, "content")
    except RequestError:
        return ""


def extract_tool_calls(answer: Mapping) -> list[ToolCall]:
    """Tool calls proposed in an upstream completion (first choice), with upstream ids."""
    choices = answer.get("choices") or []
    if not choices:
        return []
    msg = choices[0].get("message") or {}
    out = []
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        args, raw = parse_arguments(fn.get("arguments"))
        out.append(ToolCall(call.get("id") or "", fn.get("name") or "", args, raw))
    return out


def filter_tool_calls(answer: dict, allowed_ids: Collection[str], denial_text: str | None = None) -> dict:
    """Drop the proposed calls whose upstream id is not allowed; append ``denial_text`` to the content.

    ``finish_reason`` becomes ``stop`` when no call survives (control-api §8.3). Mutates and returns ``answer``.
    """
    for choice in answer.get("choices") or []:
        msg = choice.get("message") or {}
        calls = msg.get("tool_calls")
        if not calls:
            continue
        kept = [c for c in calls if c.get("id") in allowed_ids]
        if denial_text and len(kept) < len(calls):
            prev = msg.get("content")
            prev = prev if isinstance(prev, str) else content_text(prev, "content")
            msg["content"] = f"{prev}\n\n{denial_text}" if prev else denial_text
        if kept:
            msg["tool_calls"] = kept
        else:
            msg.pop("tool_calls", None)
            if choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "stop"
    return answer


def rewrite_answer_ids(answer: dict, new_id: NewId) -> dict:
    """Replace upstream tool-call ids by ``new_id(upstream_id)`` in place; returns ``answer``."""
    for choice in answer.get("choices") or []:
        for call in (choice.get("message") or {}).get("tool_calls") or []:
            if call.get("id"):
                call["id"] = new_id(call["id"])
    return answer


def rewrite_ids_in_request(body: Mapping, mapping: Mapping[str, str]) -> dict:
    """Copy of ``body`` whose tool-call ids (ours) are mapped back to upstream ids (copy-on-write)."""
    messages = body.get("messages")
    if not mapping or not isinstance(messages, list):
        return dict(body)
    new_messages = []
    changed = False
    for msg in messages:
        if not isinstance(msg, dict):
            new_messages.append(msg)
            continue
        m = msg
        tcid = msg.get("tool_call_id")
        if tcid in mapping:
            m = {**m, "tool_call_id": mapping[tcid]}
        calls = msg.get("tool_calls")
        if isinstance(calls, list) and any(isinstance(c, dict) and c.get("id") in mapping for c in calls):
            m = {**m, "tool_calls": [{**c, "id": mapping[c["id"]]}
                                     if isinstance(c, dict) and c.get("id") in mapping else c for c in calls]}
        changed |= m is not msg
        new_messages.append(m)
    out = dict(body)
    if changed:
        out["messages"] = new_messages
    return out


def _normalise_finish(finish: Any) -> str:
    """A provider finish reason outside OpenAI's vocabulary -> the nearest one ("error" is invalid, §12.2)."""
    f = str(finish).lower()
    if "length" in f or "max" in f or "token" in f:
        return "length"
    if "tool" in f or "function" in f:
        return "tool_calls"
    if "filter" in f or "safety" in f or "content" in f:
        return "content_filter"
    return "stop"


def sanitize_answer(answer: dict) -> dict:
    """Make an upstream completion safe for strict clients (sequrity models, CC-1…CC-5), in place.

    Drops ``annotations`` items that are not complete ``url_citation``s and incomplete ``audio``; fills a
    missing ``object``/``created``/``index``; drops a ``usage`` that lacks integer token counts.
    """
    answer.setdefault("object", "chat.completion")
    if not isinstance(answer.get("created"), int):
        answer["created"] = now()
    for i, choice in enumerate(answer.get("choices") or []):
        choice.setdefault("index", i)
        if not choice.get("finish_reason"):
            choice["finish_reason"] = "stop"
        msg = choice.get("message")
        if not isinstance(msg, dict):
            continue
        msg["role"] = "assistant"
        ann = msg.get("annotations")
        if ann is not None:
            good = [a for a in ann if isinstance(a, dict) and a.get("type") == "url_citation"
                    and isinstance(a.get("url_citation"), dict)
                    and all(k in a["url_citation"] for k in ("start_index", "end_index", "title", "url"))]
            if len(good) != len(ann):
                msg["annotations"] = good
        audio = msg.get("audio")
        if audio is not None and not (isinstance(audio, dict)
                                      and all(k in audio for k in ("id", "data", "expires_at", "transcript"))):
            del msg["audio"]
    usage = answer.get("usage")
    if usage is not None and not (isinstance(usage, dict) and all(
            isinstance(usage.get(k), int) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))):
        del answer["usage"]
    return answer


def rewrite_tool_results(body: dict, fn: Callable[[str, str], str | None]) -> dict:
    """Copy of ``body`` whose tool messages' text is ``fn(call_id, text)`` (None keeps it; copy-on-write).

    Every tool (and legacy ``function``) message of the history is passed to ``fn``, in order."""
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return body
    out, changed = [], False
    for m in msgs:
        if isinstance(m, dict) and m.get("role") in ("tool", "function"):
            text = tool_text(m.get("content"))
            cid = m.get("tool_call_id") if m.get("role") == "tool" else m.get("name")
            new = fn(str(cid or ""), text) if text is not None else None
            if new is not None and new != text:
                m, changed = {**m, "content": replace_tool_text(m.get("content"), new)}, True
        out.append(m)
    return {**body, "messages": out} if changed else body


def rewrite_call_arguments(body: dict, fn: Callable[[str, Any], Any]) -> dict:
    """Copy of ``body`` whose assistant tool calls' wire arguments (a JSON string) are ``fn(call_id, raw)``
    (None keeps them; copy-on-write). Every tool call of the history is passed to ``fn``, in order."""
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return body
    out, changed = [], False
    for m in msgs:
        if isinstance(m, dict) and m.get("role") == "assistant":
            calls = m.get("tool_calls")
            if isinstance(calls, list):
                new_calls, touched = [], False
                for c in calls:
                    fn_obj = c.get("function") if isinstance(c, dict) else None
                    if isinstance(fn_obj, dict) and fn_obj.get("arguments") is not None:
                        new = fn(str(c.get("id") or ""), fn_obj["arguments"])
                        if new is not None and new != fn_obj["arguments"]:
                            c, touched = {**c, "function": {**fn_obj, "arguments": new}}, True
                    new_calls.append(c)
                if touched:
                    m, changed = {**m, "tool_calls": new_calls}, True
            fc = m.get("function_call")
            if isinstance(fc, dict) and fc.get("arguments") is not None:
                new = fn(str(fc.get("name") or ""), fc["arguments"])
                if new is not None and new != fc["arguments"]:
                    m, changed = {**m, "function_call": {**fc, "arguments": new}}, True
        out.append(m)
    return {**body, "messages": out} if changed else body


def rewrite_answer_arguments(answer: dict, fn: Callable[[str, str, dict], dict | None]) -> dict:
    """Replace proposed tool-call arguments by ``fn(call_id, name, args)`` (None keeps them); in place."""
    for choice in answer.get("choices") or []:
        for call in (choice.get("message") or {}).get("tool_calls") or []:
            f = call.get("function") or {}
            args, _ = parse_arguments(f.get("arguments"))
            new = fn(call.get("id", ""), f.get("name", ""), args)
            if new is not None:
                f["arguments"] = dumps_str(new)
    return answer


class ChatStreamRelay:
    """Single-LLM pass-through of an upstream Chat Completions stream (see ``sse.StreamRelay``).

    Text deltas are forwarded as they arrive (unchanged bytes when the chunk carries no tool call). Tool-call
    deltas are held back and accumulated; when the upstream finishes (the chunk with ``finish_reason``, or
    ``[DONE]``/end) the relay stops and asks for a decision on the complete calls (``awaiting_decision``).
    ``decide()`` then emits one chunk per allowed call — ids replaced via ``new_id``, indices renumbered —,
    an optional content chunk with the denial text, and the finish chunk (``tool_calls`` if a call survived,
    else ``stop``). Usage is read from any chunk; a usage-only chunk (empty ``choices``, requested upstream
    with ``stream_options.include_usage``) is forwarded only when the client asked for usage itself.
    Only choice 0 is supported for tool calls (the relay never asks for ``n > 1``).
    """

    def __init__(self, new_id: NewId, *, include_usage: bool = False, model: str | None = None) -> None:
        self.new_id = new_id
        self.include_usage = include_usage
        self.usage = Usage()
        self.text = ""
        self.tool_calls: list[ToolCall] = []
        self.denied: list[ToolCall] = []
        self.id_map: dict[str, str] = {}
        self.finish_reason: str | None = None
        self._held: dict[int, dict] = {}
        self._awaiting = False
        self._finish_template: dict | None = None
        self._backlog: list[SSEEvent | None] = []
        self._done = False
        self._meta = {"id": f"chatcmpl-{new_hex()}", "created": now(), "model": model or ""}
        self._started = False

    # -- StreamRelay -----------------------------------------------------------------------------------

    @property
    def awaiting_decision(self) -> bool:
        return self._awaiting

    @property
    def done(self) -> bool:
        return self._done

    @property
    def pending(self) -> list[ToolCall]:
        out = []
        for _, h in sorted(self._held.items()):
            if not h["id"]:
                h["id"] = f"call_{new_hex()}"  # stable across calls: decide() matches on it
            args, raw = parse_arguments(h["arguments"])
            out.append(ToolCall(h["id"], h["name"], args, raw))
        return out

    def feed(self, ev: SSEEvent) -> list[bytes]:
        if self._awaiting:
            self._backlog.append(ev)
            return []
        data = ev.data
        if data.strip() == "[DONE]":
            return self._on_done()
        try:
            obj = loads(data)
        except ValueError:
            return []
        if not isinstance(obj, dict):
            return []
        if isinstance(obj.get("error"), dict) and not obj.get("choices"):
            err = obj["error"]
            return self.abort(str(err.get("message") or err))
        self._started = True
        self._remember(obj)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        choices = obj.get("choices")
        if not choices:
            if isinstance(usage, dict) and not self.include_usage:
                return []
            return self._emit(obj, data)
        choice = choices[0]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if isinstance(content, str):
            self.text += content
        tcs = delta.get("tool_calls")
        finish = choice.get("finish_reason")
        modified = False
        if finish is not None and finish not in FINISH_REASONS:
            finish = _normalise_finish(finish)
            choice["finish_reason"] = finish
            modified = True
        if obj.get("service_tier") is not None and obj["service_tier"] not in SERVICE_TIERS:
            del obj["service_tier"]
            modified = True
        if "delta" not in choice or (delta.get("role") not in (None, "assistant")):
            delta = {k: v for k, v in delta.items() if k != "role"}
            modified = True
        if tcs:
            for tc in tcs:
                idx = tc.get("index")
                if idx is None:  # some providers omit the index: a new id starts a new call
                    last = max(self._held) if self._held else -1
                    new = tc.get("id") and (last < 0 or self._held[last]["id"] not in (None, tc["id"]))
                    idx = last + 1 if new or last < 0 else last
                h = self._held.setdefault(idx, {"id": None, "name": "", "arguments": ""})
                if tc.get("id") and not h["id"]:
                    h["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    h["name"] = h["name"] + fn["name"] if h["name"] and h["name"] != fn["name"] else fn["name"]
                if fn.get("arguments"):
                    h["arguments"] += fn["arguments"]
            delta = {k: v for k, v in delta.items() if k != "tool_calls"}
            modified = True
        out: list[bytes] = []
        if finish and self._held:
            self.finish_reason = finish
            rest = {k: v for k, v in delta.items() if v is not None and k != "role"}
            if rest:
                out += self._emit_chunk_dict(obj, {**delta}, None, drop_usage=True)
            self._finish_template = obj
            self._awaiting = True
            return out
        if finish:
            self.finish_reason = finish
        if modified:
            if any(v is not None for v in delta.values()) or finish or isinstance(usage, dict) or not tcs:
                out += self._emit_chunk_dict(obj, delta, finish)
            return out
        if "\n" in data:
            return self._emit(obj, dumps(obj).decode())
        return self._emit(obj, data)

    def decide(self, allowed_ids: Collection[str], denial_text: str | None = None) -> list[bytes]:
        if not self._awaiting:
            return []
        self._awaiting = False
        calls = self.pending
        allowed = [c for c in calls if c.id in allowed_ids]
        self.denied = [c for c in calls if c.id not in allowed_ids]
        self._held.clear()
        template = self._finish_template or {**self._meta, "object": "chat.completion.chunk",
                                             "choices": [{"index": 0, "delta": {}, "finish_reason": None}]}
        out: list[bytes] = []
        for i, c in enumerate(allowed):
            ours = self.new_id(c.id)
            self.id_map[ours] = c.id
            mine = ToolCall(ours, c.name, c.arguments, c.raw_arguments)
            self.tool_calls.append(mine)
            out += self._emit_chunk_dict(template, {"tool_calls": [
                {"index": i, "id": ours, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments_json()}}]}, None, drop_usage=True)
        if denial_text and self.denied:
            text = denial_text if not self.text else "\n\n" + denial_text
            self.text += text
            out += self._emit_chunk_dict(template, {"content": text}, None, drop_usage=True)
        finish = self.finish_reason or "tool_calls"
        if allowed:
            finish = "tool_calls"
        elif finish == "tool_calls":
            finish = "stop"
        self.finish_reason = finish
        out += self._emit_chunk_dict(template, {}, finish)
        self._finish_template = None
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
        self._done = True
        return self._final()

    def abort(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._held.clear()
        self._awaiting = False
        self._backlog.clear()
        return self._abort(message)

    def _abort(self, message: str) -> list[bytes]:
        tpl = {**self._meta, "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {}, "finish_reason": None}]}
        text = message if not self.text else "\n\n" + message
        self.text += text
        self.finish_reason = "stop"
        delta: dict[str, Any] = {"content": text}
        if not self._started:
            delta = {"role": "assistant", "content": text}
        out = self._emit_chunk_dict(tpl, delta, None) + self._emit_chunk_dict(tpl, {}, "stop")
        self._done = True
        return out + self._final()

    # -- internals -------------------------------------------------------------------------------------

    def _remember(self, obj: dict) -> None:
        for key in ("id", "created", "model"):
            if obj.get(key) is not None:
                self._meta[key] = obj[key]

    def _on_done(self) -> list[bytes]:
        if self._held:
            self._awaiting = True
            self._backlog.append(SSEEvent(None, "[DONE]"))
            return []
        if self._done:
            return []
        self._done = True
        return self._final()

    def _final(self) -> list[bytes]:
        """The stream's last event(s)."""
        return [DONE]

    def _emit(self, obj: dict, raw: str) -> list[bytes]:
        """Forward an unmodified upstream chunk."""
        return [encode_raw(raw)]

    def _emit_chunk_dict(self, template: dict, delta: dict, finish: str | None, *,
                         drop_usage: bool = False) -> list[bytes]:
        obj = {k: v for k, v in template.items() if k != "choices" and not (drop_usage and k == "usage")}
        for key in ("id", "created", "model"):
            obj.setdefault(key, self._meta[key])
        obj.setdefault("object", "chat.completion.chunk")
        choice = dict((template.get("choices") or [{}])[0])
        choice["index"] = choice.get("index", 0)
        choice["delta"] = delta
        choice["finish_reason"] = finish
        obj["choices"] = [choice]
        return self._emit(obj, dumps(obj).decode())
