"""Editor diagnostics for a SQRT or Cedar policy: where it is wrong, in words for people, and what would fit.

``diagnose(text, language)`` compiles the policy exactly as the relay does (``compile_policy``) and, when that
fails, turns the error into ``Diagnostic`` objects an editor can underline. For SQRT syntax errors the LALR
parse is replayed token by token so that:

* a missing ``;`` is reported where it is missing (right after the last token of the statement), not at the
  first token of the next statement, which is where the parser notices it;
* an unclosed ``{`` at the end of the text names the line that opened it;
* the expected tokens are listed as the author would type them (``';'``, ``'when'``, ``a name``).

Framework-free: the dashboard and the management API serve ``[d.as_dict() for d in diagnose(...)]``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from lark import Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.parsers.lalr_interactive_parser import InteractiveParser

from .errors import PolicyCompileError
from .policy import LANGUAGES, compile_policy

MAX_POLICY_CHARS = 200_000  # the editor's endpoint refuses larger texts before compiling

_SKIPPED_TERMINALS = frozenset(("WS", "LINE_COMMENT", "BLOCK_COMMENT"))
_CEDAR_POLICY_START = re.compile(r"\s*(permit|forbid|@)")
_CEDAR_TOKEN = re.compile(r"unexpected token `([^`]*)`")


@dataclass(frozen=True)
class Diagnostic:
    """One problem. ``line``/``column`` (1-based) is where it is; ``end_line``/``end_column`` (exclusive)
    end the stretch to underline, which starts at ``from_line``/``from_column``."""

    message: str
    line: int
    column: int
    from_line: int
    from_column: int
    end_line: int
    end_column: int
    expected: tuple[str, ...] = ()
    severity: str = "error"
    language: str = "sqrt"
    detail: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "from": {"line": self.from_line, "column": self.from_column},
            "to": {"line": self.end_line, "column": self.end_column},
            "expected": list(self.expected),
            "severity": self.severity,
            "language": self.language,
            "detail": self.detail,
        }


def diagnose(text: str, language: str = "sqrt") -> list[Diagnostic]:
    """The problems of a policy text (empty when it compiles). Never raises for any string."""
    lang = (language or "sqrt").strip().lower()
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported policy language {language!r} (expected 'sqrt' or 'cedar')")
    if len(text) > MAX_POLICY_CHARS:
        return [
            _at(
                text,
                1,
                1,
                f"The policy is too long ({len(text)} characters; at most {MAX_POLICY_CHARS}).",
                lang,
            )
        ]
    try:
        compile_policy(text, lang)
    except PolicyCompileError as err:
        if lang == "cedar":
            return [_cedar_diagnostic(text, err)]
        return [_sqrt_syntax_diagnostic(text, err) or _from_error(text, err, lang)]
    return []


# ------------------------------------------------------------------------------------------------ SQRT


def _sqrt_syntax_diagnostic(text: str, err: PolicyCompileError) -> Diagnostic | None:
    """Replay the LALR parse to explain the syntax error ``err`` reports; None when ``err`` is another
    kind of error (a semantic one, or one only the Earley fallback reaches)."""
    from . import parser as sqrt_parser

    accepted: list[Token] = []
    pending: Token | None = None
    interactive: InteractiveParser | None = None
    before: InteractiveParser | None = None
    yielded = 0
    try:
        interactive = sqrt_parser._lalr().parse_interactive(text)
        for token in interactive.iter_parse():  # yields each token just before feeding it
            if pending is not None:
                accepted.append(pending)
            pending = token
            yielded += 1
        # the parser as it was before the end of the text (lark leaves these unannotated)
        before = interactive.copy(deepcopy_values=False)  # type: ignore[no-untyped-call]
        interactive.feed_eof(pending)  # type: ignore[no-untyped-call]
        return None
    except UnexpectedToken as exc:
        if exc.token.type == "$END" and pending is not None and pending is not exc.token:
            accepted.append(pending)  # the failing "token" is the end of the text: all yielded were accepted
        if before is None:  # a token failed: the parser as it was just before it, from a second pass
            before = _parser_before_token(text, yielded)
        return _unexpected_token(text, err, exc, accepted, _acceptable(before))
    except UnexpectedCharacters as exc:
        if pending is not None:
            accepted.append(pending)
        return _unexpected_character(text, err, exc, _acceptable(interactive))
    except UnexpectedEOF as exc:  # pragma: no cover - lark reports EOF as an UnexpectedToken for LALR
        return _unexpected_end(text, err, exc.expected, accepted)
    except (LarkError, RecursionError, UnexpectedInput):
        return None
    except Exception:  # noqa: BLE001 - an AST-builder error: the compiler's message is the right one
        return None


def _parser_before_token(text: str, number: int) -> InteractiveParser | None:
    """The parser just before it is fed the ``number``-th token (1-based). One copy, taken once: copying
    before every token of the first pass cost O(tokens x stack depth), seconds for a deeply nested text."""
    from . import parser as sqrt_parser

    interactive = sqrt_parser._lalr().parse_interactive(text)
    try:
        for count, _token in enumerate(interactive.iter_parse(), 1):
            if count == number:
                return interactive.copy(deepcopy_values=False)  # type: ignore[no-untyped-call, no-any-return]
    except Exception:  # noqa: BLE001 - the first pass failed here too; without a state, no expected tokens
        return None
    return None


def _acceptable(interactive: InteractiveParser | None) -> set[str] | None:
    """The terminals the parser would really take next (an LALR state's lookaheads are wider)."""
    if interactive is None:
        return None
    try:
        return set(interactive.accepts())  # type: ignore[no-untyped-call]  # unannotated in lark
    except Exception:  # noqa: BLE001 - fall back to the error's own list
        return None


def _matches(err: PolicyCompileError, line: int, column: int) -> bool:
    return err.line == line and err.column == column


def _unexpected_token(
    text: str,
    err: PolicyCompileError,
    exc: UnexpectedToken,
    accepted: list[Token],
    acceptable: set[str] | None,
) -> Diagnostic | None:
    expected_names = acceptable if acceptable else set(exc.accepts or exc.expected or ())
    token = exc.token
    if token.type == "$END":
        return _unexpected_end(text, err, expected_names, accepted)
    line, column, end_line, end_column = _span(token)
    if not _matches(err, line, column):
        return None  # the compiler reported something else (e.g. the Earley fallback's own error)
    expected = _display(expected_names)
    previous = accepted[-1] if accepted else None
    if "SEMICOLON" in expected_names and previous is not None:
        return _missing(";", previous, token, expected, text)
    return Diagnostic(
        message=f"Unexpected {_describe(token)}. Expected {_human_list(expected)}."
        if expected
        else f"Unexpected {_describe(token)}.",
        line=line,
        column=column,
        from_line=line,
        from_column=column,
        end_line=end_line or line,
        end_column=end_column or column + 1,
        expected=expected,
        detail=err.message,
    )


def _missing(what: str, previous: Token, found: Token, expected: tuple[str, ...], text: str) -> Diagnostic:
    """``what`` belongs right after ``previous``: report it there, underlining ``previous``."""
    from_line, from_column, end_line, end_column = _span(previous)
    where = "" if found.line == end_line else f" (line {found.line} starts a new one)"
    statement = _line_text(text, end_line)[: end_column - 1].strip()
    if len(statement) > 40:
        statement = "…" + statement[-39:]
    return Diagnostic(
        message=f"Missing '{what}' at the end of `{statement}`{where}.",
        line=end_line,
        column=end_column,
        from_line=from_line,
        from_column=from_column,
        end_line=end_line,
        end_column=end_column,
        expected=_first(f"'{what}'", expected),
        detail=f"found {_describe(found)} at line {found.line}, column {found.column}",
    )


def _unexpected_end(
    text: str, err: PolicyCompileError, expected_names: Collection[str], accepted: list[Token]
) -> Diagnostic:
    expected = _display(expected_names)
    previous = accepted[-1] if accepted else None
    if previous is None:
        return _from_error(text, err, "sqrt", expected=expected)
    if "SEMICOLON" in expected_names:
        return _missing(";", previous, _end_token(text), expected, text)
    if "RBRACE" in expected_names:
        opener = _unclosed_brace(accepted)
        opened = f" (the block opened on line {opener.line} is not closed)" if opener is not None else ""
        from_line, from_column, line, column = _span(previous)
        return Diagnostic(
            message=f"Missing '}}' at the end of the policy{opened}.",
            line=line,
            column=column,
            from_line=from_line,
            from_column=from_column,
            end_line=line,
            end_column=column,
            expected=_first("'}'", expected),
            detail=err.message,
        )
    from_line, from_column, line, column = _span(previous)
    return Diagnostic(
        message=f"The policy ends too early, after {_describe(previous)}. Expected {_human_list(expected)}."
        if expected
        else f"The policy ends too early, after {_describe(previous)}.",
        line=line,
        column=column,
        from_line=from_line,
        from_column=from_column,
        end_line=line,
        end_column=column,
        expected=expected,
        detail=err.message,
    )


def _unexpected_character(
    text: str, err: PolicyCompileError, exc: UnexpectedCharacters, acceptable: set[str] | None
) -> Diagnostic:
    line, column = exc.line, exc.column
    if err.message.startswith("unterminated string"):
        line_text = _line_text(text, line)
        return Diagnostic(
            message="This string is not closed: add the closing '\"'.",
            line=line,
            column=column,
            from_line=line,
            from_column=column,
            end_line=line,
            end_column=max(len(line_text) + 1, column + 1),
            expected=("'\"'",),
            detail=err.message,
        )
    pos = cast(int, exc.pos_in_stream)  # always set for this error
    char = text[pos] if 0 <= pos < len(text) else ""
    expected = _display(acceptable if acceptable else (exc.allowed or ()))
    shown = repr(char) if char.strip() else "this character"
    return Diagnostic(
        message=f"SQRT has no {shown} here." + (f" Expected {_human_list(expected)}." if expected else ""),
        line=line,
        column=column,
        from_line=line,
        from_column=column,
        end_line=line,
        end_column=column + 1,
        expected=expected,
        detail=err.message,
    )


def _span(token: Token) -> tuple[int, int, int, int]:
    """Line, column, end line and end column of a token (typed optional by lark; its lexers set them)."""
    return cast("tuple[int, int, int, int]", (token.line, token.column, token.end_line, token.end_column))


def _unclosed_brace(tokens: list[Token]) -> Token | None:
    stack: list[Token] = []
    for tok in tokens:
        if tok.type == "LBRACE":
            stack.append(tok)
        elif tok.type == "RBRACE" and stack:
            stack.pop()
    return stack[0] if stack else None


def _end_token(text: str) -> Token:
    lines = text.split("\n")
    return Token("$END", "", len(text), len(lines), len(lines[-1]) + 1)


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the policy"
    value = str(token)
    if token.type == "IDENT":
        return f"name `{_short(value)}`"
    if token.type in ("STRING", "REGEX", "WILDCARD", "DATETIME"):
        return f"literal {_short(value)}"
    if token.type in ("INT", "FLOAT"):
        return f"number {value}"
    return f"'{_short(value)}'"


def _display(names: Iterable[str]) -> tuple[str, ...]:
    from .parser import _terminal_display

    table = _terminal_display()  # terminals only: a parse table's goto entries name rules too
    shown = sorted({table[n] for n in names if n in table and n not in _SKIPPED_TERMINALS and n != "$END"})
    shown.sort(key=lambda s: (not s.startswith("'"), s))
    return tuple(shown)


def _first(item: str, items: tuple[str, ...]) -> tuple[str, ...]:
    return (item, *(i for i in items if i != item))


def _human_list(items: tuple[str, ...], limit: int = 6) -> str:
    items = tuple(items)
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" or {len(items) - limit} more"
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _short(text: str) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= 40 else text[:37] + "…"


# ------------------------------------------------------------------------------------------------ Cedar


def _cedar_diagnostic(text: str, err: PolicyCompileError) -> Diagnostic:
    """Cedar reports a missing ``;`` at the next policy's first token (or at the end of the text); move it to
    the end of the policy's last line when that line lacks one."""
    lines = text.split("\n")
    message = err.message.removeprefix("Cedar: ")
    line, column = _clamp(text, err.line, err.column)
    at_end = "end of input" in message
    if at_end or (_CEDAR_POLICY_START.match(_line_text(text, line)) and line > 1):
        prev = len(lines) if at_end else line - 1
        while prev >= 1 and (not lines[prev - 1].strip() or lines[prev - 1].strip().startswith("//")):
            prev -= 1
        prev_text = lines[prev - 1].rstrip() if prev >= 1 else ""
        if (
            prev_text
            and not prev_text.endswith(";")
            and not prev_text.lstrip().startswith("@")
            and (not at_end or prev_text.endswith((")", "}")))
        ):
            after = "" if at_end else f" (the next one starts on line {line})"
            return Diagnostic(
                message=f"Missing ';' at the end of this Cedar policy{after}.",
                line=prev,
                column=len(prev_text) + 1,
                from_line=prev,
                from_column=len(prev_text) - len(prev_text.lstrip()) + 1,
                end_line=prev,
                end_column=len(prev_text) + 1,
                expected=("';'",),
                language="cedar",
                detail=message,
            )
    found = _CEDAR_TOKEN.search(message)
    width = max(len(found.group(1)) if found else 1, 1)
    end_column = min(column + width, len(_line_text(text, line)) + 1)
    return Diagnostic(
        message=f"Cedar: {message[:1].upper()}{message[1:]}".rstrip(".") + ".",
        line=line,
        column=column,
        from_line=line,
        from_column=column,
        end_line=line,
        end_column=end_column,
        language="cedar",
        detail=message,
    )


# ------------------------------------------------------------------------------------------------ shared


def _line_text(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def _word_end(line_text: str, column: int) -> int:
    """The column after the word (or character) starting at ``column``."""
    i = column - 1
    if i >= len(line_text):
        return column
    m = re.match(r'[A-Za-z_][A-Za-z0-9_]*|[rwd]?"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|\S', line_text[i:])
    return column + (len(m.group()) if m else 1)


def _clamp(text: str, line: int, column: int) -> tuple[int, int]:
    lines = text.split("\n")
    line = min(max(int(line or 1), 1), len(lines))
    column = min(max(int(column or 1), 1), len(lines[line - 1]) + 1)
    return line, column


def _at(
    text: str,
    line: int,
    column: int,
    message: str,
    language: str,
    expected: tuple[str, ...] = (),
    detail: str = "",
) -> Diagnostic:
    line, column = _clamp(text, line, column)
    end = _word_end(_line_text(text, line), column)
    return Diagnostic(
        message=message,
        line=line,
        column=column,
        from_line=line,
        from_column=column,
        end_line=line,
        end_column=end,
        expected=expected,
        language=language,
        detail=detail,
    )


def _from_error(
    text: str, err: PolicyCompileError, language: str, expected: tuple[str, ...] = ()
) -> Diagnostic:
    message = err.message.split(" — expected")[0]
    message = message[:1].upper() + message[1:]
    if not message.endswith("."):
        message += "."
    return _at(text, err.line, err.column, message, language, expected=expected, detail=err.message)
