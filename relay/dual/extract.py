"""Program extraction from a PLLM reply."""

from __future__ import annotations

import re

_PY_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\r?\n(.*?)(?:```|\Z)", re.S | re.I)
_ANY_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n(.*?)(?:```|\Z)", re.S)
_CLARIFY = re.compile(r"^\s*CLARIFY:\s*(.+?)\s*$", re.S)


def extract_program(reply: str) -> str:
    """The first ```python fenced block; else the first fenced block of any language; else the whole reply.

    An unterminated fence runs to the end of the reply (models cut off by a token limit).
    """
    text = reply or ""
    m = _PY_FENCE.search(text)
    if m is None and "```" in text:
        m = _ANY_FENCE.search(text)
    code = m.group(1) if m is not None else text
    return code.strip("\n").rstrip() + "\n" if code.strip() else ""


def extract_clarification(reply: str) -> str | None:
    """The question of a ``CLARIFY: <question>`` reply (no program), else None."""
    if not reply or "```" in reply:
        return None
    m = _CLARIFY.match(reply)
    return m.group(1) if m else None
