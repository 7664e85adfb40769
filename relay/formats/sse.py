"""Server-sent events: an incremental parser for upstream streams, encoders for ours, and a pump.

Every event we emit is one ``data:`` line holding one complete JSON document, optionally
preceded by an ``event:`` line (Anthropic and Responses streams name their events, Chat streams do not).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any, NamedTuple, Protocol

from ._json import dumps
from .model import ToolCall, Usage

logger = logging.getLogger(__name__)


class SSEEvent(NamedTuple):
    event: str | None
    data: str


DONE = b"data: [DONE]\n\n"


def encode(data: Any, event: str | None = None) -> bytes:
    """One SSE event: ``event: <event>\\ndata: <compact JSON>\\n\\n`` (``event:`` omitted when None)."""
    payload = data if isinstance(data, (bytes, bytearray)) else dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def encode_raw(data: str, event: str | None = None) -> bytes:
    """Forward an upstream event's data text unchanged (it must be one line of JSON)."""
    if event is None:
        return b"data: " + data.encode() + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data.encode() + b"\n\n"


class SSEParser:
    """Incremental SSE parser (WHATWG rules that matter here): ``feed(bytes) -> list[SSEEvent]``.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends split anywhere across chunks, multi-line data (joined
    with ``\\n``), comments and ``id:``/``retry:`` fields (ignored). An event is dispatched at a blank line
    only when it carried data.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" not in buf:
            self._buf = buf
            return self._drain()
        hold = buf.endswith(b"\r")  # may be the first half of \r\n: decide with the next chunk
        if hold:
            buf = buf[:-1]
        self._buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = self._drain()
        if hold:
            self._buf += b"\r"
        return events

    def flush(self) -> list[SSEEvent]:
        """Dispatch what is left at end of stream (an unterminated last event)."""
        buf = self._buf.replace(b"\r", b"\n")
        if not buf.strip():
            self._buf = b""
            return []
        self._buf = buf + b"\n\n"
        return self._drain()

    def _drain(self) -> list[SSEEvent]:
        buf = self._buf
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            ev = _parse_block(buf[start:end])
            start = end + 2
            if ev is not None:
                events.append(ev)
        self._buf = buf[start:] if start else buf
        return events


def _parse_block(block: bytes) -> SSEEvent | None:
    event: str | None = None
    data: list[str] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 58:  # ':' comment
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(event, data[0] if len(data) == 1 else "\n".join(data))


# ------------------------------------------------------------------------------------ stream relays (pump)


class StreamRelay(Protocol):
    """What the per-API single-LLM stream relays (``chat.ChatStreamRelay`` …) have in common.

    Protocol: ``feed`` every upstream event and send what it returns; whenever ``awaiting_decision`` turns
    true, policy-check ``pending`` (complete tool calls, upstream ids) and send ``decide(allowed_ids,
    denial_text)``; at upstream end send ``end()`` (and decide again if asked); on an upstream failure after
    the stream started send ``abort(message)`` instead (a well-formed final event, control-api §12.1).
    """

    usage: Usage
    text: str
    tool_calls: list[ToolCall]
    denied: list[ToolCall]
    id_map: dict[str, str]

    @property
    def pending(self) -> list[ToolCall]:
        """The complete calls held back for a decision (upstream ids)."""
        ...

    @property
    def awaiting_decision(self) -> bool: ...

    @property
    def done(self) -> bool:
        """True once the stream's final event(s) were produced (by ``feed``, ``decide``, ``end`` or ``abort``):
        everything the upstream reported (``usage``, ``tool_calls``, ``text``) is known from then on."""
        ...

    def feed(self, ev: SSEEvent) -> list[bytes]: ...

    def decide(self, allowed_ids: Collection[str], denial_text: str | None = None) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...

    def abort(self, message: str) -> list[bytes]: ...


Decision = tuple[Collection[str], str | None]
"""(allowed upstream tool-call ids, denial text to show or None)."""


async def _decision(
    relay: StreamRelay, decide: Callable[[list[ToolCall]], Awaitable[Decision]] | None
) -> list[bytes]:
    """The relay's events after the caller's decision on its held calls (all allowed without ``decide``)."""
    pending = relay.pending
    if decide is None:
        return relay.decide([c.id for c in pending], None)
    allowed, text = await decide(pending)
    return relay.decide(allowed, text)


async def pump(
    relay: StreamRelay,
    events: AsyncIterator[SSEEvent],
    decide: Callable[[list[ToolCall]], Awaitable[Decision]] | None = None,
    *,
    error_message: Callable[[BaseException], str] = str,
    on_done: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """Drive ``relay`` over upstream ``events``; yields the bytes to send to the client.

    ``decide(pending_calls)`` is awaited when complete tool calls are held back; None allows every call.
    Exceptions from ``events`` (UpstreamError, …) after the first event become ``relay.abort(message)``.
    ``on_done()`` is awaited once, as soon as the relay has produced its final event(s) and *before* the first
    of them is yielded: the upstream's usage, the tool calls and the text are complete by then, so the caller
    can meter and save the request before the client holds the end of the stream (a client that drops the
    connection right after ``data: [DONE]`` must not escape metering). It is not called when the stream is
    closed before its end.
    Closing this generator (client disconnect) closes ``events`` and so cancels the upstream request.
    """
    called = on_done is None

    async def _finished() -> None:
        nonlocal called
        called = True
        try:
            if on_done is not None:
                await on_done()
        except Exception:  # noqa: BLE001 - bookkeeping must not cut the client's stream short
            logger.exception("stream on_done callback failed")

    try:
        try:
            async for ev in events:
                out = relay.feed(ev)
                for chunk in out:
                    if not called and relay.done:
                        await _finished()
                    yield chunk
                while relay.awaiting_decision:
                    for chunk in await _decision(relay, decide):
                        if not called and relay.done:
                            await _finished()
                        yield chunk
            out = relay.end()
            while relay.awaiting_decision:
                out += await _decision(relay, decide)
        except Exception as exc:  # noqa: BLE001 - any upstream failure ends the stream cleanly
            out = relay.abort(error_message(exc))
        if not called:
            await _finished()
        for chunk in out:
            yield chunk
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
