"""In-place redaction of tool-result text and the session memo of guardrail decisions (issue #12, part 1)."""

import asyncio
import json
import random

import pytest

from relay.guardrails.detectors import PLACEHOLDERS
from relay.guardrails.memo import (
    EDIT_KINDS,
    MISS,
    STATE_KEY,
    ScanMemo,
    content_key,
    fingerprint,
    session_memo,
    verdict_key,
)
from tests.guardrails.helpers import DETERMINISTIC, EVERYTHING

from .test_bench import _load_bench


def test_every_placeholder_kind_has_an_edit_code():
    assert set(EDIT_KINDS) == set(PLACEHOLDERS)


def _variants(value):
    yield json.dumps(value)
    yield json.dumps(value, indent=2)
    yield json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    yield json.dumps(value, ensure_ascii=True)  # every non-ASCII character as \uXXXX


@pytest.mark.parametrize("seed", range(6))
def test_scan_text_edits_in_place_and_agrees_with_the_value_scan(seed):
    bench = _load_bench()
    value = bench.realistic_tool_result(3000, seed=seed)
    value["note"] = 'Quote "Jane" <jane@corp.example.com>\n\ttab, emoji 😀, path C:\\Users\\jane\\x.txt'
    for text in _variants(value):
        out = DETERMINISTIC.scan_text(text)
        assert out.edits is not None
        assert (
            json.loads(out.text)
            == DETERMINISTIC.scan_deterministic(json.loads(text), where="tool_result").value
        )
        # the formatting is kept: only the spans changed
        assert out.text.count("\n") == text.count("\n")
        rebuilt, pos = [], 0
        for start, end, kind in out.edits:
            rebuilt += [text[pos:start], PLACEHOLDERS[kind]]
            pos = end
        assert "".join(rebuilt + [text[pos:]]) == out.text


def test_scan_text_of_plain_text_and_unchanged_text():
    out = DETERMINISTIC.scan_text("mail jane.doe@example.com or see https://x.example.com/a")
    assert out.text == "mail [REDACTED_EMAIL] or see [BLOCKED_URL]" and len(out.edits) == 2
    clean = DETERMINISTIC.scan_text('{"a": "nothing here"}')
    assert clean.text == '{"a": "nothing here"}' and clean.edits == [] and not clean.outcome.findings


def test_scan_text_falls_back_to_a_reserialised_copy_when_it_cannot_edit_in_place():
    out = DETERMINISTIC.scan_text('{"card": 4111111111111111, "e": "jane.doe@example.com"}')
    assert out.edits is None and json.loads(out.text) == {
        "card": "[REDACTED_CREDIT_CARD]",
        "e": "[REDACTED_EMAIL]",
    }
    dup = DETERMINISTIC.scan_text('{"a": "x", "a": "jane.doe@example.com"}')
    assert dup.edits is None and json.loads(dup.text) == {"a": "[REDACTED_EMAIL]"}


def test_scan_text_of_arguments_masks_whole_url_arguments():
    out = DETERMINISTIC.scan_text('{"url": "evil.example", "n": 1}', where="tool_args")
    assert out.outcome.blocked and out.text == '{"url": "[BLOCKED_URL]", "n": 1}'


# ----------------------------------------------------------------------------------------------- memo


def test_memo_remembers_edits_not_the_detected_text():
    state: dict = {}
    memo = session_memo(DETERMINISTIC, state)
    text = json.dumps({"who": "jane.doe@example.com", "iban": "DE89 3704 0044 0532 0130 00"})
    scanned = DETERMINISTIC.scan_text(text)
    key = content_key("tool_result", text)
    assert memo.get_scan(key) is MISS
    memo.put_scan(
        key, edits=scanned.edits, tags=scanned.outcome.tags, findings=[("pii_redaction", "redacted")]
    )
    stored = json.dumps(state)
    assert "jane.doe" not in stored and "3704" not in stored
    hit = session_memo(DETERMINISTIC, state).get_scan(key)  # a later request, same session state
    assert hit.text_for(text) == scanned.text and hit.tags == ["pii"]


def test_memo_is_reset_when_the_guardrail_settings_change():
    state: dict = {}
    session_memo(DETERMINISTIC, state).put_scan("k", replacement="x")
    assert session_memo(DETERMINISTIC, state).get_scan("k") is not MISS
    assert fingerprint(DETERMINISTIC) != fingerprint(EVERYTHING)
    assert session_memo(EVERYTHING, state).get_scan("k") is MISS
    assert state[STATE_KEY]["e"] == {}


def test_memo_is_bounded(monkeypatch):
    from relay.guardrails import memo as m

    monkeypatch.setattr(m, "MAX_ENTRIES", 10)
    monkeypatch.setattr(m, "MAX_CHARS", 100)
    monkeypatch.setattr(m, "MAX_ENTRY_CHARS", 60)
    store: dict = {}
    memo = ScanMemo(store, "fp")
    for i in range(25):
        memo.put_scan(f"k{i}")
    assert len(memo) == 10 and list(memo.entries)[0] == "k15"  # oldest first out
    assert memo.put_scan("big", replacement="x" * 61) is False
    for i in range(3):
        memo.put_scan(f"r{i}", replacement="y" * 40)
    assert memo.chars <= 100 and "r0" not in memo.entries and "r2" in memo.entries
    assert memo.chars == sum(len(e[1]) for e in memo.entries.values() if isinstance(e[1], str))


def test_classifier_verdicts_are_asked_once_per_distinct_text():
    memo = ScanMemo({}, fingerprint(EVERYTHING))
    asked = []

    async def ask(req):
        asked.append(req.name)
        return {"score": 0.9 if req.name == "toxicity_filter" else 0.1, "label": "x", "reason": ""}

    async def run():
        first = await EVERYTHING.classify("you are all idiots", ask, memo)
        again = await EVERYTHING.classify("you are all idiots", ask, memo)
        other = await EVERYTHING.classify("a different text", ask, memo)
        return first, again, other

    first, again, other = asyncio.run(run())
    assert [f.guardrail for f in first] == ["toxicity_filter"] and first == again
    assert len(asked) == 6  # 3 classifiers x 2 distinct texts; the repeat asked nothing
    assert [f.guardrail for f in other] == ["toxicity_filter"]


def test_failed_classifications_are_asked_again():
    memo = ScanMemo({}, fingerprint(EVERYTHING))
    calls = []

    async def failing(req):
        calls.append(req.name)
        raise RuntimeError("provider down")

    async def run():
        return [await EVERYTHING.classify("some text", failing, memo) for _ in range(2)]

    a, b = asyncio.run(run())
    assert all(f.kind == "error" for f in a + b) and len(calls) == 6


def test_verdict_key_depends_on_classifier_and_text():
    reqs = EVERYTHING.classifier_requests("text one") + EVERYTHING.classifier_requests("text two")
    assert len({verdict_key(r) for r in reqs}) == len(reqs) == 6


def test_content_key_is_stable_and_fast_enough():
    rng = random.Random(3)
    text = "".join(rng.choice("abc xyz@.") for _ in range(100_000))
    assert content_key("tool_result", text) == content_key("tool_result", text)
    assert content_key("tool_result", text) != content_key("tool_args", text)
    assert len(content_key("a", "b")) == 24
