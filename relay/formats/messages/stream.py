"""Anthropic Messages stream relay: an upstream event stream to the client, tool_use held for a decision."""

from __future__ import annotations

from .._json import dumps_str, loads_object
from ..holdback import HoldBackRelay
from ..model import JsonObject, NewId, ToolCall, new_hex, parse_arguments
from ..sse import SSEEvent, encode, encode_raw
from .answers import SERVICE_TIERS, STOP_REASONS, normalise_stop, usage_from
from .encode import event, message_end, message_start, text_block, tool_block

STREAM_BLOCK_TYPES = frozenset({"text", "thinking", "redacted_thinking", "tool_use", "server_tool_use"})
DELTA_TYPES = frozenset(
    {"text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta"}
)
STREAM_TYPES = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
)


class MessagesStreamRelay(HoldBackRelay):
    """Single-LLM pass-through of an upstream Anthropic stream (see ``sse.StreamRelay``).

    ``message_start`` and text/thinking blocks are forwarded as they arrive; ``ping`` (and any type outside the
    six the client can parse) is dropped; an upstream ``error`` event ends the stream well-formed. ``tool_use``
    blocks are held back until complete; at ``message_delta`` (or end of stream) the relay asks for a decision,
    then emits the allowed blocks (our ids, fresh contiguous indices after the forwarded blocks), an optional
    text block with the denial text, and ``message_delta`` with ``stop_reason`` ``tool_use`` if a call
    survived, else ``end_turn``. Block indices are renumbered so the client sees 0, 1, 2, … in order.
    """

    def __init__(self, new_id: NewId, *, model: str | None = None) -> None:
        super().__init__(new_id)
        self.stop_reason: str | None = None
        self._model = model or ""
        self._id = f"msg_{new_hex()}"
        self._dropped: set[int] = set()
        self._index_map: dict[int, int] = {}
        self._next_index = 0
        self._open: set[int] = set()
        self._delta_template: JsonObject | None = None
        self._started = False

    def _held_call(self, held: JsonObject) -> ToolCall:
        return ToolCall(held["id"], held["name"], *parse_arguments(held["json"] or held["input"] or "{}"))

    # -- feed ------------------------------------------------------------------------------------------

    def _feed(self, ev: SSEEvent) -> list[bytes]:
        obj = loads_object(ev.data)
        if obj is None:
            return []
        etype = obj.get("type") or ev.event
        if etype == "error":
            err = obj.get("error") or {}
            return self.abort(str(err.get("message") if isinstance(err, dict) else err))
        if etype == "message_start":
            return self._on_message_start(obj, ev.data)
        if etype in ("content_block_start", "content_block_delta", "content_block_stop"):
            return self._on_block(etype, obj, ev.data)
        if etype == "message_delta":
            return self._on_message_delta(obj, ev.data)
        if etype != "message_stop":
            return []  # ping and future event types the client cannot parse
        if self._held:
            return self._hold_until_decided(ev)
        self._done = True
        return [encode_raw(ev.data, etype)]

    def _on_message_start(self, obj: JsonObject, data: str) -> list[bytes]:
        msg = obj.get("message") or {}
        self._id = msg.get("id") or self._id
        self._model = msg.get("model") or self._model
        self.usage = usage_from(msg.get("usage"))
        self._started = True
        usage: JsonObject = msg["usage"] if isinstance(msg.get("usage"), dict) else {}
        tier = usage.get("service_tier")
        if (tier is not None and tier not in SERVICE_TIERS) or "\n" in data:
            usage = {k: v for k, v in usage.items() if k != "service_tier"}
            return [encode({**obj, "message": {**msg, "usage": usage}}, "message_start")]
        return [encode_raw(data, "message_start")]

    def _on_block(self, etype: str, obj: JsonObject, data: str) -> list[bytes]:
        idx: int = obj.get("index", 0)
        if etype == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") not in STREAM_BLOCK_TYPES:
                self._dropped.add(idx)  # e.g. web_fetch_tool_result: the client cannot parse it
                return []
            if block.get("type") == "tool_use":
                self._held[idx] = {
                    "id": block.get("id") or f"toolu_{new_hex()}",
                    "name": block.get("name") or "",
                    "json": "",
                    "input": dumps_str(block["input"]) if block.get("input") else "",
                }
                return []
            out_idx = self._index_map[idx] = self._next_index
            self._next_index += 1
            self._open.add(out_idx)
            return self._forward(obj, data, etype, idx, out_idx)
        if idx in self._dropped:
            return []
        if etype == "content_block_stop":
            if idx in self._held:
                return []
            out_idx = self._index_map.get(idx, idx)
            self._open.discard(out_idx)
            return self._forward(obj, data, etype, idx, out_idx)
        delta = obj.get("delta") or {}
        if delta.get("type") not in DELTA_TYPES:
            return []
        if idx in self._held:
            if delta.get("type") == "input_json_delta":
                self._held[idx]["json"] += delta.get("partial_json") or ""
            return []
        if delta.get("type") == "text_delta":
            self.text += delta.get("text") or ""
        return self._forward(obj, data, etype, idx, self._index_map.get(idx, idx))

    def _on_message_delta(self, obj: JsonObject, data: str) -> list[bytes]:
        u = obj.get("usage")
        if isinstance(u, dict):
            if u.get("output_tokens") is not None:
                self.usage.completion_tokens = int(u["output_tokens"])
            if u.get("input_tokens") is not None:
                self.usage.prompt_tokens = usage_from(u).prompt_tokens
        delta = obj.get("delta") or {}
        stop = delta.get("stop_reason")
        if stop is not None and stop not in STOP_REASONS:
            obj["delta"] = {**delta, "stop_reason": normalise_stop(stop)}
        new_delta = obj.get("delta")
        if isinstance(new_delta, dict) and new_delta.get("stop_reason"):
            self.stop_reason = new_delta["stop_reason"]
        if self._held:
            self._delta_template = obj
            return self._hold_until_decided()
        if new_delta is not delta or "\n" in data:
            return [encode(obj, "message_delta")]
        return [encode_raw(data, "message_delta")]

    @staticmethod
    def _forward(obj: JsonObject, raw: str, etype: str, idx: int, out_idx: int) -> list[bytes]:
        if idx == out_idx and "\n" not in raw:
            return [encode_raw(raw, etype)]
        return [encode({**obj, "index": out_idx}, etype)]

    # -- release / end ---------------------------------------------------------------------------------

    def _release_call(self, index: int, upstream: ToolCall, mine: ToolCall) -> list[bytes]:
        out = tool_block(self._next_index, mine)
        self._next_index += 1
        return out

    def _release_denial(self, denial_text: str) -> list[bytes]:
        out = text_block(self._next_index, denial_text)
        self._next_index += 1
        return out

    def _release_end(self, any_allowed: bool) -> list[bytes]:
        stop = (
            "tool_use"
            if any_allowed
            else ("end_turn" if self.stop_reason in (None, "tool_use") else self.stop_reason)
        )
        self.stop_reason = stop
        tpl = self._delta_template or {
            "type": "message_delta",
            "delta": {"stop_sequence": None},
            "usage": {"output_tokens": self.usage.completion_tokens},
        }
        self._delta_template = None
        return [event({**tpl, "delta": {**(tpl.get("delta") or {}), "stop_reason": stop}})]

    def _end(self) -> list[bytes]:
        """Upstream ended without message_stop: close what is open and end well-formed."""
        return self._finish(self.stop_reason or "end_turn")

    def _abort(self, message: str) -> list[bytes]:
        return self._finish("end_turn", message)

    def _finish(self, stop: str, message: str | None = None) -> list[bytes]:
        out = [] if self._started else [message_start(self._id, self._model, self.usage)]
        self._started = True
        out += [event({"type": "content_block_stop", "index": i}) for i in sorted(self._open)]
        self._open.clear()
        if message is not None:
            out += self._release_denial(message)
            self.text = self._joined(message)
            self.stop_reason = stop
        out += message_end(stop, self.usage)
        self._done = True
        return out


__all__ = ["DELTA_TYPES", "STREAM_BLOCK_TYPES", "STREAM_TYPES", "MessagesStreamRelay"]
