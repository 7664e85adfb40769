"""Tool calls recorded as the relay records them, for the dry-run tests and benchmark.

Each call is checked by the key's saved policy with the relay's own engine builder and single-LLM checker, the
step's data is shaped as ``relay.architectures.single_llm`` logs it (arguments with their metadata, verdict, record, deciding
rule, session metadata, key version), redacted by the key's content-logging level (``relay.session_log``) and
stored by the Celery task's service (``sessions.services.do_record_events``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from relay.config import resolve_config
from relay.formats.model import ToolCall
from relay.meta import DEFAULT_META
from relay.session_log import redact
from relay.toolcalls.policy import check_proposed_calls, policy_engine
from sessions import services


def _event(kind, at, **fields) -> dict:
    return {"kind": kind, "event_id": str(uuid.uuid4()), "created_at": at.isoformat(), **fields}


def record_tool_calls(key, calls: list[tuple[str, dict]], *, at: datetime | None = None) -> str:
    """Record one session of ``key`` whose model proposed ``calls`` ((tool, arguments) pairs); returns its id."""
    key.refresh_from_db()
    sid = str(uuid.uuid1())
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    dual = key.arch == "dual-llm"
    config = resolve_config(arch=key.arch, documents=key.documents, endpoint_type="chat")
    engine = policy_engine(config["policy"], dual_llm=dual)
    events = [_event("session", at, session_id=sid, key_id=key.pk, arch=key.arch, endpoint_type="chat", api="chat",
                     provider="openrouter", status="open", turns=1, closed=False, models=["gpt-5-mini"])]
    session_meta = DEFAULT_META
    for seq, (tool, arguments) in enumerate(calls, start=1):
        call = ToolCall(id=f"tc-{sid}-{seq}", name=tool, arguments=arguments)
        check = check_proposed_calls(engine, [call], session_meta)
        session_meta = check.session_meta
        data = {"call_id": call.id, "tool": tool,
                "args": {k: {"value": v, "meta": DEFAULT_META.to_json()} for k, v in arguments.items()},
                "verdict": check.verdicts[call.id], "record": check.records[0], "blocked": None,
                "rule": check.decided_by[call.id], "session_meta": check.session_meta_before[call.id].to_json(),
                "policy_version": key.current_version_id}
        step = redact({"type": "tool_call", "data": data}, key.content_logging)
        events.append(_event("session_event", at + timedelta(seconds=seq), session_id=sid, key_id=key.pk, turn=1,
                             seq=seq, type="tool_call", data=step["data"]))
    services.do_record_events(events)
    return sid
