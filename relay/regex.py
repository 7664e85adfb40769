"""Client-supplied regular expressions: compiled once, checked at compile time, matched in linear time.

Every regular expression that comes from a client goes through this module, never through ``re``:

* SQRT (``relay.sqrt.parser``): regex tool ids ``tool r"..."``, set elements ``r"..."``, ``str matching r"..."``
  and the wildcards ``w"..."`` / ``str like w"..."`` (globs are translated to a regular expression here too);
* X-Config (``relay.header_documents``, checked when the document is parsed; used by ``relay.dual``):
  ``fsm.force_to_cache`` (full match of a tool name) and ``fsm.detect_tool_error_regex_pattern`` (search in a
  tool result).

(Cedar policies have only ``like`` globs, matched by cedarpy's Rust engine; the relay's own fixed patterns,
guardrail detectors and lexers included, are not client-supplied and stay on ``re``.)

::

    rx = compile_client_pattern(r"[a-z]+@example\\.com")  # ClientPatternError if refused
    rx.fullmatch("bob@example.com")  # True or None
    rx.search("see bob@example.com")  # True or None

Matching uses RE2 (the ``google-re2`` package): time linear in the length of the text, whatever the pattern,
so ``(a+)+$`` cannot stall a worker. (Full matches of the simplest patterns, which cannot backtrack more than
text length x pattern length, use Python's matcher: see ``_linear_for_python``.) What RE2 cannot do in linear time is refused when the pattern is compiled,
with a message naming the construct and its position in the pattern: backreferences (``\\1``,
``(?P=name)``), lookahead and lookbehind (``(?=``, ``(?!``, ``(?<=``, ``(?<!``), atomic groups ``(?>...)``,
possessive quantifiers (``a*+``), conditionals ``(?(1)...)``, verbose mode ``(?x)``, and repetition counts
above 1000. Patterns are otherwise Python ``re`` syntax (anything ``re`` rejects is rejected with ``re``'s own
message), translated where RE2 spells things differently (``\\Z``, ``\\uXXXX``, ``\\N{...}``, ``{,n}``,
octal escapes, ``(?#...)``, ``[`` inside a class). Meaning is that of ``re`` with the ASCII flag
(``re.ASCII``, ``(?a)``): ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII classes (``re`` without the flag
also counts other scripts' letters and digits); ``(?i)`` folds case over all of Unicode. ``$`` without
``(?m)`` matches at the end of the text; at the end of a searched pattern it also matches before a final
newline, as in ``re`` (elsewhere in a pattern, ``re``'s "or before a final newline" is not kept).

Bounds: a pattern of at most ``MAX_PATTERN_CHARS`` characters compiles to at most ``MAX_PROGRAM_SIZE`` RE2
instructions in at most ``MAX_MEM`` bytes (RE2's DFA cache included), so a pattern costs a bounded amount of
memory and a matched character a bounded amount of time: nanoseconds normally (RE2's DFA); when an
adversarial pattern and text exhaust the DFA cache RE2 falls back to its NFA, measured at up to ~0.15 µs per
character for small patterns and ~1 µs per character at the cap. The text is what the caller passes: tool
arguments and results are bounded by the request body (and the interpreter's string limit), tool-error
detection by ``detect_tool_error_max_result_length``. Matching releases the GIL. Texts with lone surrogates
(valid in JSON) are matched with U+FFFD in their place.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from collections.abc import Callable
from typing import Annotated

import re2
from pydantic import AfterValidator

MAX_PATTERN_CHARS = 10_000
MAX_PROGRAM_SIZE = 2_000
MAX_REPEAT = 1000
MAX_MEM = 512 * 1024

_HINT = "client regular expressions are matched in linear time, by RE2"


class ClientPatternError(ValueError):
    """A client pattern that is refused. ``message`` is one readable sentence; ``position`` is the offset of
    the offending construct in the pattern (0-based), or None when it concerns the whole pattern."""

    def __init__(self, message: str, position: int | None = None, *, unsupported: bool = True) -> None:
        self.message = message
        self.position = position
        self.unsupported = unsupported  # False: not a valid Python regular expression at all
        super().__init__(message if position is None else f"at position {position}: {message}")


def _options() -> re2.Options:
    o = re2.Options()
    o.log_errors = False
    o.never_capture = True  # groups are never read back; RE2 is faster without captures
    o.max_mem = MAX_MEM
    return o


_OPTIONS = _options()
_SURROGATE = re.compile("[\ud800-\udfff]")


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


try:  # the compiled RE2 object behind google-re2's wrapper: 6x cheaper per call than the wrapper's generators
    _probe = re2.compile("a", _OPTIONS)
    _RAW = _probe._regexp.Match(re2._Anchor.ANCHOR_BOTH, b"a", 0, 1)[0] == (0, 1)
    _BOTH, _UNANCHORED = re2._Anchor.ANCHOR_BOTH, re2._Anchor.UNANCHORED
except Exception:  # noqa: BLE001 - another google-re2 layout: use its public API
    _RAW = False
_NO_MATCH = (-1, -1)


class ClientPattern:
    """A compiled client pattern. ``fullmatch(text)`` / ``search(text)`` return True or None (so both
    ``if rx.fullmatch(s)`` and ``rx.fullmatch(s) is not None`` read naturally); ``pattern`` is the source."""

    __slots__ = ("pattern", "program_size", "_full", "_search", "_full_raw", "_search_raw", "_py_full")

    def __init__(self, pattern: str, full: re2._Regexp, search: re2._Regexp) -> None:
        self.pattern = pattern
        # Fast path: a pattern with no group, alternation or counted repetition and at most one quantifier
        # cannot backtrack more than (text length x pattern length) in a full match, so Python's
        # matcher (4x cheaper per call than crossing into RE2) is as safe for it. Same meaning (ASCII).
        self._py_full = re.compile(pattern, re.ASCII) if _linear_for_python(pattern) else None
        self.program_size = max(full.programsize, search.programsize)
        self._full = full
        self._search = search
        self._full_raw = full._regexp if _RAW else None
        self._search_raw = search._regexp if _RAW else None

    def __repr__(self) -> str:
        return f"ClientPattern({self.pattern!r})"

    def __reduce__(self) -> tuple[Callable[[str], ClientPattern], tuple[str]]:
        return (compile_client_pattern, (self.pattern,))

    def fullmatch(self, text: str) -> bool | None:
        py = self._py_full
        if py is not None:
            return True if py.fullmatch(text) is not None else None
        b = _utf8(text)
        raw = self._full_raw
        if raw is not None:
            return True if raw.Match(_BOTH, b, 0, len(b))[0] != _NO_MATCH else None
        return True if self._full.fullmatch(b) is not None else None

    def search(self, text: str) -> bool | None:
        b = _utf8(text)
        raw = self._search_raw
        if raw is not None:
            return True if raw.Match(_UNANCHORED, b, 0, len(b))[0] != _NO_MATCH else None
        return True if self._search.search(b) is not None else None


def _utf8(text: str) -> bytes:
    """What RE2 matches: the text's UTF-8 (lone surrogates, valid in JSON, as U+FFFD)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _encode(text)


