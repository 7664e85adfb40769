"""Tool calls recorded as the relay records them, for the dry-run tests and benchmark.

Each call is checked by the key's saved policy (its engine built as the dry-run builds it: the document completed
by ``relay.config`` and compiled by ``relay.sqrt``), in order, the session metadata carried from call to call; the
step's data is shaped as the single-LLM relay logs it (arguments with their metadata, verdict, record, deciding
rule, session metadata, key version), redacted by the key's content-logging level (``relay.session_log``) and
stored by the Celery task's service (``sessions.services.do_record_events``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from relay.meta import DEFAULT_META, ValueWithMeta
from relay.policy_replay import engines_for
from relay.session_log import redact
from sessions import services


def _event(kind, at, **fields) -> dict:
    return {"kind": kind, "event_id": str(uuid.uuid4()), "created_at": at.isoformat(), **fields}


def record_tool_calls(key, calls: list[tuple[str, dict]], *, at: datetime | None = None) -> str:
    """Record one session of ``key`` whose model proposed ``calls`` ((tool, arguments) pairs); returns its id."""
    key.refresh_from_db()
    sid = str(uuid.uuid1())
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    engine = engines_for(key.policy)[key.arch == "dual-llm"]
    events = [
        _event(
            "session",
            at,
            session_id=sid,
            key_id=key.pk,
            arch=key.arch,
            endpoint_type="chat",
            api="chat",
            provider="openrouter",
            status="open",
            turns=1,
            closed=False,
            models=["gpt-5-mini"],
        )
    ]
    session_meta = DEFAULT_META
    for seq, (tool, arguments) in enumerate(calls, start=1):
        args = {name: ValueWithMeta(value, DEFAULT_META) for name, value in arguments.items()}
        decision = engine.before_call(tool, args, session_meta)
        data = {
            "call_id": f"tc-{sid}-{seq}",
            "tool": tool,
            "args": {k: {"value": v, "meta": DEFAULT_META.to_json()} for k, v in arguments.items()},
            "verdict": decision.verdict,
            "record": decision.record,
            "blocked": None,
            "rule": decision.decided_by,
            "session_meta": session_meta.to_json(),
            "policy_version": key.current_version_id,
        }
        session_meta = decision.session_meta
        step = redact({"type": "tool_call", "data": data}, key.content_logging)
        events.append(
            _event(
                "session_event",
                at + timedelta(seconds=seq),
                session_id=sid,
                key_id=key.pk,
                turn=1,
                seq=seq,
                type="tool_call",
                data=step["data"],
            )
        )
    services.do_record_events(events)
    return sid
