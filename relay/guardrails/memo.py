"""What the guardrails already decided, by content hash: so a resent history costs next to nothing.

Clients send the whole conversation again on every turn. Every tool result (and tool-call argument object) in
it must be guarded every time it is forwarded to an LLM, but the same content gets the same answer, so the
answer is remembered in the session state (JSON-safe, bounded) and looked up by a hash of the content:

* ``scan`` entries: the outcome of guarding one piece of content (deterministic detectors and LLM classifiers
  together), keyed by ``(kind, text)``: what to forward instead (nothing when it passes unchanged; the
  in-place edits ``(start, end, kind)`` that put the placeholders in, a few bytes each; or, for a withheld
  result, the notice), the tags, the block reason and which guardrails acted (for the log). Never the
  detected text itself;
* ``verdict`` entries: one LLM classifier's verdict on one text (a ``Finding`` or None below the threshold),
  keyed by the classification prompt, so a classifier runs once per distinct content, not once per turn.
  Failed classifications are not remembered (the next turn tries again).

The store is a plain dict inside the session state (``state["guard_memo"]``); it is reset when the session's
guardrail settings differ from the ones it was built with (``fingerprint``). At most ``MAX_ENTRIES`` entries
and ``MAX_CHARS`` characters of remembered replacement text are kept, oldest first out. A replacement longer
than ``MAX_ENTRY_CHARS`` is not stored (its content is scanned again each time: a few ms for 100 KB).

Framework-free. ``bind_session_state(state)`` (the relay does it once it knows the request's session) lets code
that has no handle on the session state, such as the dual-LLM engine's guard, find the session's memo with
``session_memo(guardrails)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

from .detectors import PLACEHOLDERS
from .types import Finding

MEMO_VERSION = 2
MAX_ENTRIES = 2048
MAX_CHARS = 400_000
MAX_ENTRY_CHARS = 64_000
STATE_KEY = "guard_memo"

MISS = object()
"""Returned by lookups that found nothing (None is a valid remembered verdict)."""

_STATE: ContextVar[dict[str, Any] | None] = ContextVar("sequrity_guard_session_state", default=None)


def bind_session_state(state: dict[str, Any] | None) -> None:
    """Make ``state`` the current request's session state for ``session_memo`` (a context variable)."""
    _STATE.set(state)


_PREFIXES: dict[str, Any] = {}


def content_key(kind: str, text: str) -> str:
    """A 96-bit BLAKE2b digest of ``kind`` and ``text`` (hex); ~1 µs per KB."""
    prefix = _PREFIXES.get(kind)
    if prefix is None:
        prefix = hashlib.blake2b(kind.encode() + b"\x00", digest_size=12)
        if len(_PREFIXES) < 64:
            _PREFIXES[kind] = prefix
    h = prefix.copy()
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def verdict_key(request: Any) -> str:
    """The memo key of one LLM classification (a ``ClassifierRequest``: its classifier and prompt)."""
    return content_key("verdict:" + request.name, request.system_prompt + "\x00" + request.user_prompt)


def fingerprint(guardrails: Any) -> str:
    """Identifies the guardrail settings a memo's answers were computed with."""
    return content_key("settings", repr(guardrails))[:16]


def finding_from_json(data: dict[str, Any]) -> Finding:
    return Finding(
        guardrail=data["guardrail"],
        kind=data["kind"],
        action=data["action"],
        detail=data.get("detail", ""),
        span_count=int(data.get("span_count") or 0),
        tag=data.get("tag"),
        paths=tuple(data.get("paths") or ()),
        score=data.get("score"),
        threshold=data.get("threshold"),
    )


