"""Single-LLM relay end to end: a live uvicorn server, the fake upstream, real SDKs."""

import httpx
import pytest

from tests import fake_upstream as fu

pytestmark = pytest.mark.live


def test_openai_sdk_chat_byok(relay, single_key, fake_upstream):
    import openai

    client = openai.OpenAI(api_key=single_key, base_url=f"{relay}/control/chat/openrouter/v1",
                           default_headers={"X-Api-Key": "sk-or-byok"})
    fake_upstream.push(fu.text("Hello from upstream"))
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from upstream"
    assert raw.headers["x-session-id"]
    sent = fake_upstream.requests[-1]
    assert sent.api_key == "sk-or-byok"
    assert sent.json["model"] == "openai/gpt-5-mini"


def test_auth_errors(relay):
    r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json={})
    assert r.status_code == 401 and "Authorization" in r.json()["detail"]
    r = httpx.post(f"{relay}/control/chat/v1/chat/completions", json={},
                   headers={"Authorization": "Bearer sq-nope-nope-nope-nope-nope-nope-nope-nope-nope"})
    assert r.status_code == 401
    r = httpx.post(f"{relay}/control/chat/anthropic/v1/chat/completions", json={})
    assert r.status_code == 404 and "detail" in r.json()
