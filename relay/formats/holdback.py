"""The streaming base of the three single-LLM stream relays: hold back, decide, release, abort.

An upstream stream is forwarded as it arrives, except its tool calls: they are held back until complete,
then the relay stops (``awaiting_decision``) until the caller decides which calls may reach the client
(``decide``). The allowed calls are released under our ids, a denial notice is added when some were
denied, and the stream ends; events that arrive while a decision is pending wait in a backlog and are
replayed after it. ``abort`` ends the stream well-formed after an upstream failure. The API packages
supply the wire details through the ``_feed``, ``_release_*``, ``_end`` and ``_abort`` hooks.
"""

from __future__ import annotations

from collections.abc import Collection

from .model import JsonObject, NewId, ToolCall, Usage
from .sse import SSEEvent


class HoldBackRelay:
    """Implements ``sse.StreamRelay`` on top of the per-API hooks."""

    def __init__(self, new_id: NewId) -> None:
        self.new_id = new_id
        self.usage = Usage()
        self.text = ""
        self.tool_calls: list[ToolCall] = []
        """The released calls, with our ids."""
        self.denied: list[ToolCall] = []
        self.id_map: dict[str, str] = {}
        """Our id -> the upstream's."""
        self._held: dict[int, JsonObject] = {}
        """Tool calls held back, by the upstream's index, in arrival order."""
        self._awaiting = False
        self._backlog: list[SSEEvent | None] = []
        """Events that came while a decision was pending (None: the upstream's end)."""
        self._done = False

    # -- StreamRelay -----------------------------------------------------------------------------------

    @property
    def awaiting_decision(self) -> bool:
        return self._awaiting

    @property
    def done(self) -> bool:
        return self._done

    @property
    def pending(self) -> list[ToolCall]:
        """The complete held calls, with the upstream's ids."""
        return [self._held_call(held) for held in self._held_in_order()]

    def feed(self, ev: SSEEvent) -> list[bytes]:
        if self._awaiting:
            self._backlog.append(ev)
            return []
        return self._feed(ev)

    def decide(self, allowed_ids: Collection[str], denial_text: str | None = None) -> list[bytes]:
        if not self._awaiting:
            return []
        self._awaiting = False
        calls = self.pending
        self.denied = [c for c in calls if c.id not in allowed_ids]
        out: list[bytes] = []
        released = 0
        for upstream in calls:
            if upstream.id in allowed_ids:
                out += self._release_call(released, upstream, self._accept(upstream))
                released += 1
        if denial_text and self.denied:
            out += self._release_denial(denial_text)
            self.text = self._joined(denial_text)
        out += self._release_end(released > 0)
        self._held.clear()
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
        return self._end()

    def abort(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._held.clear()
        self._awaiting = False
        self._backlog.clear()
        return self._abort(message)

    # -- shared steps ----------------------------------------------------------------------------------

    def _accept(self, upstream: ToolCall) -> ToolCall:
        """An allowed call under our id (remembered in ``id_map`` and ``tool_calls``)."""
        ours = self.new_id(upstream.id)
        self.id_map[ours] = upstream.id
        mine = ToolCall(ours, upstream.name, upstream.arguments, upstream.raw_arguments)
        self.tool_calls.append(mine)
        return mine

    def _joined(self, addition: str) -> str:
        """``text`` with ``addition`` after a blank line (or alone when there is no text yet)."""
        return addition if not self.text else self.text + "\n\n" + addition

    def _hold_until_decided(self, ev: SSEEvent | None = None) -> list[bytes]:
        """Stop at the end of the upstream's answer while calls are held; ``ev`` is replayed after."""
        self._awaiting = True
        if ev is not None:
            self._backlog.append(ev)
        return []

    # -- hooks -----------------------------------------------------------------------------------------

    def _held_in_order(self) -> list[JsonObject]:
        return list(self._held.values())

    def _held_call(self, held: JsonObject) -> ToolCall:
        raise NotImplementedError

    def _feed(self, ev: SSEEvent) -> list[bytes]:
        raise NotImplementedError

    def _release_call(self, index: int, upstream: ToolCall, mine: ToolCall) -> list[bytes]:
        """The events of the ``index``-th allowed call (``mine`` carries our id)."""
        raise NotImplementedError

    def _release_denial(self, denial_text: str) -> list[bytes]:
        """The events showing the denial notice (called before ``text`` holds it)."""
        raise NotImplementedError

    def _release_end(self, any_allowed: bool) -> list[bytes]:
        """The events that end the answer after a decision."""
        raise NotImplementedError

    def _end(self) -> list[bytes]:
        """The upstream ended with nothing held and the stream not finished yet."""
        raise NotImplementedError

    def _abort(self, message: str) -> list[bytes]:
        raise NotImplementedError
