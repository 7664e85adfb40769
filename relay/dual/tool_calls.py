"""A program's tool calls: the checks before a call leaves (call limit, the policy's check phase,
guardrails on the arguments), where it is answered (internal tools and ``force_to_cache`` hits here, the
others by the client), and the client's results on their way back into the program (transform, error
detection, decoding, guardrails, the policy's result phase).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from relay.formats.model import ToolCall, ToolResult
from relay.guardrails import tag_meta
from relay.interpreter import Suspend
from relay.interpreter.pool import ProgramOutcome
from relay.meta import DEFAULT_META, ValueWithMeta
from relay.sqrt import ManualWrapperError, unwrap_manual_result
from relay.toolcalls.ids import new_tool_call_id

from . import feedback as F
from . import prompts as P
from .guard import ToolDataGuard
from .internal_tools import InternalTools
from .llm import LLMClient, parsed_reply
from .options import EngineSettings, optional_int
from .policy import SessionPolicy
from .replay import RecordResult
from .state import CachedResult, DualState, PendingCall, TurnState
from .toolresults import codex_transform, decode_content, regex_error
from .toolset import ToolSet
from .types import DualError, LLMFailure, RequestLog, TurnFailure


@dataclass(slots=True)
class DeniedCall:
    """The policy denied the call and ``retry_on_policy_violation`` asks for a new program."""

    feedback: str  # for the planner
    reason: str | None  # the denial message (the failure's "last error" if no attempt is left)


def check_results(turn: TurnState, results: list[ToolResult]) -> ToolResult:
    """The result of the call the turn waits for, among the request's trailing tool results; raises
    ``DualError(400)`` for a result of another call or a missing one."""
    assert turn.pending_call is not None
    pending_id = turn.pending_call.call_id
    for r in results:
        if r.call_id != pending_id:
            raise DualError(
                400,
                f"Unexpected tool result for tool call id '{r.call_id}': the session is "
                f"waiting for '{pending_id}'",
            )
    if not any(r.call_id == pending_id for r in results):
        raise DualError(400, f"Missing tool result for tool call id '{pending_id}'")
    return next(r for r in results if r.call_id == pending_id)


class ToolCalls:
    def __init__(
        self,
        settings: EngineSettings,
        session_id: str,
        tools: ToolSet,
        policy: SessionPolicy,
        guard: ToolDataGuard,
        internal: InternalTools,
        record: RecordResult,
        llm: LLMClient,
        log: RequestLog,
    ) -> None:
        self.settings = settings
        self.session_id = session_id
        self.tools = tools
        self.policy = policy
        self.guard = guard
        self.internal = internal
        self.record = record
        self.llm = llm
        self.log = log

    # ----------------------------------------------------------------------------- before a call
    async def at_call(
        self, session: DualState, turn: TurnState, res: ProgramOutcome
    ) -> ToolCall | DeniedCall | None:
        """The program reached a new tool call: check it, then run it here (internal tools, cache hits:
        returns None, the program replays on) or hand it to the client (returns the call, and the turn
        waits for its result). Raises ``TurnFailure`` when the call ends the turn."""
        s: Suspend | None = res.suspended
        assert s is not None and s.tool_name is not None and s.call_index is not None
        _, names = self.tools.specs(session, turn)
        pname = s.tool_name
        tool = names.get(pname, pname)
        kwargs: dict[str, ValueWithMeta] = s.kwargs or {}
        index = s.call_index
        max_calls = self.settings.max_tool_calls
        if max_calls is not None and index + 1 > max_calls:
            raise TurnFailure(
                "max_tool_calls_exceeded", f"Maximum number of tool calls per step ({max_calls}) exceeded."
            )
        pe = self.policy.engine(session)
        control = getattr(s, "context_meta", None)
        checked_with = session.session_meta  # logged with the call so a dry-run replays it as it was checked
        dec = pe.before_call(tool, kwargs, session.session_meta, control)
        session.session_meta = dec.session_meta
        turn.policy_checks.append(dec.record)
        event = {
            "type": "tool_call",
            "turn": turn.number,
            "attempt": turn.attempt,
            "index": index,
            "tool": tool,
            "args": {k: {"value": v.value, "meta": v.meta.to_json()} for k, v in kwargs.items()},
            "verdict": dec.verdict,
            "record": dec.record,
            "call_id": None,
            "rule": dec.decided_by,
            "session_meta": checked_with.to_json(),
            "control_meta": None if control is None else control.to_json(),
        }
        self.log.events.append(event)
        if not dec.allowed:
            if self.settings.retry_on_policy_violation and not turn.user_program:
                chosen_by_tool_data = control not in (None, DEFAULT_META)
                return DeniedCall(
                    F.denied_call_feedback(pname, chosen_by_tool_data=chosen_by_tool_data), dec.denial_message
                )
            raise TurnFailure(
                "policy_violation",
                dec.denial_message or f"Tool call to '{tool}' is denied by argument checking policies.",
                policy=True,
            )

        if tool in self.settings.internal_tools and pname == tool:
            await self.internal.run(session, turn, tool, kwargs)
            return None

        cache_key = self.cache_key(tool, kwargs)
        cached = session.tool_result_cache.get(cache_key) if cache_key is not None else None
        if cached is not None:
            await self.accept(
                session,
                turn,
                PendingCall(index, pname, None, dict(kwargs)),
                ToolResult(call_id="", content=cached.content, is_error=cached.is_error),
                cached=True,
            )
            return None

        args_plain: Any = {k: v.value for k, v in kwargs.items()}
        if self.guard.enabled:
            out = await self.guard.scan(args_plain, "tool_args", tool, None)
            if out is not None:
                if out.blocked:
                    raise TurnFailure(
                        "guardrail_blocked",
                        f"Tool call to '{tool}' is blocked by guardrails: {out.block_reason}",
                        policy=False,
                    )
                args_plain = out.value
        call_id = new_tool_call_id(self.session_id)
        event["call_id"] = call_id
        turn.pending_call = PendingCall(index, pname, call_id, dict(kwargs))
        return ToolCall(id=call_id, name=tool, arguments=args_plain)

    def cache_key(self, tool: str, kwargs: dict[str, ValueWithMeta]) -> str | None:
        """The ``force_to_cache`` key of a call (tool and arguments), or None when it is not cached."""
        patterns = self.settings.force_to_cache
        if not patterns or not any(p.fullmatch(tool) for p in patterns):
            return None
        try:
            return tool + "\0" + json.dumps({k: v.value for k, v in kwargs.items()}, sort_keys=True)
        except (TypeError, ValueError):
            return None

    # ----------------------------------------------------------------------------- after a call
    async def accept(
        self,
        session: DualState,
        turn: TurnState,
        pending: PendingCall,
        result: ToolResult,
        cached: bool = False,
    ) -> None:
        """Decode a client tool result, run the result phase of the policies, record it (§6.10 steps 4-7)."""
        pname = pending.tool
        _, names = self.tools.specs(session, turn)
        tool = names.get(pname, pname)
        args = pending.args
        pe = self.policy.engine(session)
        content = result.content if isinstance(result.content, str) else json.dumps(result.content)
        fsm = self.settings.fsm
        content, is_error = await self._detect_error(content, bool(result.is_error), tool)
        initial = pe.initial_result_meta(args)
        ok = True
        guard_log = None
        value: Any
        if is_error:
            value, meta, ok = content, initial, False
        else:
            value = decode_content(content, strict=bool(fsm.get("strict_tool_result_parsing")))
            try:
                value, meta = unwrap_manual_result(value, initial)
            except ManualWrapperError as e:
                value, meta, ok = str(e), initial, False
            if ok and self.guard.enabled:
                out = await self.guard.scan(value, "tool_result", tool, pending.call_id)
                if out is not None:
                    meta = tag_meta(meta, out)
                    guard_log = out
                    if out.blocked:
                        value, ok = f"The result of {tool} was blocked by guardrails", False
                    else:
                        value = out.value
        dec = pe.after_call(tool, args, ValueWithMeta(value, meta), session.session_meta)
        session.session_meta = dec.session_meta
        meta = dec.result_meta
        if dec.record:
            turn.policy_checks.append(dec.record)
        if fsm.get("wrap_tool_result"):
            value, ok = ({"ok": True, "value": value} if ok else {"ok": False, "error": value}), True
        self.record(turn, pname, ok, value, meta, dec.arg_meta_updates)
        turn.pending_call = None
        self.log.events.append(
            {
                "type": "tool_result",
                "turn": turn.number,
                "call_id": pending.call_id,
                "tool": tool,
                "ok": ok,
                "meta": meta.to_json(),
                "cached": cached,
                **({"guardrails": guard_log.to_log()} if guard_log is not None else {}),
            }
        )
        if not cached:
            key = self.cache_key(tool, args)
            if key is not None:
                session.tool_result_cache[key] = CachedResult(
                    result.content if isinstance(result.content, str) else json.dumps(result.content),
                    bool(result.is_error),
                )

    async def _detect_error(self, content: str, is_error: bool, tool: str) -> tuple[str, bool]:
        """``tool_result_transform`` then ``detect_tool_errors``: the content to decode, and whether the
        call failed (the client's own ``is_error`` always counts)."""
        fsm = self.settings.fsm
        exit_code = None
        if fsm.get("tool_result_transform") == "codex":
            t = codex_transform(content)
            content, exit_code = t.text, t.exit_code
        detect = fsm.get("detect_tool_errors") or "none"
        if not is_error and detect != "none":
            if exit_code not in (None, 0):
                is_error = True
            elif detect == "regex":
                is_error = regex_error(
                    content,
                    fsm.get("detect_tool_error_regex_pattern"),
                    optional_int(fsm.get("detect_tool_error_max_result_length")),
                )
            elif detect == "llm":
                shown = await self.guard.llm_input(content, tool)
                is_error = shown is None or await self._llm_says_error(shown)
        return content, is_error

    async def _llm_says_error(self, content: str) -> bool:
        """``detect_tool_errors: "llm"`` (role ``tool_result_error_detector_llm``); a failed call says no."""
        max_len = optional_int(self.settings.fsm.get("detect_tool_error_max_result_length"))
        text = content[:max_len] if max_len is not None and max_len >= 0 else content
        try:
            c = await self.llm.call(
                "tool_result_error_detector_llm",
                P.ERROR_DETECTOR_SYSTEM,
                [{"role": "user", "content": f"Tool output:\n{text}"}],
                P.ERROR_DETECTOR_SCHEMA,
            )
        except LLMFailure:
            return False
        parsed = parsed_reply(c)
        return bool(isinstance(parsed, dict) and parsed.get("is_error") is True)