def _linear_for_python(p: str) -> bool:
    """No ``( ) | {``, ``^``/``$`` only at the ends, at most one unescaped ``*``, ``+`` or ``?`` (characters
    inside a class count too: conservative)."""
    if any(c in p for c in "()|{") or "$" in p[:-1] or "^" in p[1:]:
        return False
    quantifiers = 0
    i = 0
    while i < len(p):
        if p[i] == "\\":
            i += 2
            continue
        if p[i] in "*+?":  # (several ``?`` backtrack exponentially too: ``a?a?a?aaa``)
            quantifiers += 1
        i += 1
    return quantifiers <= 1


# ------------------------------------------------------------------------------------------ translation

_OCT = "01234567"
_HEX = "0123456789abcdefABCDEF"
_FLAGS = "aiLmsux"
_QUANT = re.compile(r"\{(\d*)(,?)(\d*)\}")
_S_CLASS = r"\t\n\v\f\r "  # re's ASCII \s (RE2's \s lacks \v)


def _unsupported(what: str, pos: int) -> ClientPatternError:
    return ClientPatternError(f"{what} not supported ({_HINT})", pos)


def _char(cp: int) -> str:
    return f"\\x{{{cp:x}}}"


def _translate(p: str) -> tuple[str, str]:  # noqa: C901 - a scanner: one branch per token of the syntax
    """Python ``re`` syntax (already accepted by ``re``) -> RE2 syntax: (for fullmatch, for search)."""
    out: list[str] = []
    # `$` that can end the whole match (followed by `|`, `)` or the end, up through groups that are not
    # quantified), per open group; their indexes in ``out``
    frames: list[list[int]] = [[]]
    n = len(p)
    i = 0
    in_class = False
    class_body_start = -1
    multiline = False
    after_quant = False  # the previous item was a quantifier (`*`, `+`, `?`, `{m,n}`) without a lazy `?`
    while i < n:
        c = p[i]
        if in_class:
            if c == "]" and i != class_body_start:
                in_class = False
                out.append("]")
                i += 1
                continue
            if c == "\\":
                i = _class_escape(p, i, out)
                continue
            out.append("\\[" if c == "[" else c)
            i += 1
            continue
        quant = False
        if c == "\\":
            i = _escape(p, i, out)
        elif c == "[":
            in_class = True
            out.append("[")
            i += 1
            if i < n and p[i] == "^":
                out.append("^")
                i += 1
            class_body_start = i
        elif c == "(":
            i, opened, global_flags = _group(p, i, out)
            if opened:
                frames.append([])
            multiline = multiline or "m" in global_flags
        elif c == ")":
            out.append(")")
            i += 1
            pending = frames.pop()
            if i == n or p[i] in "|)":
                frames[-1].extend(pending)
        elif c in "*+?":
            if c == "+" and after_quant:
                raise _unsupported("possessive quantifiers are", i)
            if c == "?" and after_quant:
                out.append("?")  # lazy
                i += 1
                after_quant = False
                continue
            out.append(c)
            i += 1
            quant = True
        elif c == "{" and (m := _QUANT.match(p, i)) and (m.group(1) or m.group(2)):
            lo, comma, hi = m.group(1), m.group(2), m.group(3)
            for bound in (lo, hi):
                if bound and int(bound) > MAX_REPEAT:
                    raise _unsupported(f"repetition counts above {MAX_REPEAT} are", i)
            out.append("{" + (lo or "0") + comma + hi + "}")
            i = m.end()
            quant = True
        elif c == "{":
            out.append("\\{")
            i += 1
        elif c == "}":
            out.append("\\}")
            i += 1
        elif c == "$":
            if i + 1 == n or p[i + 1] in "|)":
                frames[-1].append(len(out))
            out.append("$")
            i += 1
        else:
            out.append(c)
            i += 1
        after_quant = quant
    full = "".join(out)
    if multiline or not frames[0]:
        return full, full
    for k in frames[0]:
        out[k] = r"(?:\n?\z)"  # re's `$`: at the end, or before a final newline
    return full, "".join(out)


