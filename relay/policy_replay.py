"""Replay recorded tool calls against another policy: what would it have decided? (framework-free)

A recorded call is a session log ``tool_call`` step: the tool, each argument's value and metadata, the session
metadata (and, dual-LLM, the program's control-flow metadata) the call was checked with, the verdict the policy
gave then and the rule that decided it. Replaying runs the check phase of the edited policy on exactly those
inputs (``PolicyEngine.before_call``) and compares the outcome with the recorded one.

What a replay cannot know, it says rather than guesses: calls logged without their arguments (content logging
``none``) are counted as not replayable; calls logged before the session metadata was recorded are replayed
with empty session metadata and counted. A call a guardrail blocked stays blocked whatever the policy says.
The session metadata is the one recorded: ``session after`` / ``result`` blocks of the edited policy are not
re-simulated over the session's history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .meta import DEFAULT_META, Meta, ValueWithMeta
from .sqrt import PolicyEngine, compile_policy

ALLOWED = ("hard_allowed", "soft_allowed")


@dataclass(frozen=True)
class RecordedCall:
    """One ``tool_call`` step of the session log, as the replay needs it."""

    session_id: str
    seq: int
    dual_llm: bool
    tool: str
    args: dict[str, dict[str, Any]] | None  # name -> {"value", "meta"}; None: logged without content
    session_meta: dict[str, Any] | None
    control_meta: dict[str, Any] | None
    verdict: str  # the policy's verdict when the call was made
    blocked: str | None = None  # a guardrail's block reason (then the call was refused whatever the policy)
    rule: dict[str, Any] | None = None
    policy_version: int | None = None
    at: Any = None

    @classmethod
    def from_step(
        cls, *, session_id: Any, seq: int, arch: str, data: dict[str, Any], at: Any = None
    ) -> RecordedCall:
        found_record = data.get("record")
        record: dict[str, Any] = found_record if isinstance(found_record, dict) else {}
        found_args = data.get("args")
        raw_args: dict[str, Any] = found_args if isinstance(found_args, dict) else {}
        withheld = data.get("withheld") == "none" or any(
            not isinstance(a, dict) or a.get("withheld") or "value" not in a for a in raw_args.values()
        )
        return cls(
            session_id=str(session_id),
            seq=seq,
            dual_llm=arch == "dual-llm",
            tool=str(data.get("tool") or ""),
            args=None if withheld else raw_args,
            session_meta=data.get("session_meta"),
            control_meta=data.get("control_meta"),
            verdict=record.get("final_verdict") or data.get("verdict") or "soft_allowed",
            blocked=data.get("blocked") or None,
            rule=data.get("rule"),
            policy_version=data.get("policy_version"),
            at=at,
        )

    @property
    def allowed_then(self) -> bool:
        return self.verdict in ALLOWED and not self.blocked


@dataclass(frozen=True)
class Change:
    call: RecordedCall
    verdict: str
    rule: dict[str, Any] | None

    @property
    def newly_denied(self) -> bool:
        return self.verdict not in ALLOWED


@dataclass
class ReplayResult:
    recorded: int = 0  # tool calls looked at
    replayed: int = 0
    not_replayable: int = 0  # logged without arguments (content logging "none")
    without_session_meta: int = 0  # logged before the session metadata was; replayed with empty metadata
    out_of_time: int = 0  # not looked at: the replay's time budget ran out first (newest calls come first)
    changes: list[Change] = field(default_factory=list)

    @property
    def newly_denied(self) -> list[Change]:
        return [c for c in self.changes if c.newly_denied]

    @property
    def newly_allowed(self) -> list[Change]:
        return [c for c in self.changes if not c.newly_denied]

    def summary(self) -> str:
        """One line, e.g. "would deny 3 of 187 recorded calls, in 2 sessions; would allow 1 call denied today"."""
        if not self.replayed:
            text = "no recorded tool calls to replay"
        else:
            denied, allowed = self.newly_denied, self.newly_allowed
            parts = []
            if denied:
                sessions = len({c.call.session_id for c in denied})
                parts.append(
                    f"would deny {len(denied)} of {self.replayed} recorded {_plural(self.replayed, 'call')}, "
                    f"in {sessions} {_plural(sessions, 'session')}"
                )
            if allowed:
                parts.append(f"would allow {len(allowed)} {_plural(len(allowed), 'call')} denied today")
            if not parts:
                parts.append(
                    f"would decide all {self.replayed} recorded {_plural(self.replayed, 'call')} "
                    "as they were decided"
                )
            text = "; ".join(parts)
        if self.not_replayable:
            text += (
                f" ({self.not_replayable} {_plural(self.not_replayable, 'call')} recorded without arguments "
                "cannot be replayed)"
            )
        if self.out_of_time:
            text += (
                f" (stopped at the time limit: the {self.out_of_time} oldest {_plural(self.out_of_time, 'call')}"
                " were not replayed)"
            )
        return text


def _newest_first(call: RecordedCall) -> tuple[bool, Any, int]:
    """Sort key: the most recent calls first (a call without a time last), then by step."""
    at = call.at
    return (at is None, -at.timestamp() if hasattr(at, "timestamp") else 0, -call.seq)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _meta(data: dict[str, Any] | None) -> Meta | None:
    return Meta.from_json(data) if isinstance(data, dict) else None


def engines_for(policy_document: dict[str, Any]) -> dict[bool, PolicyEngine]:
    """The edited policy's engines, single-LLM (False) and dual-LLM (True): the document completed as the relay
    completes a session's policy (``relay.config``), then compiled (``relay.sqrt``; compilations are cached)."""
    from .config import resolve_config

    policy = resolve_config(
        arch="single-llm",
        documents={"features": {}, "policy": policy_document, "config": {}},
        endpoint_type="chat",
    )["policy"]
    codes = policy.get("codes") or {}
    code = codes.get("code") or ""
    compiled = compile_policy(code, codes.get("language") or "sqrt") if code.strip() else None
    return {
        dual: PolicyEngine(
            compiled,
            presets=policy.get("presets"),
            mode=policy.get("mode") or "standard",
            fail_fast=policy.get("fail_fast"),
            dual_llm=dual,
        )
        for dual in (False, True)
    }


