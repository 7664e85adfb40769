"""Tolerance for programs compiled by the official client's LangGraph executor (framework-free)."""

from __future__ import annotations

import ast
import re

_HEADER_LINE = re.compile(r"on line (\d+)")


def fill_empty_blocks(program: str, limit: int = 50) -> str:
    """Give empty blocks a ``pass`` body.

    The official client compiles a conditional edge to ``END`` into ``if next_node == '__end__':`` with
    nothing under it, which is not valid Python; the intent (do nothing on that branch) is unambiguous.
    Any other syntax error is left for the interpreter to report.
    """
    lines = program.split("\n")
    for _ in range(limit):
        try:
            ast.parse("\n".join(lines))
            break
        except IndentationError as exc:
            m = _HEADER_LINE.search(exc.msg or "")
            if "expected an indented block" not in (exc.msg or "") or not m:
                break
            header = int(m.group(1)) - 1
            indent = len(lines[header]) - len(lines[header].lstrip())
            lines.insert(header + 1, " " * (indent + 4) + "pass")
        except SyntaxError:
            break
    return "\n".join(lines)
