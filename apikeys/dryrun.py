"""Dry-run of an edited policy: the key's last recorded tool calls replayed against it (``relay.policy_replay``).

Nothing is saved. Shared by the configure page (``dryrun_views``) and the management API
(``POST /api/v1/keys/{id}/dry-run/``); both validate the policy exactly as a save would first.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from relay.header_documents import DocumentError, dump_document, parse_document
from relay.policy_replay import RecordedCall, ReplayResult, replay
from sessions.models import SessionEvent

from .models import ApiKey, KeyVersion
from .validation import DocumentsInvalid, compile_policy_document

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def validated_policy(raw) -> dict:
    """The stored form of an ``X-Policy`` document (JSON text or dict) that compiles; else DocumentsInvalid
    naming the ``policy`` field (and, for code that does not compile, its line and column)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = {}
    try:
        document = dump_document(parse_document("policy", raw))
    except DocumentError as exc:
        raise DocumentsInvalid({"policy": exc.errors}) from None
    message = compile_policy_document(document)
    if message:
        raise DocumentsInvalid({"policy": [message]})
    return document


def recorded_calls(key: ApiKey, limit: int = DEFAULT_LIMIT) -> list[RecordedCall]:
    """The key's last ``limit`` tool calls (both architectures), oldest first, as the session log has them."""
    rows = (
        SessionEvent.objects.filter(session__api_key=key, type="tool_call")
        .order_by("-created_at", "-id")
        .values_list("session_id", "seq", "data", "created_at", "session__arch")[:limit]
    )
    calls = [
        RecordedCall.from_step(session_id=sid, seq=seq, arch=arch, data=data or {}, at=at)
        for sid, seq, data, at, arch in rows
    ]
    calls.reverse()
    return calls


def do_dry_run(*, key: ApiKey, policy, limit: int = DEFAULT_LIMIT) -> ReplayResult:
    """Replay the key's recorded calls against ``policy`` (validated first). Saves nothing."""
    document = validated_policy(policy)
    calls = recorded_calls(key, max(1, min(int(limit), MAX_LIMIT)))
    return replay(calls, document, time_budget=settings.POLICY_DRY_RUN_SECONDS)


def _rule(entry: dict | None) -> dict | None:
    if not entry:
        return None
    return {
        "policy": entry.get("policy"),
        "rule": entry.get("rule"),
        "enforcement": entry.get("enforcement"),
        "description": entry.get("description"),
    }


def result_json(result: ReplayResult) -> dict:
    """The result as the API and the page return it: the summary line, counts and each changed call."""
    ids = {c.call.policy_version for c in result.changes if c.call.policy_version}
    numbers = dict(KeyVersion.objects.filter(pk__in=ids).values_list("pk", "number")) if ids else {}

    def change(c) -> dict:
        call = c.call
        return {
            "change": "newly_denied" if c.newly_denied else "newly_allowed",
            "session_id": call.session_id,
            "seq": call.seq,
            "at": call.at.isoformat() if hasattr(call.at, "isoformat") else call.at,
            "tool": call.tool,
            "arch": "dual-llm" if call.dual_llm else "single-llm",
            "verdict_recorded": call.verdict,
            "blocked_by_guardrail": bool(call.blocked),
            "rule_recorded": _rule(call.rule),
            "policy_version_recorded": numbers.get(call.policy_version),
            "verdict": c.verdict,
            "rule": _rule(c.rule),
            "inspector_url": reverse("dashboard:session_detail", args=[call.session_id])
            + f"#step-{call.seq}",
        }

    return {
        "summary": result.summary(),
        "recorded": result.recorded,
        "replayed": result.replayed,
        "not_replayable": result.not_replayable,
        "without_session_meta": result.without_session_meta,
        "out_of_time": result.out_of_time,
        "newly_denied": [change(c) for c in result.newly_denied],
        "newly_allowed": [change(c) for c in result.newly_allowed],
    }
