"""Walking a JSON value: collect its strings, run the detectors once over all of them, rebuild a copy.

All strings of the value are joined with ``\\x00`` and scanned in one pass per detector (a Python-level
call per string and detector would cost more than the regular expressions themselves); spans are mapped
back to their strings by offset. Containers are copied only along the paths to strings that changed, so an
untouched value is returned as the very same object.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from .detectors import (
    PERSON_NAME_KEYS,
    PERSON_SIBLING_KEYS,
    PLACEHOLDERS,
    SCORES,
    Detector,
    Span,
    is_card_number,
    looks_like_name,
    resolve_overlaps,
)
from .types import FILE_BLOCKER, PII, URL_BLOCKER

SEP = "\x00"

# Argument keys whose whole value is a URL / a file path (tool_args only: these decide a tool call).
URL_KEYS = frozenset(
    ["url", "urls", "uri", "href", "link", "links", "endpoint", "website", "webpage", "homepage", "site"]
)
FILE_KEYS = frozenset(
    [
        "path",
        "paths",
        "file",
        "files",
        "filename",
        "filenames",
        "filepath",
        "filepaths",
        "dir",
        "dirs",
        "directory",
        "folder",
        "pathname",
    ]
)


@lru_cache(maxsize=4096)
def _norm_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(" ", "")


class Collected:
    __slots__ = ("strings", "paths", "key_spans", "ints")

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.paths: list[tuple[Any, ...]] = []
        # index of string -> whole-string spans decided by the JSON key (person names, url/path arguments)
        self.key_spans: dict[int, list[Span]] = {}
        # path -> kind for integers that are card numbers
        self.ints: dict[tuple[Any, ...], str] = {}


def collect(value: Any, *, pii: bool, key_urls: bool, key_files: bool, min_score: float) -> Collected:
    c = Collected()
    names_on = pii and SCORES["person_name"] >= min_score
    cards_on = pii and SCORES["credit_card"] >= min_score

    def add_key_spans(idx: int, key: str, s: str, person_hint: bool) -> None:
        nk = _norm_key(key)
        if key_urls and nk in URL_KEYS and s.strip():
            c.key_spans.setdefault(idx, []).append(Span(0, len(s), "url", URL_BLOCKER, 1.0))
        elif key_files and nk in FILE_KEYS and s.strip():
            c.key_spans.setdefault(idx, []).append(Span(0, len(s), "file_path", FILE_BLOCKER, 1.0))
        elif names_on and (nk in PERSON_NAME_KEYS or (person_hint and nk == "name")) and looks_like_name(s):
            start = len(s) - len(s.lstrip())
            end = len(s.rstrip())
            c.key_spans.setdefault(idx, []).append(
                Span(start, end, "person_name", PII, SCORES["person_name"])
            )

    def walk(v: Any, path: tuple[Any, ...], key: str | None, person_hint: bool) -> None:
        if isinstance(v, str):
            idx = len(c.strings)
            c.strings.append(v)
            c.paths.append(path)
            if key is not None and (key_urls or key_files or names_on):
                add_key_spans(idx, key, v, person_hint)
        elif isinstance(v, dict):
            hint = (
                names_on
                and "name" in v
                and any(_norm_key(k) in PERSON_SIBLING_KEYS for k in v if isinstance(k, str))
            )
            for k, item in v.items():
                walk(item, path + (k,), k if isinstance(k, str) else None, hint)
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(item, path + (i,), key, False)
        elif cards_on and type(v) is int and v >= 10**12 and is_card_number(str(v)):
            c.ints[path] = "credit_card"

    walk(value, (), None, False)
    return c


def find_spans(c: Collected, detector: Detector) -> dict[int, list[Span]]:
    """Spans per string index, overlaps resolved, in text order."""
    per: dict[int, list[Span]] = {}
    if c.strings:
        text = SEP.join(c.strings) if len(c.strings) > 1 else c.strings[0]
        spans = detector.find(text)
        if spans:
            starts: list[int] = []
            pos = 0
            for s in c.strings:
                starts.append(pos)
                pos += len(s) + 1
            for sp in spans:
                i = bisect_right(starts, sp.start) - 1
                base = starts[i]
                if sp.end > base + len(c.strings[i]):
                    continue  # crosses into the next string
                per.setdefault(i, []).append(
                    Span(sp.start - base, sp.end - base, sp.kind, sp.guardrail, sp.score)
                )
    for i, extra in c.key_spans.items():
        per.setdefault(i, []).extend(extra)
    return {i: resolve_overlaps(v) for i, v in per.items()}


def apply_spans(s: str, spans: list[Span], keep: frozenset[str]) -> str:
    """Replace each span by its placeholder, except spans of guardrails in ``keep`` (monitor mode)."""
    parts: list[str] = []
    pos = 0
    for sp in spans:
        if sp.guardrail in keep:
            continue
        parts.append(s[pos : sp.start])
        parts.append(PLACEHOLDERS[sp.kind])
        pos = sp.end
    if not parts:
        return s
    parts.append(s[pos:])
    return "".join(parts)


def rebuild(value: Any, replacements: dict[int, str], int_replacements: dict[tuple[Any, ...], str]) -> Any:
    """A copy of ``value`` with string number ``i`` (walk order) replaced by ``replacements[i]``."""
    if not replacements and not int_replacements:
        return value
    counter = [0]

    def go(v: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(v, str):
            i = counter[0]
            counter[0] += 1
            return replacements.get(i, v)
        if isinstance(v, dict):
            changed = False
            out = {}
            for k, item in v.items():
                new = go(item, path + (k,))
                changed = changed or new is not item
                out[k] = new
            return out if changed else v
        if isinstance(v, (list, tuple)):
            changed = False
            items = []
            for i, item in enumerate(v):
                new = go(item, path + (i,))
                changed = changed or new is not item
                items.append(new)
            if not changed:
                return v
            return type(v)(items) if isinstance(v, tuple) else items
        if path in int_replacements:
            return int_replacements[path]
        return v

    return go(value, ())


def format_path(path: tuple[Any, ...]) -> str:
    """``$`` for the value itself, ``$.a.b[0]`` below it (keys that are not identifiers are quoted)."""
    out = ["$"]
    for p in path:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif isinstance(p, str) and p.isidentifier():
            out.append(f".{p}")
        else:
            out.append(f"[{str(p)!r}]")
    return "".join(out)


def argument_name(path: tuple[Any, ...]) -> str:
    """How a block reason names a tool-call argument: ``url``, ``options.urls[1]``."""
    text = format_path(path)
    return text[2:] if text.startswith("$.") else text


# ------------------------------------------------------------------------------- in-place edits of a text

_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_SPACE = frozenset(" \t\r\n")


def _value_literals(text: str) -> list[tuple[int, int]]:
    """(start, end) of the string literals of a JSON text that are values (not object keys), in order."""
    out = []
    n = len(text)
    for m in _STRING_LITERAL.finditer(text):
        end = m.end()
        j = end
        while j < n and text[j] in _SPACE:
            j += 1
        if j < n and text[j] == ":":
            continue
        out.append((m.start(), end))
    return out


def _offset_map(body: str) -> list[int]:
    """For a JSON string literal's body (between the quotes): raw offset of each decoded character, plus the
    end. Escapes (``\\n``, ``\\"``, ``\\uXXXX``, surrogate pairs) take several raw characters for one."""
    offsets = []
    i, n = 0, len(body)
    while i < n:
        offsets.append(i)
        if body[i] != "\\":
            i += 1
        elif body[i + 1] != "u":
            i += 2
        else:
            code = int(body[i + 2 : i + 6], 16)
            if (
                0xD800 <= code < 0xDC00
                and body[i + 6 : i + 8] == "\\u"
                and 0xDC00 <= int(body[i + 8 : i + 12], 16) < 0xE000
            ):
                i += 12  # one non-BMP character
            else:
                i += 6
    offsets.append(n)
    return offsets


def text_edits(
    text: str, is_json: bool, c: Collected, per: dict[int, list[Span]], keep: frozenset[str]
) -> list[tuple[int, int, str]] | None:
    """The spans of ``per`` (offsets in the collected strings) as ``(start, end, kind)`` edits of ``text``,
    the text the strings were decoded from; None when they cannot be located (duplicate keys...)."""
    if not is_json:
        if len(c.strings) != 1 or c.strings[0] != text:
            return None
        return [(sp.start, sp.end, sp.kind) for sp in per.get(0, ()) if sp.guardrail not in keep]
    literals = _value_literals(text)
    if len(literals) != len(c.strings):
        return None
    edits: list[tuple[int, int, str]] = []
    for i in sorted(per):
        spans = [sp for sp in per[i] if sp.guardrail not in keep]
        if not spans:
            continue
        start, end = literals[i]
        body = text[start + 1 : end - 1]
        if "\\" in body:
            offsets = _offset_map(body)
            if len(offsets) != len(c.strings[i]) + 1:
                return None
        elif len(body) == len(c.strings[i]):
            offsets = None
        else:
            return None
        base = start + 1
        for sp in spans:
            if offsets is None:
                edits.append((base + sp.start, base + sp.end, sp.kind))
            else:
                edits.append((base + offsets[sp.start], base + offsets[sp.end], sp.kind))
    return edits


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, kind)`` span (in order, not overlapping) replaced by its placeholder."""
    if not edits:
        return text
    parts: list[str] = []
    pos = 0
    for start, end, kind in edits:
        parts.append(text[pos:start])
        parts.append(PLACEHOLDERS[kind])
        pos = end
    parts.append(text[pos:])
    return "".join(parts)
