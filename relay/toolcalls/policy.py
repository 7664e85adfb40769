"""The session's SQRT policy on tool calls: the engine, built once per policy, and its two checks.

* before a call reaches the client: session-before and check rules on the calls a model proposes (arguments
  carry default metadata plus the tags the guardrails found in them), effects on the session metadata kept
  even for denied calls;
* when its result comes back: result and session-after rules, a result the caller wrapped with its metadata
  (``{"is_sequrity_var": ...}``) contributing that metadata.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..formats.model import ToolCall, ToolResult
from ..meta import DEFAULT_META, Meta, ValueWithMeta
from ..sqrt import ManualWrapperError, PolicyEngine, compile_policy, unwrap_manual_result

MAX_CACHED_ENGINES = 128

_engines: OrderedDict[tuple[Any, ...], PolicyEngine] = OrderedDict()
_engines_lock = threading.Lock()


def policy_engine(policy: Mapping[str, Any], *, dual_llm: bool, extra_code: str = "") -> PolicyEngine:
    """The engine for a resolved ``policy`` section (``relay.config``), plus ``extra_code`` appended to its
    code; one engine per distinct policy (engines keep no per-request state). Raises ``PolicyCompileError``."""
    codes = policy.get("codes") or {}
    if isinstance(codes, str):
        codes = {"code": codes, "language": "sqrt"}
    code = codes.get("code") or ""
    language = codes.get("language") or "sqrt"
    if extra_code:
        code = f"{code}\n{extra_code}" if code.strip() else extra_code
    presets = policy.get("presets") or {}
    key = (
        code,
        language,
        _presets_key(presets),
        policy.get("mode") or "standard",
        policy.get("fail_fast"),
        dual_llm,
    )
    with _engines_lock:
        hit = _engines.get(key)
        if hit is not None:
            _engines.move_to_end(key)
            return hit
    compiled = compile_policy(code, language) if code.strip() else None
    engine = PolicyEngine(compiled, presets=presets, mode=key[3], fail_fast=key[4], dual_llm=dual_llm)
    with _engines_lock:
        _engines[key] = engine
        if len(_engines) > MAX_CACHED_ENGINES:
            _engines.popitem(last=False)
    return engine


def _presets_key(presets: Any) -> bytes | str:
    """The presets as a cache-key part, per request: orjson's sorted dump (~1 µs), json's for what it refuses."""
    try:
        return orjson.dumps(presets, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(presets, sort_keys=True, default=repr)


def denial_text(tool: str) -> str:
    return f"Tool call to '{tool}' is denied by argument checking policies."


@dataclass
class CallCheck:
    """The policy's decisions on the calls of one answer, in order."""

    allowed_ids: list[str] = field(default_factory=list)
    denied: list[ToolCall] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    session_meta: Meta = DEFAULT_META
    # Per call id, for the session log (a dry-run replays calls from it): the session metadata the call was
    # checked with and the record entry of the rule that decided it.
    session_meta_before: dict[str, Meta] = field(default_factory=dict)
    decided_by: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def denial_text(self) -> str | None:
        if not self.denied:
            return None
        return " ".join(denial_text(c.name) for c in self.denied)


def check_proposed_calls(
    engine: PolicyEngine, calls: list[ToolCall], session_meta: Meta, arg_meta: dict[str, Meta] | None = None
) -> CallCheck:
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
    """A tool result's content as JSON when it is JSON, else the text itself."""
    try:
        return json.loads(content)
    except (ValueError, TypeError):
        return content


def wrapped_value_text(content: str) -> str | None:
    """The text of the value inside a caller's manual metadata wrapper: what the model is given
    (and the guardrails scan) in place of the wrapper. None when ``content`` is not a (valid) wrapper."""
    if "is_sequrity_var" not in content:
        return None
    decoded = decode_result(content)
    try:
        value, _ = unwrap_manual_result(decoded, DEFAULT_META)
    except ManualWrapperError:
        return None
    if value is decoded:
        return None
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True, slots=True)
class CalledTool:
    """What the policy needs to know of a call when its result comes back."""

    tool: str
    args: Any


def apply_tool_results(
    engine: PolicyEngine,
    pending: dict[str, CalledTool],
    results: list[ToolResult],
    session_meta: Meta,
    initial_meta: dict[str, Meta] | None = None,
) -> tuple[Meta, dict[str, Any]]:
    """Run result / session-after blocks for results answering pending calls.

    Returns the new session metadata and, per call id, the value to show the LLM when the caller used the
    manual metadata wrapper (the wrapper itself is for us, not for the model).
    """
    unwrapped: dict[str, Any] = {}
    for result in results:
        called = pending.get(result.call_id)
        if called is None:
            continue
        args = {name: ValueWithMeta(value) for name, value in (called.args or {}).items()}
        decoded = decode_result(result.content)
        try:
            value, meta = unwrap_manual_result(
                decoded, (initial_meta or {}).get(result.call_id, DEFAULT_META)
            )
        except ManualWrapperError:
            value, meta = decoded, (initial_meta or {}).get(result.call_id, DEFAULT_META)
        if value is not decoded:
            unwrapped[result.call_id] = value
        decision = engine.after_call(called.tool, args, ValueWithMeta(value, meta), session_meta)
        session_meta = decision.session_meta
    return session_meta, unwrapped
