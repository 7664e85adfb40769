"""scan_deterministic over JSON values: structure, findings, tags, thresholds and modes, configuration."""

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.guardrails import Finding, GuardrailOutcome, Guardrails, tag_meta
from relay.header_documents import ContentBlocker, ContentClassifier
from relay.meta import Meta, make_set
from tests.guardrails.helpers import DETERMINISTIC, EVERYTHING, PII_ONLY


def test_structure_keys_and_scalars_are_kept_and_the_input_is_not_mutated():
    value = {
        "user": {"email": "jane@example.com", "age": 41, "vip": True, "score": 0.5, "nickname": None},
        "rows": [["a", "call +44 20 7946 0958"], ("t", "ok")],
        "jane@example.com": "keys are kept",
    }
    before = copy.deepcopy(value)
    out = PII_ONLY.scan_deterministic(value, where="tool_result")
    assert value == before
    assert out.value == {
        "user": {"email": "[REDACTED_EMAIL]", "age": 41, "vip": True, "score": 0.5, "nickname": None},
        "rows": [["a", "call [REDACTED_PHONE]"], ("t", "ok")],
        "jane@example.com": "keys are kept",
    }
    # untouched sub-containers are shared, changed ones are copies
    assert out.value["rows"][1] is value["rows"][1]
    assert out.value["user"] is not value["user"]
    assert isinstance(out.value["rows"][1], tuple)


def test_unchanged_value_is_returned_as_is():
    value = {"a": ["plain", "text"], "n": 1}
    out = DETERMINISTIC.scan_deterministic(value, where="tool_result")
    assert out.value is value
    assert out == GuardrailOutcome(value=value, where="tool_result")
    assert not out.changed


@pytest.mark.parametrize("value", [None, 1, 2.5, True, "", [], {}, "plain"])
def test_scalars_and_empty_values(value):
    assert DETERMINISTIC.scan_deterministic(value, where="tool_result").value == value


def test_numbers_that_are_card_numbers_are_replaced():
    out = PII_ONLY.scan_deterministic(
        {"card": 4111111111111111, "id": 4111111111111112, "n": 12}, where="tool_args"
    )
    assert out.value == {"card": "[REDACTED_CREDIT_CARD]", "id": 4111111111111112, "n": 12}
    assert [f.paths for f in out.findings] == [("$.card",)]


def test_many_strings_are_scanned_independently():
    # a span never crosses from one string into the next
    value = ["Best regards,", "John Smith", "4111 1111", "1111 1111", "jane@", "example.com"]
    assert PII_ONLY.scan_deterministic(value, where="tool_result").value == value


def test_findings_group_by_kind_with_counts_and_paths():
    value = {"a": "x@example.com and y@example.com", "b": ["z@example.com"], "c": "+44 20 7946 0958"}
    out = PII_ONLY.scan_deterministic(value, where="tool_result")
    email = next(f for f in out.findings if f.kind == "email")
    assert email.span_count == 3
    assert email.paths == ("$.a", "$.b[0]")
    assert email.tag == "pii"
    assert email.detail == "pii_redaction: redacted 3 e-mail addresses in tool result at $.a, $.b[0]"
    assert out.changed
    json.dumps(out.to_log())  # JSON-safe


def test_paths_quote_keys_that_are_not_identifiers():
    out = PII_ONLY.scan_deterministic({"e-mail": "x@example.com"}, where="tool_result")
    assert out.findings[0].paths == ("$['e-mail']",)


def test_person_name_keys():
    value = {
        "customer": {"name": "John Smith", "email": "john@example.com"},
        "product": {"name": "Widget Pro", "sku": "W-1"},
        "full_name": "Alice",
        "lastName": "Garcia Lopez",
        "first_name": "the admin account",
    }
    out = PII_ONLY.scan_deterministic(value, where="tool_result")
    assert out.value == {
        "customer": {"name": "[REDACTED_NAME]", "email": "[REDACTED_EMAIL]"},
        "product": {"name": "Widget Pro", "sku": "W-1"},
        "full_name": "[REDACTED_NAME]",
        "lastName": "[REDACTED_NAME]",
        "first_name": "the admin account",
    }


def test_low_sensitivity_keeps_only_unambiguous_kinds():
    g = Guardrails.from_features([{"name": "pii_redaction", "mode": "low sensitivity"}], [])
    text = "Mr. John Smith, (415) 555-2671, +44 20 7946 0958, jane@example.com, 4111 1111 1111 1111"
    assert g.scan_deterministic(text, where="tool_result").value == (
        "Mr. John Smith, (415) 555-2671, [REDACTED_PHONE], [REDACTED_EMAIL], [REDACTED_CREDIT_CARD]"
    )
    # an explicit high threshold does the same
    g = Guardrails.from_features([{"name": "pii_redaction", "threshold": 0.9}], [])
    assert "Mr. John Smith" in g.scan_deterministic(text, where="tool_result").value


def test_monitor_mode_tags_and_logs_without_redacting():
    g = Guardrails.from_features([{"name": "pii_redaction", "mode": "monitor"}], [])
    value = {"to": "jane@example.com", "card": 4111111111111111}
    out = g.scan_deterministic(value, where="tool_args")
    assert out.value is value
    assert out.tags == {"pii"}
    assert {f.action for f in out.findings} == {"flagged"}
    assert not out.blocked


def test_where_is_checked():
    with pytest.raises(ValueError, match="where"):
        PII_ONLY.scan_deterministic("x", where="result")


