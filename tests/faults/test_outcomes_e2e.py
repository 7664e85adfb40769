"""The usage log records what happened, not what was meant (issue #18 item 4), through the live relay:

- a stream the upstream cuts after the relay's 200 is logged with the failure's status (502), marked
  ``stream_cut`` (the client got an error event, not an answer);
- a client that abandons a (dual-LLM, non-streamed) request before its answer is logged 499 ``cancelled``;
- a request refused because the database was down before the key could be checked: see
  tests/sessions/test_journal.py (and scripts/fault_test.py, which takes the database away for real).
"""

from __future__ import annotations

import time

import httpx
import pytest

from sessions.models import UsageEvent
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def rows_of(key, n: int = 1, timeout: float = 30.0) -> list[UsageEvent]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(UsageEvent.objects.filter(api_key=key))
        if len(rows) >= n:
            time.sleep(0.3)  # a duplicate would arrive with the same flush or the next one
            return list(UsageEvent.objects.filter(api_key=key))
        time.sleep(0.1)
    return list(UsageEvent.objects.filter(api_key=key))


def test_a_stream_the_upstream_cuts_is_logged_as_cut(relay, fake_upstream):
    key, secret = make_key(UserFactory(), arch="single-llm")
    fake_upstream.push(fu.text("alpha beta gamma delta epsilon zeta eta theta", drop_after=3, usage=(40, 9)))
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=body,
        timeout=20,
        headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
    )
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")  # a well-formed end, in band
    [row] = rows_of(key)
    assert (row.status_code, row.error_kind, row.streamed) == (502, "stream_cut", True)
    assert str(row.session_id) == r.headers["x-session-id"]


def test_a_complete_stream_is_logged_200(relay, fake_upstream):
    key, secret = make_key(UserFactory(), arch="single-llm")
    fake_upstream.push(fu.text("alpha beta", usage=(40, 9)))
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        json=body,
        timeout=20,
        headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
    )
    assert r.status_code == 200
    [row] = rows_of(key)
    assert (row.status_code, row.error_kind) == (200, "")


def test_a_dual_request_the_client_abandons_is_logged_cancelled(relay, fake_upstream):
    key, secret = make_key(UserFactory(), arch="dual-llm")
    fake_upstream.push(fu.text("```python\nfinal_return_value = 6 * 7\n```", delay=3.0))
    body = {"model": "m", "messages": [{"role": "user", "content": "what is 6 * 7?"}]}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            f"{relay}/control/chat/v1/chat/completions",
            json=body,
            timeout=1.0,
            headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
        )
    [row] = rows_of(key, timeout=15)
    assert (row.status_code, row.error_kind) == (499, "cancelled")
