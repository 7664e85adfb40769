"""Exceptions of the SQRT engine."""

from __future__ import annotations

from typing import Any


class PolicyCompileError(ValueError):
    """A policy that does not compile: a syntax error or a semantic error.

    ``str(err)`` is one readable sentence::

        line 3, column 17: unexpected '}' — expected one of: ';', 'when', 'always' (in: `    must deny }`)
    """

    def __init__(self, message: str, line: int, column: int, source_line: str = "") -> None:
        self.message = message
        self.line = int(line)
        self.column = int(column)
        self.source_line = source_line
        super().__init__(self.sentence())

    def sentence(self) -> str:
        text = f"line {self.line}, column {self.column}: {self.message}"
        src = self.source_line.strip("\r\n")
        if src.strip():
            text += f" (in: `{src}`)"
        return text

    def __str__(self) -> str:
        return self.sentence()

    def __reduce__(self) -> tuple[type[PolicyCompileError], tuple[str, int, int, str]]:
        return (type(self), (self.message, self.line, self.column, self.source_line))

    def as_detail(self) -> str:
        """Text for an HTTP 400 ``detail``: message, line, column, the source line and a caret."""
        text = f"Invalid policy: {self.message} at line {self.line}, column {self.column}"
        src = self.source_line.rstrip("\r\n")
        if src.strip():
            caret = " " * max(self.column - 1, 0) + "^"
            text += f"\n\n  {src}\n  {caret}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "source_line": self.source_line,
        }


class ManualWrapperError(ValueError):
    """A tool result with ``"is_sequrity_var": true`` that is not a well-formed wrapper."""


class PolicyRuntimeError(Exception):
    """An error while evaluating a rule or an update; the engine fails closed."""