def _escape(p: str, i: int, out: list[str]) -> int:
    """An escape outside a class at ``p[i] == '\\'``; returns the index after it."""
    c = p[i + 1]
    if c in "123456789":
        # re: three octal digits are an octal escape; otherwise one or two digits are a group reference
        if c in _OCT and p[i + 2 : i + 3] in tuple(_OCT) and p[i + 3 : i + 4] in tuple(_OCT):
            out.append(_char(int(p[i + 1 : i + 4], 8)))
            return i + 4
        raise _unsupported("backreferences are", i)
    if c == "0":
        j = i + 2
        while j < i + 4 and j < len(p) and p[j] in _OCT:
            j += 1
        out.append(_char(int(p[i + 1 : j], 8)))
        return j
    if c == "s":
        out.append(f"[{_S_CLASS}]")
    elif c == "S":
        out.append(f"[^{_S_CLASS}]")
    elif c == "Z":
        out.append(r"\z")
    elif c in "uUN":
        return _unicode_escape(p, i, out)
    elif c == "x":
        out.append(p[i : i + 4])
        return i + 4
    elif ord(c) >= 128:
        out.append(_char(ord(c)))
    else:  # \A \b \B \d \D \w \W \a \f \n \r \t \v, and escaped punctuation
        out.append("\\" + c)
    return i + 2


def _class_escape(p: str, i: int, out: list[str]) -> int:
    """An escape inside a class."""
    c = p[i + 1]
    if c in _OCT:  # re: up to three octal digits
        j = i + 2
        while j < i + 4 and j < len(p) and p[j] in _OCT:
            j += 1
        out.append(_char(int(p[i + 1 : j], 8)))
        return j
    if c == "b":
        out.append(r"\x08")
    elif c == "s":
        out.append(_S_CLASS)
    elif c in "uUN":
        return _unicode_escape(p, i, out)
    elif c == "x":
        out.append(p[i : i + 4])
        return i + 4
    elif ord(c) >= 128:
        out.append(_char(ord(c)))
    else:
        out.append("\\" + c)
    return i + 2


def _unicode_escape(p: str, i: int, out: list[str]) -> int:
    c = p[i + 1]
    if c == "N":
        end = p.index("}", i)
        cp = ord(unicodedata.lookup(p[i + 3 : end]))
        nxt = end + 1
    else:
        width = 4 if c == "u" else 8
        cp = int(p[i + 2 : i + 2 + width], 16)
        nxt = i + 2 + width
    if 0xD800 <= cp <= 0xDFFF:
        raise _unsupported("surrogate code points are", i)
    out.append(_char(cp))
    return nxt


