"""What the planner is told about a run: built from a fixed vocabulary, never from runtime strings.

The planner must never see a byte that came from a tool (or from the quarantined LLM). A failed run's
message is shown only when

* its metadata is the default one (no tool data shaped it, by data or by control flow), and
* every word in it belongs to the vocabulary: the interpreter's own message templates, Python's error
  wording, built-in names, the program's own identifiers and literals, and the declared tools and their
  parameter names.

Otherwise the planner learns the error kind, the exception class and the line, and that the details were
withheld. Syntax errors and refusals describe the planner's own text and are shown as they are.

The messages of the planner loop are written here too: a failed run, a step that ended without
``complete_turn``, a denied call, a control-flow violation.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from relay.interpreter import InterpreterError
from relay.interpreter.builtins import BUILTIN_NAMES
from relay.meta import DEFAULT_META, Meta, ValueWithMeta

from .prompts import type_label

WITHHELD = "details withheld: they depend on tool data"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?")
_LINE_SUFFIX = re.compile(r"\s*\(line \d+\)\s*$")
_EXC_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::\s|$)")
_KINDS = {
    "syntax": "a syntax error",
    "refused": "a construct that is not allowed",
    "runtime": "an uncaught exception",
    "limit": "a resource limit",
}
# Wording of CPython's own exception messages that the interpreter passes through (int('x'), 1/0, ...).
_PYTHON_WORDING = """
a an and are as at be by can cannot could convert complex division does empty expected for from got has
have in index integer invalid is it its keyword length literal math modulo must no not object of on or out
range required sequence string the to too type unhashable unsupported value with zero argument arguments
base character characters day days decimal digits does month months year years hour minute second
microsecond microseconds format specifier unconverted data remains match time date datetime timedelta
timezone offset iso isoformat out empty separator substring found key allowed takes given positional only
one two three at least most element elements length update dictionary
"""


@cache
def _template_words() -> frozenset[str]:
    """Every word of every string literal in the interpreter's source: its message templates."""
    words: set[str] = set(_PYTHON_WORDING.split())
    folder = Path(__file__).resolve().parent.parent / "interpreter"
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words.update(w.lower() for w in _WORD.findall(node.value))
    words.update(n.lower() for n in BUILTIN_NAMES)
    return frozenset(words)


def program_words(program: str) -> frozenset[str]:
    """The program's own identifiers and literals."""
    words: set[str] = set()
    try:
        tree = ast.parse(program or "")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id.lower())
        elif isinstance(node, ast.Attribute):
            words.add(node.attr.lower())
        elif isinstance(node, ast.keyword) and node.arg:
            words.add(node.arg.lower())
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
            text = node.value if isinstance(node.value, str) else repr(node.value)
            words.update(w.lower() for w in _WORD.findall(text))
    return frozenset(words)


def tool_words(tools: Mapping[str, Any]) -> frozenset[str]:
    """Declared tool names and parameter names (``{name: ToolSpec}``)."""
    words: set[str] = set()
    for name, spec in tools.items():
        words.update(w.lower() for w in _WORD.findall(name))
        for p in getattr(spec, "params", ()):
            words.update(w.lower() for w in _WORD.findall(p))
    return frozenset(words)


def speaks_vocabulary(message: str, extra: frozenset[str]) -> bool:
    vocab = _template_words()
    for w in _WORD.findall(message):
        lw = w.lower()
        if lw not in vocab and lw not in extra and not w.replace(".", "").isdigit():
            return False
    return True


def error_message(kind: str, message: str, meta: Meta, program: str, tools: Mapping[str, Any]) -> str:
    """The error text the planner may see (without the line suffix)."""
    msg = _LINE_SUFFIX.sub("", message or "")
    if kind == "syntax" or (kind == "refused" and meta == DEFAULT_META):
        return msg  # about the planner's own program text
    exc = _EXC_PREFIX.match(msg)
    head = exc.group(1) if exc and exc.group(1) in BUILTIN_NAMES else None
    if kind == "limit":
        head = "Limit exceeded"
    elif kind == "refused":
        head = "Refused"
    elif head is None:
        head = "runtime error"
    if meta != DEFAULT_META:
        return f"{head} ({WITHHELD})"
    if not speaks_vocabulary(msg, program_words(program) | tool_words(tools)):
        return f"{head} (details withheld: they are not from the program's own text)"
    return msg


def kind_phrase(kind: str) -> str:
    return _KINDS.get(kind, "an error")


def type_shown(meta: Meta, label: str) -> str:
    """A variable's type for the planner: only when the value does not depend on tool data."""
    return label if meta == DEFAULT_META else "(type withheld: depends on tool data)"


# ------------------------------------------------------------------------------ the planner loop's messages


def _source_line(program: str, lineno: int | None) -> str:
    if not lineno:
        return ""
    lines = program.splitlines()
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def _variables(namespace: Mapping[str, ValueWithMeta], *, skip_final: bool) -> list[str]:
    return [
        f"{k}: {type_shown(v.meta, type_label(v.value))}"
        for k, v in namespace.items()
        if not (skip_final and k == "final_return_value")
    ]


def run_error_feedback(
    err: InterpreterError,
    namespace: Mapping[str, ValueWithMeta],
    program: str,
    tools: Mapping[str, Any],
    *,
    level: str,
    calls_run_again: bool,
) -> str:
    """What the planner learns about a failed program (``debug_info_level`` ``minimal`` / ``normal`` /
    ``extra``): built from a fixed vocabulary, never from text derived from tool results."""
    msg = error_message(err.kind, err.message, err.meta, program, tools)
    lines = [f"Running the program failed with {kind_phrase(err.kind)} at line {err.lineno or '?'}."]
    if level != "minimal":
        lines.append(f"Error: {msg}")
        src = _source_line(program, err.lineno)
        if src:
            lines.append(f"Line {err.lineno}: {src.strip()}")
    else:
        lines.append(f"Error type: {msg.split(':')[0].split(' (')[0]}")
    if level == "extra":
        names = _variables(namespace, skip_final=False)
        if names:
            lines.append("Variables defined when it stopped: " + ", ".join(names))
    if calls_run_again:
        lines.append("The whole new program runs again from the start, including its tool calls.")
    lines.append("Write the complete corrected program in one ```python block.")
    return "\n".join(lines)


def next_step_feedback(namespace: Mapping[str, ValueWithMeta]) -> str:
    """Multistep planning: the step ran to the end without ``complete_turn()``."""
    names = _variables(namespace, skip_final=True)
    return (
        "The step ran to the end without calling complete_turn(). Variables now defined: "
        + (", ".join(names) if names else "(none)")
        + ". Write the next step, or call complete_turn() if the request is answered."
    )


def control_flow_feedback(lineno: int | None | str) -> str:
    return (
        "The program was stopped: a branch condition (if/for/comprehension) at "
        f"line {lineno} depends on data that the security "
        "policy does not allow to influence control flow. Rewrite the program so that its "
        "control flow does not depend on tool results."
    )


def denied_call_feedback(program_tool_name: str, *, chosen_by_tool_data: bool) -> str:
    """A denied call, retried (``retry_on_policy_violation``). Which tool the program reached may depend on
    tool data: it is named only when it does not."""
    which = "A tool call" if chosen_by_tool_data else f"The call to `{program_tool_name}`"
    return (
        f"{which} was denied by the security policy. "
        "Write a program that accomplishes the request without that call, or with arguments "
        "the policy allows."
    )


_template_words()  # built when the relay starts, not at the first failed run
