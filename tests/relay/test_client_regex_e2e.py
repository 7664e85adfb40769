"""Client regular expressions through the live relay (issue 18, item 7).

A backtracking pattern in X-Policy (``(a+)+$``) against a long tool argument no longer holds the worker: the
request is answered at once. What RE2 cannot match in linear time (a backreference) is refused when the
policy is compiled, with its line and column: by POST /control/v1/validate-headers and by a request.
"""

import json
import time

import httpx
import pytest

from tests import fake_upstream as fu

pytestmark = pytest.mark.live
CHAT = "/control/chat/v1/chat/completions"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "fetch",
            "parameters": {"type": "object", "properties": {"note": {"type": "string"}}},
        },
    }
]
EVIL_POLICY = 'tool "fetch" {\n  hard deny when note.value in {str matching r"(a+)+$"};\n}\n'
BACKREF_POLICY = 'tool "fetch" {\n  hard deny when note.value in {str matching r"(a)\\1"};\n}\n'


def _validate(relay, **fields):
    r = httpx.post(f"{relay}/control/v1/validate-headers", json=fields, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_validate_headers_refuses_a_backreference_with_line_and_column(relay):
    out = _validate(relay, x_policy={"codes": {"code": BACKREF_POLICY, "language": "sqrt"}})["x_policy"]
    assert out["valid"] is False and out["normalized"] is None
    (error,) = out["errors"]
    column = BACKREF_POLICY.splitlines()[1].index("\\1") + 1
    assert error.startswith(f"codes.code: line 2, column {column}: unsupported regular expression"), error
    assert "backreferences" in error and "RE2" in error

    out = _validate(relay, x_config={"fsm": {"force_to_cache": [r"(a)\1"]}})["x_config"]
    assert out["valid"] is False
    assert any("fsm.force_to_cache[0]" in e and "backreferences" in e for e in out["errors"]), out["errors"]

    ok = _validate(
        relay, x_policy={"codes": {"code": EVIL_POLICY}}, x_config={"fsm": {"force_to_cache": ["a.*"]}}
    )
    assert ok["x_policy"]["valid"] and ok["x_config"]["valid"]


def _post(relay, key, policy, messages):
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Api-Key": "k",
        "X-Features": json.dumps({"agent_arch": "single-llm"}),
        "X-Policy": json.dumps({"codes": {"code": policy, "language": "sqrt"}}),
    }
    return httpx.post(
        f"{relay}{CHAT}",
        json={"model": "m", "messages": messages, "tools": TOOLS},
        headers=headers,
        timeout=30,
    )


def test_backtracking_policy_regex_does_not_hold_the_worker(relay, single_key, fake_upstream):
    messages = [{"role": "user", "content": "go"}]
    fake_upstream.push(fu.tool_calls(("fetch", {"note": "a" * 20_000 + "!"})))
    t0 = time.monotonic()
    r = _post(relay, single_key, EVIL_POLICY, messages)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert elapsed < 5, elapsed
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "fetch"  # not denied

    fake_upstream.push(fu.tool_calls(("fetch", {"note": "aaaa"})))  # the pattern still matches what it should
    r = _post(relay, single_key, EVIL_POLICY, messages)
    assert r.status_code == 200 and not r.json()["choices"][0]["message"].get("tool_calls"), r.text


def test_request_with_a_backreference_policy_is_refused(relay, single_key):
    r = _post(relay, single_key, BACKREF_POLICY, [{"role": "user", "content": "go"}])
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "backreferences" in detail and "line 2, column" in detail, detail
