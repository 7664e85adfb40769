"""Single-LLM mode's security logic (framework-free): policy checks on the tool calls the model proposes
and on the tool results the client sends back (sqrt.md §6.12).

Arguments get default metadata (there is no program); session metadata persists in the session state; a
result wrapped by the caller (sqrt.md §7) contributes its metadata to ``result`` / ``session after`` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .formats.model import ToolCall, ToolResult
from .meta import DEFAULT_META, Meta, ValueWithMeta


def build_engine(config: dict, *, dual_llm: bool):
    """The session's PolicyEngine (compiled policies are cached by text hash inside ``compile_policy``)."""
    from .sqrt import PolicyEngine, compile_policy

    policy = config["policy"]
    code = (policy.get("codes") or {}).get("code") or ""
    compiled = compile_policy(code, policy["codes"].get("language") or "sqrt") if code.strip() else None
    return PolicyEngine(compiled, presets=policy["presets"], mode=policy["mode"], fail_fast=policy["fail_fast"],
                        dual_llm=dual_llm)


def denial_text(tool: str) -> str:
    return f"Tool call to '{tool}' is denied by argument checking policies."


@dataclass
class CallCheck:
    allowed_ids: list[str] = field(default_factory=list)
    denied: list[ToolCall] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    session_meta: Meta = DEFAULT_META
    # Per call id, for the session log (a dry-run replays calls from it): the session metadata the call was
    # checked with and the record entry of the rule that decided it.
    session_meta_before: dict[str, Meta] = field(default_factory=dict)
    decided_by: dict[str, dict | None] = field(default_factory=dict)

    @property
    def denial_text(self) -> str | None:
        if not self.denied:
            return None
        return " ".join(denial_text(c.name) for c in self.denied)


def check_proposed_calls(engine, calls: list[ToolCall], session_meta: Meta,
                         arg_meta: dict[str, Meta] | None = None) -> CallCheck:
    """Check each proposed call in order; session-before effects persist even for denied calls.

    Arguments carry default metadata, plus the tags guardrails found in them (``arg_meta`` per call id).
    """
    out = CallCheck(session_meta=session_meta)
    for call in calls:
        meta = (arg_meta or {}).get(call.id, DEFAULT_META)
        args = {name: ValueWithMeta(value, meta) for name, value in (call.arguments or {}).items()}
        out.session_meta_before[call.id] = out.session_meta
        decision = engine.before_call(call.name, args, out.session_meta)
        out.decided_by[call.id] = decision.decided_by
        out.session_meta = decision.session_meta
        out.records.append(decision.record)
        out.verdicts[call.id] = decision.verdict
        if decision.allowed:
            out.allowed_ids.append(call.id)
        else:
            out.denied.append(call)
    return out


def decode_result(content: str) -> Any:
    import json

    try:
        return json.loads(content)
    except (ValueError, TypeError):
        return content


def wrapped_value_text(content: str) -> str | None:
    """The text of the value inside a caller's manual metadata wrapper (sqrt.md §7): what the model is given
    (and the guardrails scan) in place of the wrapper. None when ``content`` is not a (valid) wrapper."""
    from .sqrt import ManualWrapperError, unwrap_manual_result

    if "is_sequrity_var" not in content:
        return None
    decoded = decode_result(content)
    try:
        value, _ = unwrap_manual_result(decoded, DEFAULT_META)
    except ManualWrapperError:
        return None
    if value is decoded:
        return None
    import json

    return value if isinstance(value, str) else json.dumps(value)


def apply_tool_results(engine, pending: dict[str, dict], results: list[ToolResult], session_meta: Meta,
                       initial_meta: dict[str, Meta] | None = None) -> tuple[Meta, dict[str, Any]]:
    """Run result / session-after blocks for results answering pending calls.

    Returns the new session metadata and, per call id, the value to show the LLM when the caller used the
    manual metadata wrapper (the wrapper itself is for us, not for the model).
    """
    from .sqrt import ManualWrapperError, unwrap_manual_result

    unwrapped: dict[str, Any] = {}
    for result in results:
        call = pending.get(result.call_id)
        if call is None:
            continue
        args = {name: ValueWithMeta(value) for name, value in (call.get("args") or {}).items()}
        decoded = decode_result(result.content)
        try:
            value, meta = unwrap_manual_result(decoded, (initial_meta or {}).get(result.call_id, DEFAULT_META))
        except ManualWrapperError:
            value, meta = decoded, (initial_meta or {}).get(result.call_id, DEFAULT_META)
        if value is not decoded:
            unwrapped[result.call_id] = value
        decision = engine.after_call(call["tool"], args, ValueWithMeta(value, meta), session_meta)
        session_meta = decision.session_meta
    return session_meta, unwrapped