def _group(p: str, i: int, out: list[str]) -> tuple[int, int, str]:
    """A group opening at ``p[i] == '('``: (index after it, groups opened (0 or 1), global flags set)."""
    if not p.startswith("(?", i):
        out.append("(")
        return i + 1, 1, ""
    rest = p[i + 2 : i + 4]
    if rest[:1] in ("=", "!") or rest in ("<=", "<!"):
        raise _unsupported("lookahead and lookbehind assertions are", i)
    if rest[:1] == ">":
        raise _unsupported("atomic groups are", i)
    if rest[:1] == "(":
        raise _unsupported("conditional groups are", i)
    if rest == "P=":
        raise _unsupported("backreferences are", i)
    if rest[:1] == "#":
        return p.index(")", i) + 1, 0, ""
    if rest == "P<":
        out.append("(")
        return p.index(">", i) + 1, 1, ""
    if rest[:1] == ":":
        out.append("(?:")
        return i + 3, 1, ""
    # flags: (?aiLmsux) for the whole pattern, or (?aiLmsux-imsx:...) for a group
    j = i + 2
    on = off = ""
    while p[j] in _FLAGS:
        on += p[j]
        j += 1
    if p[j] == "-":
        j += 1
        while p[j] in _FLAGS:
            off += p[j]
            j += 1
    if "x" in on or "x" in off:
        raise _unsupported("verbose mode `(?x)` is", i)
    on = "".join(
        f for f in on if f in "ims"
    )  # `a` (ASCII) is how every pattern is matched; `u` is re's default
    off = "".join(f for f in off if f in "ims")
    flags = on + ("-" + off if off else "")
    if p[j] == ")":  # global flags
        if flags:
            out.append(f"(?{flags})")
        return j + 1, 0, on
    out.append(f"(?{flags}:")
    return j + 1, 1, ""


# ------------------------------------------------------------------------------------------ compiling


def _re2_error(exc: Exception) -> str:
    msg = exc.args[0] if exc.args else str(exc)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return str(msg)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> ClientPattern:
    if not isinstance(pattern, str):
        raise ClientPatternError("a pattern must be a string", None, unsupported=False)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ClientPatternError(f"longer than {MAX_PATTERN_CHARS} characters ({_HINT})", None)
    if _SURROGATE.search(pattern):
        raise ClientPatternError(f"lone surrogate characters are not supported ({_HINT})", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re's FutureWarnings ("Possible nested set") on client input
            re.compile(pattern)
    except re.error as exc:
        raise ClientPatternError(exc.msg, exc.pos, unsupported=False) from None
    except (OverflowError, RecursionError, ValueError) as exc:
        raise ClientPatternError(str(exc), None, unsupported=False) from None
    full_text, search_text = _translate(pattern)
    try:
        full = re2.compile(full_text, _OPTIONS)
        search = full if search_text == full_text else re2.compile(search_text, _OPTIONS)
    except re2.error as exc:
        msg = _re2_error(exc)
        if "too large" in msg:
            msg = f"too large ({_HINT}: at most {MAX_PROGRAM_SIZE} instructions)"
        else:
            msg = f"{msg} ({_HINT})"
        raise ClientPatternError(msg, None) from None
    size = max(full.programsize, search.programsize)
    if size > MAX_PROGRAM_SIZE:
        raise ClientPatternError(
            f"too large: {size} instructions, at most {MAX_PROGRAM_SIZE} ({_HINT}; "
            "a counted repetition such as `.{1,1000}` copies its body)",
            None,
        )
    return ClientPattern(pattern, full, search)


def compile_client_pattern(pattern: str) -> ClientPattern:
    """Compile a client-supplied regular expression (cached), or raise :class:`ClientPatternError`."""
    return _compile(pattern)


def try_client_pattern(pattern: object) -> ClientPattern | None:
    """Like :func:`compile_client_pattern`, but None for a refused pattern or a non-string."""
    if not isinstance(pattern, str):
        return None
    try:
        return _compile(pattern)
    except ClientPatternError:
        return None


def check_client_pattern(pattern: str) -> str:
    """The pattern unchanged if it compiles, else ``ValueError`` naming why (and where in the pattern)."""
    try:
        _compile(pattern)
    except ClientPatternError as exc:
        kind = "unsupported" if exc.unsupported else "invalid"
        where = "" if exc.position is None else f" at position {exc.position}"
        raise ValueError(f'{kind} regular expression r"{pattern}"{where}: {exc.message}') from None
    return pattern


# A string field holding a client regular expression (pydantic): refused when the document is parsed.
ClientRegex = Annotated[str, AfterValidator(check_client_pattern)]


def wildcard_pattern(glob: str) -> ClientPattern:
    """A glob with ``*`` (any sequence, newlines included) and ``?`` (one character); a backslash makes the
    next character literal. Matched with ``fullmatch`` (linear time, unlike a backtracking ``.*`` chain)."""
    out = ["(?s)"]
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return compile_client_pattern("".join(out))


__all__ = [
    "MAX_PATTERN_CHARS",
    "MAX_PROGRAM_SIZE",
    "ClientPattern",
    "ClientPatternError",
    "ClientRegex",
    "check_client_pattern",
    "compile_client_pattern",
    "try_client_pattern",
    "wildcard_pattern",
]