class ScanMemo:
    """A view on one session's memo store (``state["guard_memo"]``, created or reset as needed)."""

    __slots__ = ("store", "entries", "hits", "misses")

    def __init__(self, store: dict[str, Any], fp: str) -> None:
        if store.get("v") != MEMO_VERSION or store.get("fp") != fp or not isinstance(store.get("e"), dict):
            store.clear()
            store.update(v=MEMO_VERSION, fp=fp, e={}, n=0)
        self.store = store
        self.entries: dict[str, list[Any]] = store["e"]
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def chars(self) -> int:
        return int(self.store.get("n") or 0)

    # -- scan outcomes ---------------------------------------------------------------------------------

    def get_scan(self, key: str) -> ScanHit | object:
        """The remembered outcome for ``key`` (a ``ScanHit``), or ``MISS``."""
        entry = self.entries.get(key)
        if entry is None or entry[0] != "s":
            self.misses += 1
            return MISS
        self.hits += 1
        return ScanHit(entry[1], entry[2], entry[3], entry[4], entry[5])

    def put_scan(
        self,
        key: str,
        *,
        replacement: str | None = None,
        edits: Sequence[tuple[int, int, str]] | None = None,
        tags: Iterable[str] = (),
        block_reason: str | None = None,
        findings: Iterable[tuple[str, str]] = (),
    ) -> bool:
        """Remember what to forward for a content: nothing changed (the default), in-place ``edits``
        (``[(start, end, kind), ...]``, as ``Guardrails.scan_text`` gives them: a few bytes each), or a whole
        ``replacement`` text (kept only up to ``MAX_ENTRY_CHARS``; False when too long to keep). ``findings``:
        ``(guardrail, action)`` pairs, for the log."""
        if replacement is not None and len(replacement) > MAX_ENTRY_CHARS:
            return False
        flat: list[Any] | None = None
        if edits:
            flat = []
            for start, end, kind in edits:
                flat += (start, end, _KIND_INDEX[kind])
        self._put(
            key,
            ["s", replacement, flat, sorted(tags), block_reason, sorted({(g, a) for g, a in findings})],
            len(replacement) if replacement is not None else 0,
        )
        return True

    # -- LLM classifier verdicts -------------------------------------------------------------------------

    def get_verdict(self, key: str) -> Finding | None | object:
        entry = self.entries.get(key)
        if entry is None or entry[0] != "c":
            self.misses += 1
            return MISS
        self.hits += 1
        return finding_from_json(entry[1]) if entry[1] is not None else None

    def put_verdict(self, key: str, finding: Finding | None) -> None:
        self._put(key, ["c", finding.to_json() if finding is not None else None], 0)

    # -- storage -------------------------------------------------------------------------------------------

    def _put(self, key: str, entry: list[Any], chars: int) -> None:
        entries = self.entries
        old = entries.pop(key, None)
        total = self.chars - (_chars(old) if old is not None else 0) + chars
        entries[key] = entry
        while entries and (len(entries) > MAX_ENTRIES or total > MAX_CHARS):
            oldest = next(iter(entries))
            total -= _chars(entries.pop(oldest))
        self.store["n"] = max(0, total)


EDIT_KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "credit_card",
    "iban",
    "ip",
    "national_id",
    "person_name",
    "url",
    "file_path",
)
_KIND_INDEX = {k: i for i, k in enumerate(EDIT_KINDS)}
_PLACEHOLDER_BY_INDEX = tuple(PLACEHOLDERS[k] for k in EDIT_KINDS)


class ScanHit(NamedTuple):
    """A remembered outcome: see ``ScanMemo.put_scan``."""

    replacement: str | None
    edits: list[int] | None  # flat: start, end, index in EDIT_KINDS, ...
    tags: list[str]
    block_reason: str | None
    findings: list[Any]  # [guardrail, action] pairs

    def text_for(self, text: str) -> str:
        """What to forward in place of ``text`` (the content this outcome was remembered for)."""
        if self.replacement is not None:
            return self.replacement
        e = self.edits
        if not e:
            return text
        parts: list[str] = []
        pos = 0
        for i in range(0, len(e), 3):
            parts.append(text[pos : e[i]])
            parts.append(_PLACEHOLDER_BY_INDEX[e[i + 2]])
            pos = e[i + 1]
        parts.append(text[pos:])
        return "".join(parts)


def _chars(entry: list[Any]) -> int:
    if entry and entry[0] == "s" and isinstance(entry[1], str):
        return len(entry[1])
    return 0


def session_memo(guardrails: Any, state: dict[str, Any] | None = None) -> ScanMemo:
    """The memo of ``state`` (default: the session state bound to the current request), for ``guardrails``.

    Without a session state a throwaway memo is returned (it remembers for its own lifetime only)."""
    if state is None:
        state = _STATE.get()
    store = state.setdefault(STATE_KEY, {}) if isinstance(state, dict) else {}
    return ScanMemo(store, fingerprint(guardrails))
