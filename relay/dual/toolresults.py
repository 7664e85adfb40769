"""Decoding of client tool results before they are bound in the program.

Order: transform (``tool_result_transform``) -> error detection (``detect_tool_errors``; the client's own
``is_error`` flag always counts) -> JSON decoding (``strict_tool_result_parsing``) -> manual wrapper.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from relay.regex import try_client_pattern

# Codex CLI shell output: either the legacy JSON envelope {"output": "...", "metadata": {"exit_code": 0, ...}}
# or the text form "Exit code: 0\nWall time: 1.2 seconds\n[Total output lines: 3\n]Output:\n<output>".
_CODEX_TEXT = re.compile(
    r"\A\s*(?:Chunk ID:[^\n]*\n)?Exit code:\s*(-?\d+)\s*\n(?:(?!Output:)[A-Za-z ]+:[^\n]*\n)*Output:\s*\n?(.*)\Z",
    re.S,
)
_CODEX_PROCESS = re.compile(r"\A\s*Process exited with code\s+(-?\d+)\s*\n(.*)\Z", re.S)


@dataclass(slots=True)
class Transformed:
    text: str
    exit_code: int | None = None


def codex_transform(content: str) -> Transformed:
    """Strip the Codex-CLI metadata prefix; return the command output and its exit code (None if unknown)."""
    s = content or ""
    stripped = s.lstrip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "output" in obj and isinstance(obj.get("metadata"), dict):
            code = obj["metadata"].get("exit_code")
            out = obj["output"]
            return Transformed(
                out if isinstance(out, str) else json.dumps(out),
                code if isinstance(code, int) and not isinstance(code, bool) else None,
            )
    m = _CODEX_TEXT.match(s)
    if m:
        return Transformed(m.group(2), int(m.group(1)))
    m = _CODEX_PROCESS.match(s)
    if m:
        return Transformed(m.group(2), int(m.group(1)))
    return Transformed(s, None)


def regex_error(text: str, pattern: str | None, max_len: int | None) -> bool:
    """``detect_tool_errors: "regex"``: does ``pattern`` occur in the (first ``max_len`` characters of the)
    result? A client pattern, so through ``relay.regex`` (RE2: linear time in the text, which is at most the
    request body, or ``max_len``); a refused pattern (X-Config validation refuses it first) detects nothing."""
    if not pattern:
        return False
    rx = try_client_pattern(pattern)
    if rx is None:
        return False
    if max_len is not None and max_len >= 0:
        text = text[:max_len]
    return rx.search(text) is not None


def decode_content(text: str, *, strict: bool, has_output_schema: bool = False) -> Any:
    """JSON-decode a tool result when allowed (``strict``: only for tools declaring an output schema)."""
    if strict and not has_output_schema:
        return text
    s = text.strip()
    if not s:
        return text
    c = s[0]
    if c in '{["-0123456789tfn':
        try:
            return json.loads(s)
        except ValueError:
            return text
    return text
