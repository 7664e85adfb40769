"""Chat Completions stream relay: an upstream chunk stream to the client, tool calls held for a decision."""

from __future__ import annotations

from typing import Any

from .._json import dumps, loads
from ..holdback import HoldBackRelay
from ..model import JsonObject, NewId, ToolCall, new_hex, now, parse_arguments
from ..sse import DONE, SSEEvent, encode_raw
from .answers import normalise_finish, usage_from

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
SERVICE_TIERS = frozenset({"auto", "default", "flex", "scale", "priority"})


class ChatStreamRelay(HoldBackRelay):
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
        super().__init__(new_id)
        self.include_usage = include_usage
        self.finish_reason: str | None = None
        self._finish_template: JsonObject | None = None
        self._meta: JsonObject = {"id": f"chatcmpl-{new_hex()}", "created": now(), "model": model or ""}
        self._started = False

    # -- hold back -------------------------------------------------------------------------------------

    def _held_in_order(self) -> list[JsonObject]:
        return [held for _, held in sorted(self._held.items())]

    def _held_call(self, held: JsonObject) -> ToolCall:
        if not held["id"]:
            held["id"] = f"call_{new_hex()}"  # stable across calls: decide() matches on it
        return ToolCall(held["id"], held["name"], *parse_arguments(held["arguments"]))

    def _hold(self, deltas: list[JsonObject]) -> None:
        for tc in deltas:
            idx = tc.get("index")
            if idx is None:  # some providers omit the index: a new id starts a new call
                last = max(self._held) if self._held else -1
                new = tc.get("id") and (last < 0 or self._held[last]["id"] not in (None, tc["id"]))
                idx = last + 1 if new or last < 0 else last
            held = self._held.setdefault(idx, {"id": None, "name": "", "arguments": ""})
            if tc.get("id") and not held["id"]:
                held["id"] = tc["id"]
            fn = tc.get("function") or {}
            if fn.get("name"):
                name = held["name"]
                held["name"] = name + fn["name"] if name and name != fn["name"] else fn["name"]
            if fn.get("arguments"):
                held["arguments"] += fn["arguments"]

    # -- feed ------------------------------------------------------------------------------------------

    def _feed(self, ev: SSEEvent) -> list[bytes]:
        data = ev.data
        if data.strip() == "[DONE]":
            return self._on_done()
        try:  # inline: this runs for every chunk
            obj = loads(data)
        except ValueError:
            return []
        if not isinstance(obj, dict):
            return []
        if isinstance(obj.get("error"), dict) and not obj.get("choices"):
            err = obj["error"]
            return self.abort(str(err.get("message") or err))
        self._started = True
        for key in ("id", "created", "model"):
            if obj.get(key) is not None:
                self._meta[key] = obj[key]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage_from(usage)
        if not obj.get("choices"):
            if isinstance(usage, dict) and not self.include_usage:
                return []
            return self._emit(obj, data)
        return self._on_choice(obj, data, isinstance(usage, dict))

    def _on_choice(self, obj: JsonObject, data: str, has_usage: bool) -> list[bytes]:
        choice = obj["choices"][0]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if isinstance(content, str):
            self.text += content
        tcs = delta.get("tool_calls")
        finish = choice.get("finish_reason")
        modified = False
        if finish is not None and finish not in FINISH_REASONS:
            finish = choice["finish_reason"] = normalise_finish(finish)
            modified = True
        if obj.get("service_tier") is not None and obj["service_tier"] not in SERVICE_TIERS:
            del obj["service_tier"]
            modified = True
        if "delta" not in choice or (delta.get("role") not in (None, "assistant")):
            delta = {k: v for k, v in delta.items() if k != "role"}
            modified = True
        if tcs:
            self._hold(tcs)
            delta = {k: v for k, v in delta.items() if k != "tool_calls"}
            modified = True
        out: list[bytes] = []
        if finish and self._held:
            self.finish_reason = finish
            if any(v is not None and k != "role" for k, v in delta.items()):
                out += self._emit_chunk_dict(obj, {**delta}, None, drop_usage=True)
            self._finish_template = obj
            return out + self._hold_until_decided()
        if finish:
            self.finish_reason = finish
        if modified:
            if any(v is not None for v in delta.values()) or finish or has_usage or not tcs:
                out += self._emit_chunk_dict(obj, delta, finish)
            return out
        return self._emit(obj, dumps(obj).decode() if "\n" in data else data)

    def _on_done(self) -> list[bytes]:
        if self._held:
            return self._hold_until_decided(SSEEvent(None, "[DONE]"))
        if self._done:
            return []
        return self._end()

    # -- release / end ---------------------------------------------------------------------------------

    def _template(self) -> JsonObject:
        return self._finish_template or {
            **self._meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": None}],
        }

    def _release_call(self, index: int, upstream: ToolCall, mine: ToolCall) -> list[bytes]:
        wire = {
            "index": index,
            "id": mine.id,
            "type": "function",
            "function": {"name": mine.name, "arguments": mine.arguments_json()},
        }
        return self._emit_chunk_dict(self._template(), {"tool_calls": [wire]}, None, drop_usage=True)

    def _release_denial(self, denial_text: str) -> list[bytes]:
        text = denial_text if not self.text else "\n\n" + denial_text
        return self._emit_chunk_dict(self._template(), {"content": text}, None, drop_usage=True)

    def _release_end(self, any_allowed: bool) -> list[bytes]:
        finish = self.finish_reason or "tool_calls"
        if any_allowed:
            finish = "tool_calls"
        elif finish == "tool_calls":
            finish = "stop"
        self.finish_reason = finish
        out = self._emit_chunk_dict(self._template(), {}, finish)
        self._finish_template = None
        return out

    def _end(self) -> list[bytes]:
        self._done = True
        return self._final()

    def _abort(self, message: str) -> list[bytes]:
        tpl = {
            **self._meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": None}],
        }
        text = message if not self.text else "\n\n" + message
        self.text += text
        self.finish_reason = "stop"
        delta: JsonObject = {"content": text} if self._started else {"role": "assistant", "content": text}
        out = self._emit_chunk_dict(tpl, delta, None) + self._emit_chunk_dict(tpl, {}, "stop")
        self._done = True
        return out + self._final()

    # -- output (overridden by responses.ChatToResponsesRelay) -----------------------------------------

    def _final(self) -> list[bytes]:
        """The stream's last event(s)."""
        return [DONE]

    def _emit(self, obj: JsonObject, raw: str) -> list[bytes]:
        """Forward an unmodified upstream chunk."""
        return [encode_raw(raw)]

    def _emit_chunk_dict(
        self, template: JsonObject, delta: JsonObject, finish: str | None, *, drop_usage: bool = False
    ) -> list[bytes]:
        obj = {k: v for k, v in template.items() if k != "choices" and not (drop_usage and k == "usage")}
        for key in ("id", "created", "model"):
            obj.setdefault(key, self._meta[key])
        obj.setdefault("object", "chat.completion.chunk")
        choice: dict[str, Any] = dict((template.get("choices") or [{}])[0])
        choice["index"] = choice.get("index", 0)
        choice["delta"] = delta
        choice["finish_reason"] = finish
        obj["choices"] = [choice]
        return self._emit(obj, dumps(obj).decode())


__all__ = ["FINISH_REASONS", "SERVICE_TIERS", "ChatStreamRelay"]