def replay(
    calls: list[RecordedCall], policy_document: dict[str, Any], *, time_budget: float | None = None
) -> ReplayResult:
    """Check every replayable call against ``policy_document`` (an ``X-Policy`` document that compiles).

    ``time_budget`` (seconds) bounds the work one request can cause (calls x rules x argument sizes): the
    newest calls are replayed first, and those left when it runs out are counted (``out_of_time``)."""
    engines = engines_for(policy_document)
    out = ReplayResult(recorded=len(calls))
    deadline = time.monotonic() + time_budget if time_budget is not None else None
    order = sorted(range(len(calls)), key=lambda i: _newest_first(calls[i]))
    changes: list[tuple[int, Change]] = []
    for done, index in enumerate(order):
        call = calls[index]
        if deadline is not None and time.monotonic() > deadline:
            out.out_of_time = len(calls) - done
            break
        if call.args is None:
            out.not_replayable += 1
            continue
        session = _meta(call.session_meta)
        if session is None:
            out.without_session_meta += 1
        args = {
            name: ValueWithMeta(a.get("value"), _meta(a.get("meta")) or DEFAULT_META)
            for name, a in call.args.items()
        }
        decision = engines[call.dual_llm].before_call(
            call.tool, args, session or DEFAULT_META, _meta(call.control_meta) if call.dual_llm else None
        )
        out.replayed += 1
        allowed_now = decision.allowed and not call.blocked
        if allowed_now != call.allowed_then:
            changes.append((index, Change(call, decision.verdict, decision.decided_by)))
    out.changes = [change for _, change in sorted(changes, key=lambda pair: pair[0])]  # in the calls' order
    return out
