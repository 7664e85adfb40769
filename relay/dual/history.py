"""The conversation history check: does the client's history still match what this session saw?

The session keeps a short digest of every message (the client's and the engine's own answers). A client
resends its whole history each time; when the stored digests are not a prefix of the new ones, the history
was changed, and ``history_mismatch_policy`` decides: ``continue`` (default), ``restart_turn`` or
``reject`` (409).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from relay.formats.model import DecodedRequest, Turn

from .state import DualState
from .types import DualError, RequestLog, TurnOutcome


def _canon_args(args: Any) -> str:
    try:
        return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(args)


def turn_digest(turn: Turn) -> str:
    """A short digest of one message, tolerant as §7.5 asks: role, text (None/""/missing equal, surrounding
    whitespace ignored), tool-call ids/names/arguments (as parsed JSON), tool-result ids and content."""
    h = hashlib.blake2b(digest_size=8)
    h.update(turn.role.encode())
    h.update(b"\0")
    h.update((turn.text or "").strip().encode("utf-8", "surrogatepass"))
    for c in turn.tool_calls:
        h.update(b"\1")
        h.update(f"{c.id}\0{c.name}\0".encode("utf-8", "surrogatepass"))
        h.update(
            _canon_args(c.arguments if c.raw_arguments is None else c.raw_arguments).encode(
                "utf-8", "surrogatepass"
            )
        )
    for r in turn.tool_results:
        h.update(b"\2")
        h.update(f"{r.call_id}\0".encode())
        h.update((r.content or "").strip().encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def digests(turns: list[Turn]) -> list[str]:
    return [turn_digest(t) for t in turns]


@dataclass(slots=True)
class HistoryCheck:
    """The result of comparing one request's history with the stored one."""

    restart_turn: bool  # the turn in progress must start over (``restart_turn`` policy, history changed)
    incoming: (
        list[str] | None
    )  # the request's digests; None for a delta request (Responses previous_response_id)


class ConversationHistory:
    """Checks each request's history against the session's, and remembers it with the engine's answer."""

    def __init__(self, mismatch_policy: str, log: RequestLog) -> None:
        self.mismatch_policy = mismatch_policy
        self.log = log

    def check(self, session: DualState, request: DecodedRequest) -> HistoryCheck:
        """Compare the caller's history with ours (raises ``DualError(409)`` under ``reject``)."""
        if request.api == "responses" and request.previous_response_id:
            return HistoryCheck(False, None)  # delta request: the caller sends only new items
        incoming = digests(request.turns)
        stored = session.history
        if not stored or incoming[: len(stored)] == stored:
            return HistoryCheck(False, incoming)
        self.log.mismatch = True
        if self.mismatch_policy == "reject":
            raise DualError(409, "Message history does not match the stored session history")
        return HistoryCheck(self.mismatch_policy == "restart_turn", incoming)

    @staticmethod
    def remember(
        session: DualState, request: DecodedRequest, checked: HistoryCheck, outcome: TurnOutcome
    ) -> None:
        """Store the request's history followed by the engine's answer."""
        history = (
            list(session.history) + digests(request.turns) if checked.incoming is None else checked.incoming
        )
        ours = Turn(
            role="assistant",
            text=outcome.content if outcome.kind == "final" else "",
            tool_calls=list(outcome.tool_calls),
        )
        history.append(turn_digest(ours))
        session.history = history
