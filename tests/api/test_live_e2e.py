"""The management API end to end on a real server: a script mints a token, the API makes a key, the official
client uses it through the relay (fake upstream), and the API reads the session and the usage back, refuses a
bad policy with its line and column, and revokes the key (the relay then answers 401)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from sequrity import SequrityClient

from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key
from tests.live import ROOT, child_env

pytestmark = pytest.mark.live
BAD_POLICY = 'tool "send_email" {\n    hard deny when ;\n}'


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None


def mint_token(username: str) -> str:
    """What an operator's script does: the management command; the token is its last line."""
    out = subprocess.run(
        [sys.executable, "manage.py", "create_access_token", "--username", username, "--name", "ci"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_token_key_relay_session_usage_patch_revoke(relay, fake_upstream):
    token = mint_token("operator")
    api = httpx.Client(base_url=f"{relay}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)

    r = api.post("/keys/", json={"name": "ci agent", "arch": "single-llm"})
    assert r.status_code == 201, r.text
    key = r.json()
    secret, key_id = key["secret"], key["id"]
    assert key["owner"] == "operator"

    client = SequrityClient(api_key=secret, base_url=relay)
    fake_upstream.push(fu.text("hello through the relay", usage=(21, 9)))
    answer = client.control.chat.create(
        messages=[{"role": "user", "content": "hi"}],
        model="gpt-5-mini",
        llm_api_key="sk-byok",
        provider="openai",
    )
    assert answer.choices[0].message.content == "hello through the relay"
    sid = answer.session_id

    sessions = wait_for(lambda: api.get("/sessions/", params={"key": key_id}).json()["results"])
    assert sessions and sessions[0]["id"] == sid and sessions[0]["key"]["id"] == key_id
    detail = wait_for(lambda: (d := api.get(f"/sessions/{sid}/").json()) and d["requests_log"] and d)
    assert detail["arch"] == "single-llm" and detail["requests_log"][0]["prompt_tokens"] == 21
    assert any(step["type"] for step in detail["steps"])

    usage = wait_for(
        lambda: (u := api.get("/usage/", params={"group_by": "key"}).json())["totals"]["requests"] and u
    )
    assert usage["results"][0]["key"]["id"] == key_id
    assert usage["totals"]["prompt_tokens"] == 21 and usage["totals"]["completion_tokens"] == 9
    assert usage["totals"]["latency_median_ms"] is not None
    by_model = api.get("/usage/", params={"group_by": "model"}).json()
    assert by_model["results"][0]["model"] == "gpt-5-mini"

    r = api.patch(f"/keys/{key_id}/", json={"policy": {"codes": {"code": BAD_POLICY, "language": "sqrt"}}})
    assert r.status_code == 400
    assert [(e["field"], e["line"], e["column"]) for e in r.json()["errors"]] == [("policy", 2, 20)]

    assert api.post(f"/keys/{key_id}/revoke/").json()["is_active"] is False

    def refused():
        return (
            httpx.post(
                f"{relay}/control/chat/v1/chat/completions",
                timeout=10,
                json={"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
            ).status_code
            == 401
        )

    assert wait_for(refused, timeout=5)

    # The access token is not a relay key, and the relay key is not an access token.
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        timeout=10,
        json={"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {token}", "X-Api-Key": "k"},
    )
    assert r.status_code == 401
    assert (
        httpx.get(f"{relay}/api/v1/keys/", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )


def test_another_users_objects_are_invisible_live(relay, fake_upstream):
    """A second user's token sees none of the first user's key, session or usage (404 each)."""
    owner = UserFactory()
    key, secret = make_key(owner, "single-llm")
    fake_upstream.push(fu.text("mine"))
    r = httpx.post(
        f"{relay}/control/chat/v1/chat/completions",
        timeout=10,
        json={"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
    )
    sid = r.headers["x-session-id"]
    mine = httpx.Client(
        base_url=f"{relay}/api/v1", headers={"Authorization": f"Bearer {mint_token(owner.username)}"}
    )
    assert wait_for(lambda: mine.get(f"/sessions/{sid}/").status_code == 200)

    other = httpx.Client(
        base_url=f"{relay}/api/v1", headers={"Authorization": f"Bearer {mint_token('stranger')}"}
    )
    for method, path, params in [
        ("get", f"/keys/{key.pk}/", None),
        ("patch", f"/keys/{key.pk}/", None),
        ("post", f"/keys/{key.pk}/revoke/", None),
        ("post", f"/keys/{key.pk}/rotate/", None),
        ("get", f"/sessions/{sid}/", None),
        ("get", "/sessions/", {"key": key.pk}),
        ("get", "/usage/", {"key": key.pk}),
    ]:
        kwargs = {"params": params} if params else {}
        if method == "patch":
            kwargs["json"] = {"name": "x"}
        r = getattr(other, method)(path, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "not_found"
    assert other.get("/keys/").json()["count"] == 0
    assert other.get("/sessions/").json()["count"] == 0
    assert other.get("/usage/", params={"group_by": "key"}).json()["results"] == []
