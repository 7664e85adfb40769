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


def attach_previews(sessions: Iterable[RelaySession]) -> None:
    """Set ``preview`` (text, maybe empty) and ``preview_kind`` ("message", "program" or "") on each session:
    one query for a page of sessions."""
    sessions = list(sessions)
    shown = [s.pk for s in sessions if s.api_key.content_logging != NOT_LOGGED]
    texts = {}
    if shown:
        rows = RelaySession.objects.filter(pk__in=shown).annotate(
            message=_first_text("user_message", "text"), program=_first_text("program", "program")
        )
        texts = {
            pk: (message, program) for pk, message, program in rows.values_list("pk", "message", "program")
        }
    for s in sessions:
        message, program = texts.get(s.pk, (None, None))
        if message and message.strip():
            s.preview, s.preview_kind = _shorten(message), "message"
        elif program and _first_line(program):
            s.preview, s.preview_kind = _shorten(_first_line(program)), "program"
        else:
            s.preview, s.preview_kind = "", ""


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
