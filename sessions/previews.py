"""What the sessions list shows of a session's content, and the search over it.

A session is named by its first user message or, when there is none (a Dual-LLM session logged from its
program), by the first line of its first program. Both are read from the stored steps, so they are only ever
what ``relay.session_log`` kept: a key that logs nothing stored no text, and shows none. A key whose setting
is *now* "Nothing" shows no text either, and is not searched, even for sessions logged before the change.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Substr

from .models import RelaySession, SessionEvent

PREVIEW_CHARS = 160  # of a message, after collapsing its whitespace (the list clamps it to two lines)
READ_CHARS = 1000  # read of a step's text to find its first line
SNIPPET_CONTEXT = 50  # characters shown either side of words found further into a session
MAX_QUERY_CHARS = 200
NOT_LOGGED = "none"  # ApiKey.content_logging: no content at all
_HEX_ID = re.compile(r"[0-9a-f-]{6,36}")


def _first_text(step_type: str, field: str) -> Subquery:
    steps = SessionEvent.objects.filter(session=OuterRef("pk"), type=step_type).order_by(
        "turn", "seq", "created_at"
    )
    return Subquery(steps.annotate(text=Substr(KT(f"data__{field}"), 1, READ_CHARS)).values("text")[:1])


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1].rstrip() + "…"


def _first_match(step_type: str, field: str, query: str) -> Subquery:
    steps = SessionEvent.objects.filter(
        session=OuterRef("pk"), type=step_type, **{f"data__{field}__icontains": query}
    ).order_by("turn", "seq", "created_at")
    return Subquery(steps.annotate(text=KT(f"data__{field}")).values("text")[:1])


def _around(text: str, query: str, context: int) -> tuple[str, str, str] | None:
    """``(before, match, after)``: ``query`` in ``text`` (whitespace collapsed, any case) with ``context``
    characters either side; None when it is not there."""
    flat, query = " ".join(text.split()), " ".join(query.split())
    lowered = flat.lower()
    at = lowered.find(query.lower()) if query and len(lowered) == len(flat) else -1
    if at < 0:
        return None
    end = at + len(query)
    start, stop = max(0, at - context), min(len(flat), end + context)
    return (
        ("…" if start else "") + flat[start:at],
        flat[at:end],
        flat[end:stop] + ("…" if stop < len(flat) else ""),
    )


def attach_previews(sessions: Iterable[RelaySession], query: str = "") -> None:
    """Set ``preview`` (text, maybe empty) and ``preview_kind`` ("message", "program" or "") on each session,
    and for a search, ``preview_parts`` (the preview around the words found) or ``match`` (where else in the
    session they were found): one query for a page of sessions."""
    sessions = list(sessions)
    query = query.strip()[:MAX_QUERY_CHARS]
    shown = [s.pk for s in sessions if s.api_key.content_logging != NOT_LOGGED]
    texts: dict = {}
    if shown:
        found = {"message": _first_text("user_message", "text"), "program": _first_text("program", "program")}
        if query:
            found |= {
                "hit": _first_match("user_message", "text", query),
                "hit_program": _first_match("program", "program", query),
            }
        rows = RelaySession.objects.filter(pk__in=shown).annotate(**found).values("pk", *found)
        texts = {row.pop("pk"): row for row in rows}
    for s in sessions:
        row = texts.get(s.pk, {})
        message, program = row.get("message"), row.get("program")
        if message and message.strip():
            s.preview, s.preview_kind = _shorten(message), "message"
        elif program and _first_line(program):
            s.preview, s.preview_kind = _shorten(_first_line(program)), "program"
        else:
            s.preview, s.preview_kind = "", ""
        s.preview_parts = _around(s.preview, query, PREVIEW_CHARS) if query and s.preview else None
        hit = row.get("hit") or row.get("hit_program")
        s.match = _around(hit, query, SNIPPET_CONTEXT) if hit and not s.preview_parts else None


def search(qs: QuerySet[RelaySession], query: str) -> QuerySet[RelaySession]:
    """Sessions whose logged user messages or programs contain ``query`` (any case), or whose id starts with it."""
    query = query.strip()[:MAX_QUERY_CHARS]
    if not query:
        return qs
    steps = SessionEvent.objects.filter(session=OuterRef("pk"))
    in_text = Q(Exists(steps.filter(type="user_message", data__text__icontains=query))) | Q(
        Exists(steps.filter(type="program", data__program__icontains=query))
    )
    match = in_text & ~Q(api_key__content_logging=NOT_LOGGED)
    lowered = query.lower()
    if _HEX_ID.fullmatch(lowered):
        try:
            match |= Q(pk=uuid.UUID(lowered))
        except ValueError:
            match |= Q(pk__startswith=lowered)
    return qs.filter(match)
