"""What one request to the policy editor can cost is bounded (found by an attacker's review).

- The diagnostics replay the LALR parse once (plus one pass to the failing token): linear in the text. It used
  to copy the parser before every token (O(tokens x stack depth): minutes for 20,000 nested parentheses), and
  Cedar errors were located by re-parsing every line prefix (216 s for 200,000 characters).
- A dry-run replays for at most POLICY_DRY_RUN_SECONDS, newest calls first; the rest are counted.
- Policy code over 200,000 characters is refused at Save, in the API and in the dry-run.

The time bounds below are an order of magnitude above what the linear code needs on a loaded machine and far
below what the super-linear code took.
"""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from apikeys.validation import compile_policy_document
from relay.policy_replay import RecordedCall, replay
from relay.sqrt.diagnostics import MAX_POLICY_CHARS, diagnose
from relay.sqrt.policy import clear_cache
from tests.factories import PASSWORD, make_key
from tests.policy_recording import record_tool_calls

LONG_TEXTS = {
    "sqrt-statements": (('let a = {"x"};\n' * 12_000) + "let", "sqrt"),  # 180,003 chars, error at the end
    "sqrt-nested": ("let a = " + "(" * 50_000, "sqrt"),
    "sqrt-missing-semicolon": (
        'tool "x" {\n'
        + "  hard deny when true;\n" * 8000
        + "  hard deny when true\n  hard allow when false;\n}",
        "sqrt",
    ),
    "cedar-lines": ("\n" * 199_000 + "permit(", "cedar"),
}


@pytest.mark.parametrize("name", sorted(LONG_TEXTS))
def test_diagnosing_a_long_broken_policy_takes_linear_time(name):
    code, language = LONG_TEXTS[name]
    clear_cache()
    started = time.perf_counter()
    found = diagnose(code, language)
    elapsed = time.perf_counter() - started
    assert found and found[0].line >= 1
    assert elapsed < 15, f"{len(code)} characters took {elapsed:.1f} s"


def test_the_missing_semicolon_of_a_long_policy_is_still_placed_where_it_is_missing():
    code, _ = LONG_TEXTS["sqrt-missing-semicolon"]
    found = diagnose(code)
    assert found[0].message.startswith("Missing ';' at the end of `hard deny when true`")
    assert (found[0].line, found[0].column) == (8002, 22)


def test_policy_code_over_the_limit_is_refused_with_a_clear_error():
    code = "let a = int;\n" * (MAX_POLICY_CHARS // 13 + 1)
    message = compile_policy_document({"codes": {"code": code, "language": "sqrt"}})
    assert (
        message == f"codes.code: the policy is too long ({len(code)} characters; at most {MAX_POLICY_CHARS})"
    )


def _call(seq: int, value: str) -> RecordedCall:
    return RecordedCall(
        session_id="s",
        seq=seq,
        dual_llm=False,
        tool="fetch_page",
        args={"a": {"value": value, "meta": None}},
        session_meta=None,
        control_meta=None,
        verdict="soft_allowed",
    )


def test_a_replay_out_of_time_counts_what_it_did_not_replay():
    calls = [_call(i, "x") for i in range(5)]
    result = replay(calls, {}, time_budget=-1.0)  # a budget already spent: nothing is replayed
    assert (result.replayed, result.out_of_time) == (0, 5)
    assert "stopped at the time limit: the 5 oldest calls were not replayed" in result.summary()
    everything = replay(calls, {}, time_budget=60.0)
    assert (everything.replayed, everything.out_of_time) == (5, 0)


@pytest.mark.django_db
def test_a_dry_run_with_a_heavy_policy_stops_at_its_time_limit(user, client, settings):
    settings.POLICY_DRY_RUN_SECONDS = 0.2
    key, _ = make_key(user, arch="single-llm")
    for _ in range(4):
        record_tool_calls(
            key, [("fetch_page", {"a": "ab" * 10_000})] * 50
        )  # 200 calls, 20,000-char arguments
    rules = '    soft allow when a.value in {r"(?s).*(x|y)z.*"};\n' * 2000
    policy = json.dumps({"codes": {"code": 'tool r".*" {\n' + rules + "}\n", "language": "sqrt"}})
    assert client.login(username=user.username, password=PASSWORD)
    started = time.perf_counter()
    response = client.post(
        reverse("apikeys:dry-run", args=[key.pk]),
        {"policy": policy, "limit": "200"},
        HTTP_ACCEPT="application/json",
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["out_of_time"] > 0 and body["replayed"] + body["out_of_time"] == 200
    assert "stopped at the time limit" in body["summary"]
    assert elapsed < 15, f"one dry-run held the worker {elapsed:.1f} s"  # it took 17-27 s without the limit
