"""Guardrails in single-LLM sessions (``relay.guardrails`` wired to the session's LLM and log).

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

from dataclasses import dataclass, field, replace
from typing import Any

from .formats.model import Usage
from .meta import DEFAULT_META, Meta

RESULT = "tool_result"
ARGS = "tool_args"


@dataclass
class Scan:
    text: str
    value: Any
    tags: frozenset = frozenset()
    block_reason: str | None = None

    @property
    def meta(self) -> Meta:
        return DEFAULT_META.with_tags(*self.tags) if self.tags else DEFAULT_META


@dataclass
class SessionGuardrails:
    scanner: Any = None
    memo: Any = None
    pending_argument_rewrites: dict[str, dict] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    @classmethod
    def for_state(cls, state: dict) -> SessionGuardrails:
        features = state["config"]["features"]
        if not features["classifiers"] and not features["blockers"]:
            return cls()
        from .guardrails import Guardrails
        from .guardrails.memo import session_memo

        scanner = Guardrails.from_features(features["classifiers"], features["blockers"])
        if not scanner.enabled:
            return cls()
        return cls(scanner, session_memo(scanner, state))

    @property
    def active(self) -> bool:
        return self.scanner is not None

    # -- logging -------------------------------------------------------------------------------------------

    def _log(self, call, findings, where: str, **extra) -> None:
        """One ``guardrail`` step per finding (``Finding``s, or remembered ``[guardrail, action]`` pairs)."""
        from .pipeline import session_event

        for f in findings:
            if isinstance(f, (list, tuple)):
                guardrail, action = f[0], f[1]
                detail = f"{guardrail}: {action} (the same content as an earlier tool result)"
            else:
                guardrail, action, detail = f.guardrail, f.action, f.detail
            session_event(call, "guardrail", guardrail=guardrail, action=action, detail=detail, where=where,
                          **extra)

    # -- scanning ------------------------------------------------------------------------------------------

    async def _ask(self, call, req) -> Any:
        from .providers import complete

        reply = await complete(call.route.provider, call.models[0], call.api_key, system=req.system_prompt,
                               messages=[{"role": "user", "content": req.user_prompt}],
                               json_schema=req.json_schema, schema_name="classification")
        self.usage.add(reply.usage)
        return reply.parsed

    async def _classify(self, call, outcome):
        """The LLM classifiers on the (redacted) value, on the session's model; verdicts remembered."""
        if not self.scanner.llm_classifiers:
            return outcome
        from .guardrails import text_for_classification

        text = text_for_classification(outcome.value)
        for finding in await self.scanner.classify(text, lambda req: self._ask(call, req), self.memo):
            outcome = outcome.with_finding(finding)
        return outcome

    async def _scan(self, call, value: Any, where: str):
        """Deterministic detectors, then the LLM classifiers."""
        return await self._classify(call, self.scanner.scan_deterministic(value, where=where))

    async def _scan_text(self, call, text: str, *, call_id: str, log_hit: bool, history: bool) -> Scan:
        """Guard one tool result's text; the outcome is remembered by content hash (``relay.guardrails.memo``).

        ``log_hit``: log the findings even when the outcome is remembered (a result delivered for one of our
        calls is logged with that call); history content is logged the first time only."""
        from .guardrails.memo import MISS, content_key

        extra = {"call_id": call_id, "history": True} if history else {"call_id": call_id}
        key = content_key(RESULT, text)
        hit = self.memo.get_scan(key)
        if hit is not MISS:
            if log_hit:
                self._log(call, hit.findings, RESULT, **extra)
            return Scan(hit.text_for(text), None, frozenset(hit.tags), hit.block_reason)
        scanned = self.scanner.scan_text(text, where=RESULT)
        outcome = await self._classify(call, scanned.outcome)
        self._log(call, outcome.findings, RESULT, **extra)
        pairs = [(f.guardrail, f.action) for f in outcome.findings]
        if outcome.blocked:
            notice = f"[tool result withheld: {outcome.block_reason}]"
            scan = Scan(notice, notice, frozenset(outcome.tags), outcome.block_reason)
            remember = {"replacement": notice}
        else:
            scan = Scan(scanned.text, outcome.value, frozenset(outcome.tags))
            remember = {"edits": scanned.edits} if scanned.edits is not None else {
                "replacement": scanned.text if scanned.text != text else None}
        if not any(f.kind == "error" for f in outcome.findings):  # a failed classification is asked again
            self.memo.put_scan(key, tags=scan.tags, block_reason=scan.block_reason, findings=pairs, **remember)
        return scan

    async def scan_result(self, call, call_id: str, text: str) -> Scan:
        """A tool result answering one of our pending calls (its first delivery)."""
        if self.scanner is None:
            return Scan(text, None)
        return await self._scan_text(call, text, call_id=call_id, log_hit=True, history=False)

    def remember_delivered(self, text: str, scan: Scan) -> None:
        """What the model was given for the content ``text`` of a result to one of our calls, when it is not
        what guarding ``text`` itself gives (a manual metadata wrapper was removed): the same content resent
        in a later history is forwarded the same way."""
        if self.scanner is None or scan.text == text:
            return
        from .guardrails.memo import MISS, content_key

        key = content_key(RESULT, text)
        hit = self.memo.get_scan(key)
        if hit is MISS or hit.text_for(text) != scan.text:
            self.memo.put_scan(key, replacement=scan.text, tags=scan.tags, block_reason=scan.block_reason,
                               findings=[] if hit is MISS else hit.findings)

    async def scan_arguments(self, call, tool_call) -> Scan:
        """Tags for the call's arguments and a block reason, or None; records redacted arguments."""
        if self.scanner is None:
            return Scan("", tool_call.arguments)
        outcome = await self._scan(call, tool_call.arguments or {}, ARGS)
        self._log(call, outcome.findings, ARGS, call_id=tool_call.id)
        if not outcome.findings:
            return Scan("", tool_call.arguments)
        reason = f"Tool call to '{tool_call.name}' is blocked: {outcome.block_reason}" if outcome.blocked else None
        if outcome.value is not tool_call.arguments and not outcome.blocked:
            self.pending_argument_rewrites[tool_call.id] = outcome.value
        return Scan("", outcome.value, frozenset(outcome.tags), reason)

    # -- the whole request -----------------------------------------------------------------------------------

    async def guard_request(self, call, body: dict, delivered: dict[str, str] | None = None) -> dict:
        """``body`` as it may be forwarded to the model: every tool result and every tool call's arguments in
        it guarded (copy-on-write; the very same ``body`` when nothing changes).

        ``delivered``: call id -> text already decided for the results answering our pending calls
        (``scan_result`` + policy); every other result is guarded here, from the memo when its content was
        seen before."""
        from .formats import FORMATS

        fmt = FORMATS[call.route.api]
        delivered = delivered or {}
        if self.scanner is None:
            if delivered:
                body = fmt.rewrite_tool_results(body, lambda cid, text: delivered.get(cid))
            return body

        # Tool results, one pass: each text is forwarded as remembered (memo), or collected to be guarded.
        from .guardrails.memo import MISS, content_key

        memo = self.memo
        known: dict[str, str | None] = {}
        unseen: dict[str, str] = {}  # text -> call id of its first occurrence

        def remembered(cid: str, text: str) -> str | None:
            if cid in delivered:
                return delivered[cid]
            if text in known:
                return known[text]
            hit = memo.get_scan(content_key(RESULT, text))
            if hit is MISS:
                unseen.setdefault(text, cid)
                known[text] = None
                return None
            known[text] = new = hit.text_for(text)
            return new

        body = fmt.rewrite_tool_results(body, remembered)
        if unseen:
            replaced: dict[str, str] = {}
            for text, cid in unseen.items():
                scan = await self._scan_text(call, text, call_id=cid, log_hit=False, history=True)
                if scan.text != text:
                    replaced[text] = scan.text
            if replaced:
                body = fmt.rewrite_tool_results(
                    body, lambda cid, text: None if cid in delivered else replaced.get(text))

        # Tool-call arguments of the history: deterministic detectors (the calls were made already).
        if self.scanner.has_deterministic:
            body = fmt.rewrite_call_arguments(body, self._history_arguments(call))
        return body

    def _history_arguments(self, call):
        from .formats._json import dumps_str, loads
        from .guardrails.memo import MISS, content_key

        memo, scanner = self.memo, self.scanner

        def fn(call_id: str, raw: Any) -> Any:
            as_text = isinstance(raw, str)
            try:
                text = raw if as_text else dumps_str(raw)
            except (TypeError, ValueError):
                return None
            key = content_key(ARGS, text)
            hit = memo.get_scan(key)
            if hit is MISS:
                scanned = scanner.scan_text(text, where=ARGS)
                # In the history a call is not blocked any more (it was made): what it names is masked.
                findings = [replace(f, action="masked") if f.action == "blocked" else f
                            for f in scanned.outcome.findings]
                pairs = [(f.guardrail, f.action) for f in findings]
                self._log(call, findings, ARGS, call_id=call_id, history=True)
                if scanned.edits is not None:
                    memo.put_scan(key, edits=scanned.edits, findings=pairs)
                else:
                    memo.put_scan(key, replacement=scanned.text if scanned.text != text else None, findings=pairs)
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
