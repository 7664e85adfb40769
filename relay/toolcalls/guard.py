"""Guardrails on tool calls and tool results (``relay.guardrails`` wired to a session: its memo, its LLM and its log).

Framework-free: the caller gives the LLM call (``ask``) and the session log (``log``).

What the model sees: every tool result in the request, the whole history and not only the results answering
the calls the relay issued, whoever produced them (a client that resends its history, one that started the
conversation elsewhere), has PII redacted and URLs/paths masked, and the LLM classifiers (toxicity,
healthcare, finance) run on it on the session's model; a blocking hit replaces the result with a notice. The
arguments of the tool calls in the history are redacted/masked the same way (deterministic detectors only:
those calls were made already, there is nothing left to block).

Proposed tool calls: arguments scanned the same way; a blocked call is refused, a redacted one reaches the
client redacted. Every finding on a result answering one of our calls, or on a proposed call, becomes a tag
of the value's metadata, so SQRT policies can act on it (``body.tags overlaps {"pii"}``, or
``-> session @tags |= @result.tags``), and is logged with the session for the inspector.

Cost: what was decided about a content is remembered by its hash in the session state
(``relay.guardrails.memo``), so a history resent on every turn is not scanned again and the LLM classifiers run
once per distinct content; the scan of a resent 50-turn history costs well under a millisecond
(``bench/bench_guardrails.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..formats._json import dumps_str, loads
from ..guardrails import ClassifierRequest, Guardrails, text_for_classification
from ..guardrails.memo import ScanHit, ScanMemo, content_key, session_memo
from ..meta import DEFAULT_META, Meta

RESULT = "tool_result"
ARGS = "tool_args"

Ask = Callable[[ClassifierRequest], Awaitable[Any]]
"""Asks the session's model one classification; returns the parsed JSON answer."""
Log = Callable[..., None]
"""Logs one session step: ``log(kind, **data)``."""


async def _no_llm(req: ClassifierRequest) -> Any:
    raise RuntimeError("no LLM to ask for this guard")


def guardrails_for(features: Mapping[str, Any]) -> Guardrails | None:
    """The guardrails a session's resolved ``features`` enable, or None when it enables none."""
    if not features.get("classifiers") and not features.get("blockers"):
        return None
    scanner = Guardrails.from_features(features.get("classifiers"), features.get("blockers"))
    return scanner if scanner.enabled else None


@dataclass
class Scan:
    """What guarding one content decided: the text to forward, the value, tags and a block reason."""

    text: str
    value: Any
    tags: frozenset[str] = frozenset()
    block_reason: str | None = None

    @property
    def meta(self) -> Meta:
        return DEFAULT_META.with_tags(*self.tags) if self.tags else DEFAULT_META


