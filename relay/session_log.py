"""What the session log keeps of a request's steps: one per-key setting, the same for both architectures.

``ApiKey.content_logging`` (the key's configure page, ``create_api_key --content-logging``):

* ``full``: messages, tool-call arguments, tool results (as the model saw them: after guardrails and the
  manual wrapper), programs and the final value;
* ``metadata`` (the default, privacy-preserving for tool results): as ``full``, but tool results only as their
  metadata (tool, ok, tags and other metadata, size): no result content;
* ``none``: no content at all: no message text, argument values, results, programs or final values; steps
  keep their structure (tool names, verdicts and deciding rules, LLM calls, guardrail actions, errors).

Steps whose content was left out say so (``withheld``: the level), so the inspector can tell a withheld value
from an empty one. ``redact`` never changes the step it is given.
"""

from __future__ import annotations

import json
from typing import Any

LEVELS = ("none", "metadata", "full")
DEFAULT_LEVEL = "metadata"
MAX_VALUE_CHARS = 20_000


def clip(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """A JSON value for the log, or a truncated text preview of it when it is too large."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)[:limit]
    if len(text) <= limit:
        return value
    return text[:limit] + f"… ({len(text) - limit} more characters)"


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return 0


def redact(event: dict, level: str) -> dict:
    """The step ``event`` (``{..., "type", "data"}``) as the key's ``level`` allows it to be logged."""
    if level not in LEVELS:
        level = DEFAULT_LEVEL
    if level == "full":
        return event
    kind = event.get("type")
    data = event.get("data") or {}
    out: dict[str, Any] | None = None
    if kind == "tool_result":
        out = {k: v for k, v in data.items() if k not in ("content", "value")}
        if "content" in data or "value" in data:
            out["size"] = _size(data.get("content", data.get("value")))
        if level == "none":
            out.pop("meta", None)
            out.pop("guardrails", None)
        out["withheld"] = level
    elif level == "none":
        if kind == "tool_call":
            out = {**data, "args": {name: {"withheld": True} for name in (data.get("args") or {})}}
            out.pop(
                "session_meta", None
            )  # like argument metadata, left out: a dry-run cannot replay the call
            out.pop("control_meta", None)
            if isinstance(out.get("record"), dict) and "args" in out["record"]:
                out["record"] = {k: v for k, v in out["record"].items() if k != "args"}
            out["withheld"] = level
        elif kind in ("user_message", "assistant_message"):
            out = {k: v for k, v in data.items() if k != "text"}
            out["withheld"] = level
        elif kind == "program":
            out = {k: v for k, v in data.items() if k != "program"}
            out["withheld"] = level
        elif kind == "final":
            out = {k: v for k, v in data.items() if k != "final_return_value"}
            out["withheld"] = level
    if out is None:
        return event
    return {**event, "data": out}
