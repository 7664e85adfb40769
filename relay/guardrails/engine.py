"""``Guardrails``: the guardrails of one session, built from its ``content_classifiers``/``content_blockers``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from relay.meta import Meta

from .classifiers import (
    MAX_CLASSIFIED_CHARS,
    MONITOR,
    ClassifierSetting,
    build_request,
    interpret,
)
from .detectors import Detector, Span
from .scan import (
    Collected,
    apply_edits,
    apply_spans,
    argument_name,
    collect,
    find_spans,
    format_path,
    rebuild,
    text_edits,
)
from .types import (
    BLOCKER_NAMES,
    CLASSIFIER_NAMES,
    FILE_BLOCKER,
    LLM_CLASSIFIER_NAMES,
    PII,
    TAG_BY_GUARDRAIL,
    URL_BLOCKER,
    WHERES,
    ClassifierRequest,
    Finding,
    GuardrailOutcome,
    TextScan,
)

# kind -> (singular, plural) for log sentences
_LABELS: dict[str, tuple[str, str]] = {
    "email": ("e-mail address", "e-mail addresses"),
    "phone": ("phone number", "phone numbers"),
    "credit_card": ("payment card number", "payment card numbers"),
    "iban": ("IBAN", "IBANs"),
    "ip": ("IP address", "IP addresses"),
    "national_id": ("national identifier", "national identifiers"),
    "person_name": ("person name", "person names"),
    "url": ("URL", "URLs"),
    "file_path": ("file path", "file paths"),
}
_MAX_PATHS_IN_DETAIL = 5


def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


class Guardrails:
    """The enabled guardrails of a session. Immutable after construction; safe to share between threads."""

    __slots__ = ("classifiers", "blockers", "_detector", "_pii_monitor")

    def __init__(self, classifiers: Iterable[ClassifierSetting] = (), blockers: Iterable[str] = ()) -> None:
        self.classifiers: dict[str, ClassifierSetting] = {c.name: c for c in classifiers}
        self.blockers: frozenset[str] = frozenset(blockers)
        pii = self.classifiers.get(PII)
        self._pii_monitor = pii is not None and pii.mode == MONITOR
        self._detector = Detector(
            pii=pii is not None,
            urls=URL_BLOCKER in self.blockers,
            files=FILE_BLOCKER in self.blockers,
            min_score=pii.threshold if pii is not None else 1.0,
        )

    @classmethod
    def from_features(
        cls, classifiers: Iterable[Any] | None = None, blockers: Iterable[Any] | None = None
    ) -> Guardrails:
        """From the ``X-Features`` lists (dicts with ``name``/``threshold``/``mode``, or the header models).

        ``None`` means none. A repeated name: the last item wins. Unknown names raise ``ValueError`` (the
        header validation rejects them earlier, so this only guards against corrupt stored configs)."""
        settings: list[ClassifierSetting] = []
        for item in classifiers or ():
            name = _field(item, "name")
            if name not in CLASSIFIER_NAMES:
                raise ValueError(f"content_classifiers: unknown classifier {name!r}")
            settings.append(ClassifierSetting.build(name, _field(item, "threshold"), _field(item, "mode")))
        names: list[str] = []
        for item in blockers or ():
            name = item if isinstance(item, str) else _field(item, "name")
            if name not in BLOCKER_NAMES:
                raise ValueError(f"content_blockers: unknown blocker {name!r}")
            names.append(name)
        return cls(settings, names)

    # -- introspection --------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.classifiers or self.blockers)

    @property
    def has_deterministic(self) -> bool:
        """Whether ``scan_deterministic`` can do anything (pii_redaction, url_blocker or file_blocker on)."""
        return PII in self.classifiers or bool(self.blockers)

    @property
    def llm_classifiers(self) -> tuple[ClassifierSetting, ...]:
        return tuple(self.classifiers[n] for n in LLM_CLASSIFIER_NAMES if n in self.classifiers)

    def __repr__(self) -> str:
        cls = ", ".join(f"{c.name}@{c.threshold}/{c.mode}" for c in self.classifiers.values())
        return f"Guardrails(classifiers=[{cls}], blockers={sorted(self.blockers)})"

    # -- deterministic detectors ----------------------------------------------------------------------

    def scan_deterministic(self, value: Any, *, where: str) -> GuardrailOutcome:
        """Redact PII and mask or block URLs/file paths in every string of ``value`` (any JSON).

        ``where="tool_args"``: PII is redacted, URLs/file paths make the outcome ``blocked`` (the reason names
        the arguments) and are masked in ``value``. ``where="tool_result"``: PII is redacted and URLs/file paths
        are masked; nothing blocks. Keys and non-string scalars are kept (integers that are payment card
        numbers are replaced by the placeholder string)."""
        return self._scan(value, where)[0]

    def scan_text(self, text: str, *, where: str = "tool_result") -> TextScan:
        """``scan_deterministic`` on a tool result's (or arguments') text, JSON or not, answering with the text
        to forward: the input with each redacted/masked span replaced *in place* (its JSON formatting kept,
        so the same input always gives the same output), and the ``edits`` that make it
        (``[(start, end, kind), ...]`` in the input; ``relay.guardrails.scan.apply_edits``), which are all a
        cache needs to keep. ``edits`` is None in the rare cases only a re-serialised copy of the redacted
        value could be made (a card number written as a JSON number, duplicate keys)."""
        try:
            value, is_json = json.loads(text), True
        except ValueError:
            value, is_json = text, False
        outcome, c, per, keep = self._scan(value, where)
        if not outcome.changed:
            return TextScan(outcome, text, [])
        edits = text_edits(text, is_json, c, per, keep) if c is not None else None
        if edits is not None:
            return TextScan(outcome, apply_edits(text, edits), edits)
        new = json.dumps(outcome.value, ensure_ascii=False) if is_json else outcome.value
        return TextScan(outcome, new if isinstance(new, str) else json.dumps(new), None)

    def _scan(
        self, value: Any, where: str
    ) -> tuple[GuardrailOutcome, Collected | None, dict[int, list[Span]], frozenset[str]]:
        """The outcome, and what produced it: the collected strings, their spans, the guardrails kept."""
        if where not in WHERES:
            raise ValueError(f"where must be one of {WHERES}, not {where!r}")
        if not self.has_deterministic:
            return GuardrailOutcome(value=value, where=where), None, {}, frozenset()
        args = where == "tool_args"
        c = collect(
            value,
            pii=PII in self.classifiers,
            key_urls=args and URL_BLOCKER in self.blockers,
            key_files=args and FILE_BLOCKER in self.blockers,
            min_score=self._detector.min_score,
        )
        per = find_spans(c, self._detector)
        keep = frozenset({PII}) if self._pii_monitor else frozenset()
        if not per and not c.ints:
            return GuardrailOutcome(value=value, where=where), c, per, keep

        replacements: dict[int, str] = {}
        # (guardrail, kind) -> [count, paths]
        groups: dict[tuple[str, str], list[Any]] = {}
        for i, spans in per.items():
            new = apply_spans(c.strings[i], spans, keep)
            if new is not c.strings[i]:
                replacements[i] = new
            for sp in spans:
                _count(groups, sp, c.paths[i])
        int_replacements: dict[tuple[Any, ...], str] = {}
        for path, kind in c.ints.items():
            _count(groups, Span(0, 0, kind, PII, 1.0), path)
            if not self._pii_monitor:
                int_replacements[path] = "[REDACTED_CREDIT_CARD]"

        findings: list[Finding] = []
        block_reasons: list[str] = []
        for (guardrail, kind), (count, paths) in groups.items():
            if guardrail == PII:
                action = "flagged" if self._pii_monitor else "redacted"
            else:
                action = "blocked" if args else "masked"
            findings.append(_finding(guardrail, kind, action, count, paths, where))
            if action == "blocked":
                block_reasons.append(_block_reason(guardrail, kind, paths))
        findings.sort(key=lambda f: (f.guardrail, f.kind))
        outcome = GuardrailOutcome(
            value=rebuild(value, replacements, int_replacements),
            where=where,
            findings=tuple(findings),
            tags=frozenset(f.tag for f in findings if f.tag),
            blocked=bool(block_reasons),
            block_reason="; ".join(sorted(block_reasons)) if block_reasons else None,
        )
        return outcome, (c if not int_replacements else None), per, keep

    # -- LLM classifiers -------------------------------------------------------------------------------

    def classifier_requests(
        self, text: str, *, max_chars: int = MAX_CLASSIFIED_CHARS
    ) -> list[ClassifierRequest]:
        """One structured-output request per enabled LLM classifier (toxicity, healthcare, finance), in that
        order; none for blank text. Longer text is clipped to ``max_chars`` (head and tail kept)."""
        if not text or not text.strip():
            return []
        return [build_request(s, text, max_chars) for s in self.llm_classifiers]

    def interpret_classification(self, name: str, parsed: Any) -> Finding | None:
        """The decision for one classifier reply (a parsed JSON object or its text).

        Returns ``None`` below the threshold or when ``name`` is not enabled, else a ``Finding`` with the
        classifier's tag and action (see ``classifiers``). Raises ``ClassificationError`` (a ``ValueError``)
        when the reply is not ``{"score": number, ...}``; ``classification_error`` turns that into a log
        entry."""
        if name not in LLM_CLASSIFIER_NAMES:
            raise ValueError(f"{name!r} is not an LLM classifier")
        setting = self.classifiers.get(name)
        if setting is None:
            return None
        return interpret(setting, parsed)

    async def classify(
        self, text: str, ask: Callable[[ClassifierRequest], Awaitable[Any]], memo: Any = None
    ) -> list[Finding]:
        """Run the LLM classifiers on ``text``: ``await ask(request)`` returns the parsed reply (or its text).

        With a ``memo`` (``relay.guardrails.memo.ScanMemo``) each classifier's verdict on a text is asked once
        and remembered; a failed call or an unusable reply becomes ``classification_error`` (not remembered,
        so a later request tries again). Returns the findings (verdicts below the threshold give none)."""
        from .memo import MISS, verdict_key

        out: list[Finding] = []
        for req in self.classifier_requests(text):
            key = verdict_key(req) if memo is not None else ""
            if memo is not None:
                hit = memo.get_verdict(key)
                if hit is not MISS:
                    if hit is not None:
                        out.append(hit)
                    continue
            try:
                finding = self.interpret_classification(req.name, await ask(req))
            except Exception as exc:  # noqa: BLE001 - a failed classification is logged, not fatal
                finding = self.classification_error(req.name, exc)
            else:
                if memo is not None:
                    memo.put_verdict(key, finding)
            if finding is not None:
                out.append(finding)
        return out

    @staticmethod
    def classification_error(name: str, error: Exception | str) -> Finding:
        """A ``flagged`` finding (no tag) recording that classifier ``name`` could not decide."""
        return Finding(
            guardrail=name, kind="error", action="flagged", detail=f"{name}: classification failed: {error}"
        )


def _count(groups: dict[tuple[str, str], list[Any]], sp: Span, path: tuple[Any, ...]) -> None:
    entry = groups.get((sp.guardrail, sp.kind))
    if entry is None:
        groups[(sp.guardrail, sp.kind)] = [1, [path]]
    else:
        entry[0] += 1
        if path not in entry[1]:
            entry[1].append(path)


def _finding(
    guardrail: str, kind: str, action: str, count: int, paths: list[tuple[Any, ...]], where: str
) -> Finding:
    singular, plural = _LABELS[kind]
    shown = [format_path(p) for p in paths[:_MAX_PATHS_IN_DETAIL]]
    more = f" and {len(paths) - len(shown)} more" if len(paths) > len(shown) else ""
    place = "tool call arguments" if where == "tool_args" else "tool result"
    detail = f"{guardrail}: {action} {count} {singular if count == 1 else plural} in {place} at {', '.join(shown)}{more}"
    return Finding(
        guardrail=guardrail,
        kind=kind,
        action=action,  # type: ignore[arg-type]
        detail=detail,
        span_count=count,
        tag=TAG_BY_GUARDRAIL[guardrail],
        paths=tuple(format_path(p) for p in paths),
    )


def _block_reason(guardrail: str, kind: str, paths: list[tuple[Any, ...]]) -> str:
    one, many = ("a URL", "URLs") if kind == "url" else ("a file path", "file paths")
    if paths == [()]:
        return f"{guardrail}: the tool call arguments contain {one}"
    names = ", ".join(repr(argument_name(p)) for p in paths[:_MAX_PATHS_IN_DETAIL])
    if len(paths) > _MAX_PATHS_IN_DETAIL:
        names += f" and {len(paths) - _MAX_PATHS_IN_DETAIL} more"
    if len(paths) == 1:
        return f"{guardrail}: argument {names} contains {one}"
    return f"{guardrail}: arguments {names} contain {many}"


def text_for_classification(value: Any) -> str:
    """The text an LLM classifier should see for a JSON value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def tag_meta(meta: Meta, outcome: GuardrailOutcome | Finding | Iterable[Finding] | None) -> Meta:
    """``meta`` plus the tags of an outcome, a finding or several findings (``pii``, ``url``, ``toxic``...)."""
    if outcome is None:
        return meta
    tags: Iterable[str]
    if isinstance(outcome, GuardrailOutcome):
        tags = outcome.tags
    elif isinstance(outcome, Finding):
        tags = {outcome.tag} if outcome.tag else set()
    else:
        tags = {f.tag for f in outcome if f is not None and f.tag}
    return meta.with_tags(*sorted(tags)) if tags else meta
