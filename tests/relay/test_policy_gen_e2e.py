"""Policy generation through the live relay with the official client."""

import httpx
import pytest
from sequrity import SequrityClient

from tests import fake_upstream as fu

pytestmark = pytest.mark.live

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "delete_file",
            "description": "Delete a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
]


def test_generate_retries_until_it_compiles(relay, dual_key, fake_upstream):
    client = SequrityClient(api_key=dual_key, base_url=relay)
    fake_upstream.push(
        fu.text('```sqrt\ntool "delete_file" { must deny }\n```'),
        fu.text('```sqrt\ntool "delete_file" {\n    must deny always;\n}\n```'),
    )
    result = client.control.policy.generate(
        {
            "type": "oai_chat_completion",
            "model": "gpt-5-mini",
            "tools": TOOLS,
            "description": "Allow reading files but never deleting them.",
        },
        llm_api_key="sk-x",
    )
    assert 'tool "delete_file"' in result.policies and "must deny always" in result.policies
    assert (
        result.usage["total_tokens"] == result.usage["prompt_tokens"] + result.usage["completion_tokens"] > 0
    )
    second = fake_upstream.requests[-1]
    assert second.path.endswith("/v1/chat/completions") and second.api_key == "sk-x"
    assert "does not compile" in second.text
    from sequrity.sqrt import validate

    assert validate(result.policies)


def test_generate_errors(relay, dual_key, fake_upstream):
    h = {"Authorization": f"Bearer {dual_key}", "X-Api-Key": "k"}
    url = f"{relay}/control/policy-gen/v1/generate"
    r = httpx.post(url, json={"type": "oai_responses", "model": "m", "description": "d"}, headers=h)
    assert r.status_code == 400 and "oai_responses" in r.json()["detail"]
    r = httpx.post(
        url, json={"type": "oai_chat_completion", "model": "m", "description": "d", "extra": 1}, headers=h
    )
    assert r.status_code == 400 and "extra" in r.json()["detail"]
    fake_upstream.push(*[fu.text("not a policy {")] * 2)
    r = httpx.post(
        url,
        json={"type": "openrouter_chat_completion", "model": "m", "description": "d", "n_retries": 1},
        headers=h,
    )
    assert r.status_code == 422 and "after 2 attempts" in r.json()["detail"]
    assert "x-session-id" not in r.headers
