"""Shared guardrail configurations for the tests (module constants: ``Guardrails`` is immutable).

Plain constants rather than fixtures so the suite also runs with ``-p no:django --noconftest`` (the
project's root conftest needs Django)."""

from relay.guardrails import Guardrails

ALL_CLASSIFIERS = [
    {"name": "pii_redaction"},
    {"name": "toxicity_filter"},
    {"name": "healthcare_topic_guardrail"},
    {"name": "finance_topic_guardrail"},
]
ALL_BLOCKERS = [{"name": "url_blocker"}, {"name": "file_blocker"}]

PII_ONLY = Guardrails.from_features([{"name": "pii_redaction"}], [])
URLS_ONLY = Guardrails.from_features([], [{"name": "url_blocker"}])
FILES_ONLY = Guardrails.from_features([], [{"name": "file_blocker"}])
DETERMINISTIC = Guardrails.from_features([{"name": "pii_redaction"}], ALL_BLOCKERS)
EVERYTHING = Guardrails.from_features(ALL_CLASSIFIERS, ALL_BLOCKERS)
