"""Result types of the guardrails: findings, scan outcomes and LLM classification requests.

Framework-free. Nothing here ever holds the detected text itself: a ``Finding`` says *what kind* of content
was found *where* (JSON paths) and what was done about it, so it can be logged with the session and shown
in the inspector without leaking the personal data it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Action = Literal["redacted", "masked", "blocked", "flagged"]
Where = Literal["tool_args", "tool_result"]
WHERES: tuple[str, ...] = ("tool_args", "tool_result")

# Guardrail names as in the X-Features document.
PII = "pii_redaction"
TOXICITY = "toxicity_filter"
HEALTHCARE = "healthcare_topic_guardrail"
FINANCE = "finance_topic_guardrail"
URL_BLOCKER = "url_blocker"
FILE_BLOCKER = "file_blocker"
CLASSIFIER_NAMES: tuple[str, ...] = (TOXICITY, PII, HEALTHCARE, FINANCE)
LLM_CLASSIFIER_NAMES: tuple[str, ...] = (TOXICITY, HEALTHCARE, FINANCE)
BLOCKER_NAMES: tuple[str, ...] = (URL_BLOCKER, FILE_BLOCKER)

# The metadata tag each guardrail adds to the values it fires on (the spec's recommendation, §4.5).
TAG_BY_GUARDRAIL: dict[str, str] = {
    PII: "pii",
    TOXICITY: "toxic",
    HEALTHCARE: "healthcare",
    FINANCE: "finance",
    URL_BLOCKER: "url",
    FILE_BLOCKER: "file",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One guardrail decision about one value.

    ``guardrail``: the X-Features name (``pii_redaction``, ``url_blocker``, ...). ``kind``: what was found
    (``email``, ``phone``, ``credit_card``, ``iban``, ``ip``, ``national_id``, ``person_name``, ``url``,
    ``file_path``, or the classifier's label, e.g. ``toxic``). ``action``: ``redacted`` | ``masked`` |
    ``blocked`` | ``flagged``. ``detail``: a human-readable sentence for the log (never the detected text).
    ``span_count``: how many spans (0 for classifier verdicts). ``tag``: the metadata tag it adds.
    ``paths``: JSON paths of the strings involved (``$`` is the scanned value itself, ``$.url`` a top-level
    argument). ``score``/``threshold``: set for LLM classifier verdicts.
    """

    guardrail: str
    kind: str
    action: Action
    detail: str
    span_count: int = 0
    tag: str | None = None
    paths: tuple[str, ...] = ()
    score: float | None = None
    threshold: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for session logs and the inspector."""
        data: dict[str, Any] = {
            "guardrail": self.guardrail,
            "kind": self.kind,
            "action": self.action,
            "detail": self.detail,
            "span_count": self.span_count,
            "tag": self.tag,
            "paths": list(self.paths),
        }
        if self.score is not None:
            data["score"] = self.score
            data["threshold"] = self.threshold
        return data


@dataclass(frozen=True, slots=True)
class GuardrailOutcome:
    """What a scan did to one value.

    ``value``: the redacted/masked copy (same JSON structure; the input is never mutated, and is returned
    as-is when nothing changed). ``findings``: one ``Finding`` per (guardrail, kind, action). ``tags``: the
    metadata tags to add (see ``tag_meta``). ``blocked``/``block_reason``: the tool call must not run
    (``tool_args``) or the value must not reach the model (classifier verdicts).
    """

    value: Any
    where: str = "tool_result"
    findings: tuple[Finding, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)
    blocked: bool = False
    block_reason: str | None = None

    @property
    def changed(self) -> bool:
        """True when some span was redacted or masked (``value`` differs from the input)."""
        return any(
            f.action in ("redacted", "masked") or (f.action == "blocked" and f.span_count)
            for f in self.findings
        )

    def with_finding(self, finding: Finding | None) -> GuardrailOutcome:
        """This outcome plus one more decision (e.g. an LLM classifier verdict); ``None`` is a no-op."""
        if finding is None:
            return self
        tags = self.tags | {finding.tag} if finding.tag else self.tags
        blocked = self.blocked or finding.action == "blocked"
        reason = self.block_reason
        if finding.action == "blocked":
            reason = finding.detail if not reason else f"{reason}; {finding.detail}"
        return replace(
            self,
            findings=self.findings + (finding,),
            tags=frozenset(tags),
            blocked=blocked,
            block_reason=reason,
        )

    def to_log(self) -> dict[str, Any]:
        """JSON-safe summary for the session log (without ``value``)."""
        return {
            "where": self.where,
            "blocked": self.blocked,
            "block_reason": self.block_reason,
            "tags": sorted(self.tags),
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class TextScan:
    """``Guardrails.scan_text``: the outcome, the text to forward and the in-place edits that made it
    (``(start, end, kind)`` spans of the input replaced by ``PLACEHOLDERS[kind]``; None: ``text`` is a
    re-serialised copy)."""

    outcome: GuardrailOutcome
    text: str
    edits: list[tuple[int, int, str]] | None


@dataclass(frozen=True, slots=True)
class ClassifierRequest:
    """One structured-output call to make to the session's QLLM (PLLM in single-LLM mode).

    Send ``system_prompt`` and ``user_prompt`` with ``json_schema`` as the structured-output schema (for
    OpenAI-style APIs ``response_format()`` builds the whole ``response_format`` object), parse the reply
    as JSON and pass it to ``Guardrails.interpret_classification(request.name, parsed)``.
    ``threshold`` is the effective threshold after the mode override; ``action_on_hit`` is what a hit does.
    """

    name: str
    system_prompt: str
    user_prompt: str
    json_schema: dict[str, Any]
    threshold: float
    tag: str
    action_on_hit: Action
    mode: str
    schema_name: str = "guardrail_classification"

    def messages(self) -> list[dict[str, str]]:
        """Chat messages in the common ``role``/``content`` shape."""
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": self.user_prompt},
        ]

    def response_format(self) -> dict[str, Any]:
        """OpenAI-style ``response_format`` for structured output."""
        return {
            "type": "json_schema",
            "json_schema": {"name": self.schema_name, "schema": self.json_schema, "strict": True},
        }
