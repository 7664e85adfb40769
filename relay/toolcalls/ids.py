"""The ids the relay gives tool calls: ``tc-<session id>-<uuid1>``, so a tool result names its session."""

from __future__ import annotations

import re
import uuid

_TOOL_CALL_ID = re.compile(r"^tc-([0-9a-f-]{36})-")


def new_tool_call_id(session_id: str) -> str:
    """A fresh id for a tool call of ``session_id`` (time-ordered, unique per call)."""
    return f"tc-{session_id}-{uuid.uuid1()}"


def session_id_in(call_id: str) -> str | None:
    """The session id a ``tc-`` id carries, or None for any other id (not checked to be a valid UUID)."""
    match = _TOOL_CALL_ID.match(call_id)
    return match.group(1) if match else None
