"""OpenAI Responses stream relay: an upstream event stream to the client, function calls held for a decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._json import loads_object
from ..holdback import HoldBackRelay
from ..model import JsonObject, NewId, ToolCall, new_hex
from ..sse import SSEEvent, encode
from .answers import CALL, usage_from
from .encode import ResponsesEmitter

STREAM_TYPES = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.failed",
        "response.incomplete",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
    }
)
FINAL_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})


class ResponsesStreamRelay(HoldBackRelay):
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
        super().__init__(new_id)
        self.status: str | None = None
        self._em = ResponsesEmitter(model=model or "")
        self._index_map: dict[int, int] = {}
        self._next_index = 0
        self._final: JsonObject | None = None
        self._forwarded: list[JsonObject] = []
        self._added: list[JsonObject] = []

    @property
    def response_id(self) -> str | None:
        """The id of the response the client receives (to find the session by ``previous_response_id``)."""
        final = (self._final or {}).get("response") if isinstance(self._final, dict) else None
        rid = (final or {}).get("id") if isinstance(final, dict) else None
        return rid or self._em.base.get("id")

    def _held_call(self, held: JsonObject) -> ToolCall:
        if not held.get("call_id"):
            held["call_id"] = f"call_{new_hex()}"
        return CALL.read(held)

    # -- feed ------------------------------------------------------------------------------------------

    def _feed(self, ev: SSEEvent) -> list[bytes]:
        if self._done:
            return []
        obj = loads_object(ev.data)
        if obj is None:
            return []
        etype = obj.get("type") or ev.event
        if etype == "error":
            return self.abort(str(obj.get("message") or (obj.get("error") or {}).get("message") or "error"))
        if etype not in STREAM_TYPES:
            return []
        if etype in ("response.created", "response.in_progress"):
            resp = obj.get("response") or {}
            self._em.base = {**resp, "output": [], "status": resp.get("status") or "in_progress"}
            self._em.started = True
            return [self._resequence(obj, etype)]
        if etype in FINAL_TYPES:
            resp = obj.get("response") or {}
            self.usage = usage_from(resp.get("usage"))
            self.status = resp.get("status")
            self._final = obj
            return self._hold_until_decided() if self._held else self._emit_final()
        return self._on_item_event(etype, obj)

    def _on_item_event(self, etype: str, obj: JsonObject) -> list[bytes]:
        idx: Any = obj.get("output_index")  # the upstream's; None for events without one
        if etype == "response.output_item.added":
            item = obj.get("item") or {}
            if item.get("type") == "function_call":
                self._held[idx] = dict(item)
                return []
            out_idx = self._index_map[idx] = self._next_index
            self._next_index += 1
            return [self._resequence(obj, etype, out_idx)]
        if idx in self._held:
            held = self._held[idx]
            if etype == "response.function_call_arguments.delta":
                held["arguments"] = (held.get("arguments") or "") + (obj.get("delta") or "")
            elif etype == "response.function_call_arguments.done" and isinstance(obj.get("arguments"), str):
                held["arguments"] = obj["arguments"]
            elif etype == "response.output_item.done" and isinstance(obj.get("item"), dict):
                self._held[idx] = {**held, **obj["item"]}
            return []
        if etype == "response.output_text.delta":
            self.text += obj.get("delta") or ""
        elif etype == "response.output_item.done" and isinstance(obj.get("item"), dict):
            self._forwarded.append(obj["item"])
        return [self._resequence(obj, etype, self._index_map.get(idx, idx) if idx is not None else None)]

    # -- release / end ---------------------------------------------------------------------------------

    def _release_call(self, index: int, upstream: ToolCall, mine: ToolCall) -> list[bytes]:
        item_id = next((h.get("id") for h in self._held.values() if h.get("call_id") == upstream.id), None)
        return self._synth(lambda: self._em.function_call(mine, item_id))

    def _release_denial(self, denial_text: str) -> list[bytes]:
        return self._synth(lambda: self._em.message(denial_text))

    def _release_end(self, any_allowed: bool) -> list[bytes]:
        added, self._added = self._added, []
        return self._emit_final(added)

    def _end(self) -> list[bytes]:
        return self.abort("The upstream stream ended before the response was complete")

    def _abort(self, message: str) -> list[bytes]:
        em = self._em
        out = self._synth(lambda: em.message(message))
        self.text = self._joined(message)
        output = self._forwarded + [it for it in em.output if it is not None]
        snap = {
            **em.base,
            "status": "failed",
            "output": output,
            "error": {"code": "server_error", "message": message},
        }
        self.status = "failed"
        out.append(em.event("response.failed", response=snap))
        self._done = True
        return out

    def _synth(self, emit: Callable[[], list[bytes]]) -> list[bytes]:
        """Run an emitter method so that its new item gets an output index after everything forwarded.

        The emitter's ``output`` holds placeholders (``None``) for the forwarded items.
        """
        em = self._em
        em.started = True
        while len(em.output) < self._next_index:
            em.output.append(None)
        out = emit()
        self._next_index = len(em.output)
        item = em.output[-1]
        if item is not None:
            self._added.append(item)
        return out

    def _resequence(self, obj: JsonObject, etype: str, out_idx: int | None = None) -> bytes:
        obj = dict(obj)
        obj["sequence_number"] = self._em.seq
        self._em.seq += 1
        if out_idx is not None and "output_index" in obj:
            obj["output_index"] = out_idx
        return encode(obj, etype)

    def _emit_final(self, added: list[JsonObject] | None = None) -> list[bytes]:
        obj = self._final or {
            "type": "response.completed",
            "response": {**self._em.base, "status": "completed"},
        }
        etype = obj.get("type") or "response.completed"
        resp = dict(obj.get("response") or {})
        output = [
            it
            for it in resp.get("output") or []
            if not (isinstance(it, dict) and it.get("type") == "function_call")
        ]
        resp["output"] = output + (added or [])
        self._done = True
        return [self._resequence({**obj, "response": resp}, etype)]


__all__ = ["FINAL_TYPES", "STREAM_TYPES", "ResponsesStreamRelay"]
