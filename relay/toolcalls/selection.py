"""Tool selection (``fsm.min_num_tools_for_filtering``): with that many tools or more, a model first picks the
ones the turn needs. What is asked and how the answer is read; the caller makes the LLM call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..formats.model import ToolDef

DEFAULT_THRESHOLD = 10

SELECTION_SYSTEM = (
    "You select the tools an assistant needs for the user's request. Reply with the names of the relevant "
    "tools only, chosen from the list; when unsure, include the tool."
)


def needs_selection(tool_count: int, threshold: int | None) -> bool:
    """True when a request offers enough tools to be worth a selection (the default threshold is 10)."""
    return tool_count >= (threshold or DEFAULT_THRESHOLD)


def selection_request(
    user_query: str | None, tools: Sequence[ToolDef]
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(messages, JSON schema) asking a model to choose among ``tools`` for ``user_query``."""
    listing = "\n".join(f"- {t.name}: {t.description[:200]}" for t in tools)
    schema = {
        "type": "object",
        "properties": {
            "tools": {"type": "array", "items": {"type": "string", "enum": [t.name for t in tools]}}
        },
        "required": ["tools"],
        "additionalProperties": False,
    }
    messages = [{"role": "user", "content": f"Request: {user_query}\n\nTools:\n{listing}"}]
    return messages, schema


def chosen_names(parsed: Any) -> list[str] | None:
    """The tool names a selection answer chose, or None (no usable choice: every tool stays offered)."""
    chosen = parsed.get("tools") if isinstance(parsed, dict) else None
    return [n for n in chosen if isinstance(n, str)] if chosen else None


def tool_name(tool: Any) -> str | None:
    """The name of a tool as a client declared it (Chat's ``function.name``, or a flat ``name``)."""
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    fn: dict[str, Any] = function if isinstance(function, dict) else tool
    name = fn.get("name")
    return name if isinstance(name, str) else None


def keep_selected(tools: list[Any], selected: Sequence[str]) -> list[Any]:
    """The declared tools whose names were selected, in the client's order."""
    return [t for t in tools if tool_name(t) in selected]