@dataclass
class ToolGuard:
    """The guardrails of one session for one request (inactive, and free, when the session has none)."""

    scanner: Guardrails | None = None
    memo: ScanMemo | None = None
    ask: Ask = _no_llm
    log: Log = field(default=lambda kind, **data: None)
    pending_argument_rewrites: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def for_session(
        cls, features: dict[str, Any], memo_holder: dict[str, Any], *, ask: Ask, log: Log
    ) -> ToolGuard:
        """The guard for a session's resolved ``features``; its memo lives in ``memo_holder["guard_memo"]``
        (created there on first use)."""
        scanner = guardrails_for(features)
        if scanner is None:
            return cls(ask=ask, log=log)
        return cls(scanner, session_memo(scanner, memo_holder), ask, log)

    @property
    def active(self) -> bool:
        return self.scanner is not None

    # -- logging -------------------------------------------------------------------------------------------

    def _log(self, findings: Any, where: str, **extra: Any) -> None:
        """One ``guardrail`` step per finding (``Finding``s, or remembered ``[guardrail, action]`` pairs)."""
        for f in findings:
            if isinstance(f, (list, tuple)):
                guardrail, action = f[0], f[1]
                detail = f"{guardrail}: {action} (the same content as an earlier tool result)"
            else:
                guardrail, action, detail = f.guardrail, f.action, f.detail
            self.log("guardrail", guardrail=guardrail, action=action, detail=detail, where=where, **extra)

    # -- scanning ------------------------------------------------------------------------------------------

    async def _classify(self, outcome: Any) -> Any:
        """The LLM classifiers on the (redacted) value, on the session's model; verdicts remembered."""
        assert self.scanner is not None
        if not self.scanner.llm_classifiers:
            return outcome
        text = text_for_classification(outcome.value)
        for finding in await self.scanner.classify(text, self.ask, self.memo):
            outcome = outcome.with_finding(finding)
        return outcome

    async def scan_value(self, value: Any, where: str) -> Any:
        """A value (text or JSON) through the deterministic detectors, then the LLM classifiers (verdicts
        remembered in the session's memo): the guardrails' outcome, nothing logged."""
        assert self.scanner is not None
        return await self._classify(self.scanner.scan_deterministic(value, where=where))

    async def _scan_text(self, text: str, *, call_id: str, log_hit: bool, history: bool) -> Scan:
        """Guard one tool result's text; the outcome is remembered by content hash (``relay.guardrails.memo``).

        ``log_hit``: log the findings even when the outcome is remembered (a result delivered for one of our
        calls is logged with that call); history content is logged the first time only."""
        assert self.scanner is not None and self.memo is not None
        extra: dict[str, Any] = {"call_id": call_id, "history": True} if history else {"call_id": call_id}
        key = content_key(RESULT, text)
        hit = self.memo.get_scan(key)
        if isinstance(hit, ScanHit):
            if log_hit:
                self._log(hit.findings, RESULT, **extra)
            return Scan(hit.text_for(text), None, frozenset(hit.tags), hit.block_reason)
        scanned = self.scanner.scan_text(text, where=RESULT)
        outcome = await self._classify(scanned.outcome)
        self._log(outcome.findings, RESULT, **extra)
        pairs = [(f.guardrail, f.action) for f in outcome.findings]
        remember: dict[str, Any]
        if outcome.blocked:
            notice = f"[tool result withheld: {outcome.block_reason}]"
            scan = Scan(notice, notice, frozenset(outcome.tags), outcome.block_reason)
            remember = {"replacement": notice}
        else:
            scan = Scan(scanned.text, outcome.value, frozenset(outcome.tags))
            remember = (
                {"edits": scanned.edits}
                if scanned.edits is not None
                else {"replacement": scanned.text if scanned.text != text else None}
            )
        if not any(f.kind == "error" for f in outcome.findings):  # a failed classification is asked again
            self.memo.put_scan(
                key, tags=scan.tags, block_reason=scan.block_reason, findings=pairs, **remember
            )
        return scan

    async def scan_result(self, call_id: str, text: str) -> Scan:
        """A tool result answering one of our pending calls (its first delivery)."""
        if self.scanner is None:
            return Scan(text, None)
        return await self._scan_text(text, call_id=call_id, log_hit=True, history=False)

    def remember_delivered(self, text: str, scan: Scan) -> None:
        """What the model was given for the content ``text`` of a result to one of our calls, when it is not
        what guarding ``text`` itself gives (a manual metadata wrapper was removed): the same content resent
        in a later history is forwarded the same way."""
        if self.scanner is None or self.memo is None or scan.text == text:
            return
        key = content_key(RESULT, text)
        hit = self.memo.get_scan(key)
        if not isinstance(hit, ScanHit) or hit.text_for(text) != scan.text:
            self.memo.put_scan(
                key,
                replacement=scan.text,
                tags=scan.tags,
                block_reason=scan.block_reason,
                findings=hit.findings if isinstance(hit, ScanHit) else [],
            )

    async def scan_arguments(self, tool_call: Any) -> Scan:
        """Tags for the call's arguments and a block reason, or None; records redacted arguments."""
        if self.scanner is None:
            return Scan("", tool_call.arguments)
        outcome = await self.scan_value(tool_call.arguments or {}, ARGS)
        self._log(outcome.findings, ARGS, call_id=tool_call.id)
        if not outcome.findings:
            return Scan("", tool_call.arguments)
        reason = (
            f"Tool call to '{tool_call.name}' is blocked: {outcome.block_reason}" if outcome.blocked else None
        )
        if outcome.value is not tool_call.arguments and not outcome.blocked:
            self.pending_argument_rewrites[tool_call.id] = outcome.value
        return Scan("", outcome.value, frozenset(outcome.tags), reason)

    # -- the whole request -----------------------------------------------------------------------------------

    async def guard_request(
        self, fmt: Any, body: dict[str, Any], delivered: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """``body`` (in the API format ``fmt``) as it may be forwarded to the model: every tool result and
        every tool call's arguments in it guarded (copy-on-write; the very same ``body`` when nothing changes).

        ``delivered``: call id -> text already decided for the results answering our pending calls
        (``scan_result`` + policy); every other result is guarded here, from the memo when its content was
        seen before."""
        delivered = delivered or {}
        if self.scanner is None or self.memo is None:
            if delivered:
                body = fmt.rewrite_tool_results(body, lambda cid, text: delivered.get(cid))
            return body

        # Tool results, one pass: each text is forwarded as remembered (memo), or collected to be guarded.
        memo = self.memo
        known: dict[str, str | None] = {}
        unseen: dict[str, str] = {}  # text -> call id of its first occurrence

        def remembered(cid: str, text: str) -> str | None:
            if cid in delivered:
                return delivered[cid]
            if text in known:
                return known[text]
            hit = memo.get_scan(content_key(RESULT, text))
            if not isinstance(hit, ScanHit):
                unseen.setdefault(text, cid)
                known[text] = None
                return None
            known[text] = new = hit.text_for(text)
            return new

        body = fmt.rewrite_tool_results(body, remembered)
        if unseen:
            replaced: dict[str, str] = {}
            for text, cid in unseen.items():
                scan = await self._scan_text(text, call_id=cid, log_hit=False, history=True)
                if scan.text != text:
                    replaced[text] = scan.text
            if replaced:
                body = fmt.rewrite_tool_results(
                    body, lambda cid, text: None if cid in delivered else replaced.get(text)
                )

        # Tool-call arguments of the history: deterministic detectors (the calls were made already).
        if self.scanner.has_deterministic:
            body = fmt.rewrite_call_arguments(body, self._history_arguments())
        return body

    def _history_arguments(self) -> Callable[[str, Any], Any]:
        assert self.scanner is not None and self.memo is not None
        memo, scanner = self.memo, self.scanner

        def fn(call_id: str, raw: Any) -> Any:
            as_text = isinstance(raw, str)
            try:
                text = raw if as_text else dumps_str(raw)
            except (TypeError, ValueError):
                return None
            key = content_key(ARGS, text)
            hit = memo.get_scan(key)
            if not isinstance(hit, ScanHit):
                scanned = scanner.scan_text(text, where=ARGS)
                # In the history a call is not blocked any more (it was made): what it names is masked.
                findings = [
                    replace(f, action="masked") if f.action == "blocked" else f
                    for f in scanned.outcome.findings
                ]
                pairs = [(f.guardrail, f.action) for f in findings]
                self._log(findings, ARGS, call_id=call_id, history=True)
                if scanned.edits is not None:
                    memo.put_scan(key, edits=scanned.edits, findings=pairs)
                else:
                    memo.put_scan(
                        key, replacement=scanned.text if scanned.text != text else None, findings=pairs
                    )
                new_text = scanned.text
            else:
                new_text = hit.text_for(text)
            if new_text == text:
                return None
            if as_text:
                return new_text
            try:
                return loads(new_text)
            except ValueError:
                return None

        return fn