def test_no_guardrails_does_nothing():
    g = Guardrails.from_features(None, None)
    assert not g.enabled and not g.has_deterministic
    value = {"x": "jane@example.com https://example.com /etc/passwd"}
    out = g.scan_deterministic(value, where="tool_args")
    assert out.value is value and out.findings == () and not out.blocked
    assert g.classifier_requests("some text") == []


def test_llm_classifiers_alone_do_not_scan_deterministically():
    g = Guardrails.from_features([{"name": "toxicity_filter"}], [])
    assert g.enabled and not g.has_deterministic
    assert g.scan_deterministic("jane@example.com", where="tool_result").value == "jane@example.com"


# --- configuration ---------------------------------------------------------------------------------------


def test_from_features_accepts_the_header_models_and_dicts():
    g = Guardrails.from_features(
        [ContentClassifier(name="toxicity_filter", threshold=0.7), ContentClassifier(name="pii_redaction")],
        [ContentBlocker(name="url_blocker")],
    )
    assert g.classifiers["toxicity_filter"].threshold == 0.7
    assert g.blockers == {"url_blocker"}
    # the stored config form (model_dump) with explicit nulls
    g = Guardrails.from_features([{"name": "finance_topic_guardrail", "threshold": 0.5, "mode": None}], [])
    assert g.classifiers["finance_topic_guardrail"].mode == "normal"
    assert "finance_topic_guardrail" in repr(g)


def test_from_features_rejects_unknown_names_and_bad_thresholds():
    with pytest.raises(ValueError, match="unknown classifier"):
        Guardrails.from_features([{"name": "spam_filter"}], [])
    with pytest.raises(ValueError, match="unknown blocker"):
        Guardrails.from_features([], [{"name": "ip_blocker"}])
    with pytest.raises(ValueError, match="between 0 and 1"):
        Guardrails.from_features([{"name": "toxicity_filter", "threshold": 1.5}], [])


def test_a_repeated_classifier_takes_the_last_item():
    g = Guardrails.from_features(
        [{"name": "toxicity_filter", "threshold": 0.2}, {"name": "toxicity_filter"}], []
    )
    assert g.classifiers["toxicity_filter"].threshold == 0.5


# --- metadata ---------------------------------------------------------------------------------------------


def test_tag_meta_adds_the_outcome_tags_and_keeps_the_rest():
    meta = Meta(
        producers=make_set(["crm"]), consumers=make_set(["alice"]), tags=make_set(["__non_executable"])
    )
    out = EVERYTHING.scan_deterministic(
        {"a": "jane@example.com", "b": "https://x.example"}, where="tool_result"
    )
    tagged = tag_meta(meta, out)
    assert tagged.tags == {"__non_executable", "pii", "url"}
    assert tagged.producers == meta.producers and tagged.consumers == meta.consumers
    assert tag_meta(meta, EVERYTHING.scan_deterministic("plain", where="tool_result")) is meta
    assert tag_meta(meta, None) is meta
    finding = Finding("toxicity_filter", "toxic", "blocked", "x", tag="toxic")
    assert tag_meta(Meta(), finding).tags == {"toxic"}
    assert tag_meta(Meta(), [finding, None]).tags == {"toxic"}


# --- robustness -------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _shape(v):
    if isinstance(v, dict):
        return {k: _shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_shape(x) for x in v]
    return "str" if isinstance(v, str) else type(v).__name__


@settings(max_examples=300, deadline=None)
@given(value=_json, where=st.sampled_from(["tool_args", "tool_result"]))
def test_any_json_value_keeps_its_shape(value, where):
    out = EVERYTHING.scan_deterministic(value, where=where)
    shape_in, shape_out = _shape(value), _shape(out.value)
    if not out.findings:
        assert out.value == value or value != value
    elif shape_in != shape_out:  # only card-number integers turn into strings
        assert any(f.kind == "credit_card" for f in out.findings)
    assert out.blocked == any(f.action == "blocked" for f in out.findings)


_pieces = st.sampled_from(
    [
        "jane@example.com",
        "+44 20 7946 0958",
        "4111 1111 1111 1111",
        "https://x.example/a",
        "/etc/passwd",
        "Mr. John Smith",
        "DE89 3704 0044 0532 0130 00",
        "192.0.2.1",
        "(415) 555-2671",
        "020 7946 0958",
        "123-45-6789",
        "AB 12 34 56 C",
        "C:\\Users\\a.txt",
        "2001:db8::1",
        "10/12/2024",
        "v1.2.3",
        "$19.99",
        "x",
        "/",
        ":",
        "and",
        "Best regards,",
    ]
)
_separators = st.sampled_from([", ", "\n", "; ", " (", ") ", " - "])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.tuples(_pieces, _separators), max_size=12))
def test_redaction_is_idempotent_and_leaves_no_known_secret(parts):
    # tokens separated the way text separates them: glued tokens ("a@b.com4111") and numbers separated by a
    # single space ("2024 2345 6789 0124") are ambiguous, and the detectors do not match inside digit runs
    text = "".join(piece + sep for piece, sep in parts)
    once = EVERYTHING.scan_deterministic(text, where="tool_result").value
    assert EVERYTHING.scan_deterministic(once, where="tool_result").value == once
    for secret in (
        "jane@example.com",
        "7946 0958",
        "4111 1111",
        "x.example",
        "/etc/passwd",
        "555-2671",
        "45-6789",
        "34 56 C",
        "Users",
        "db8",
        "John",
        "3704",
    ):
        assert secret not in once
