"""Operators' view of the relay (issue #13): request ids, JSON access and error logs, /metrics, readiness, and
JSON errors under /control whatever fails, including the database going away during a live server's life."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from sequrity_site import asgi  # imported now: its django.setup() re-applies LOGGING, which would drop caplog
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key

pytestmark = pytest.mark.live
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]
METRICS_TOKEN = "metrics-test-token-0123456789"


def json_lines(log: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


@pytest.fixture(scope="module")
def observed_server(django_db_setup, django_db_blocker, fake_upstream_server, artifacts_dir):
    """A uvicorn process as in production: JSON logs with access lines, /metrics behind a token."""
    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    env = {
        **_relay_env(fake_upstream_server),
        "LOG_FORMAT": "json",
        "LOG_REQUESTS": "1",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOG_LEVEL": "WARNING",
    }
    with django_db_blocker.unblock():
        live = start_uvicorn(env, log_dir=artifacts_dir)
    yield live
    live.stop()


@pytest.fixture
def observed(observed_server, fake_upstream, transactional_db):
    return observed_server


def metric(text: str, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def scrape(url: str) -> str:
    r = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200, r.text
    return r.text


def test_request_id_header_and_one_json_access_line(observed, fake_upstream):
    key, secret = make_key(UserFactory(), arch="single-llm")
    fake_upstream.push(fu.text("hello"))
    r = httpx.post(
        f"{observed.url}/control/chat/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {secret}", "X-Api-Key": "k"},
    )
    assert r.status_code == 200
    rid, sid = r.headers["x-request-id"], r.headers["x-session-id"]
    assert len(rid) == 32

    def line():
        return next(
            (
                x
                for x in json_lines(observed.log())
                if x.get("request_id") == rid and x.get("logger") == "sequrity.access"
            ),
            None,
        )

    deadline = time.monotonic() + 5
    while line() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    entry = line()
    assert entry is not None, observed.log()[-2000:]
    assert entry["status"] == 200 and entry["session_id"] == sid and entry["key_prefix"] == secret[:12]
    assert entry["path"] == "/control/chat/v1/chat/completions" and entry["latency_ms"] > 0
    assert secret not in observed.log()
    # A client's own sane request id is kept (followed across services); a bad one is replaced.
    r = httpx.get(f"{observed.url}/control/health", headers={"X-Request-ID": "client-abc-12345"})
    assert r.headers["x-request-id"] == "client-abc-12345"
    r = httpx.get(f"{observed.url}/control/health", headers={"X-Request-ID": "bad id!"})
    assert r.headers["x-request-id"] != "bad id!"
    # Dashboard pages get one too.
    assert httpx.get(f"{observed.url}/accounts/login/").headers["x-request-id"]


def test_metrics_behind_a_token_count_requests_verdicts_and_upstream_latency(observed, fake_upstream):
    assert httpx.get(f"{observed.url}/metrics").status_code == 401
    assert httpx.get(f"{observed.url}/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    before = scrape(observed.url)
    key, secret = make_key(
        UserFactory(),
        arch="single-llm",
        features={"agent_arch": "single-llm", "content_classifiers": [{"name": "pii_redaction"}]},
    )
    h = {"Authorization": f"Bearer {secret}", "X-Api-Key": "k"}
    fake_upstream.push(fu.tool_calls(("lookup", {"q": "x"})))
    r1 = httpx.post(
        f"{observed.url}/control/chat/v1/chat/completions", json={**BODY, "tools": TOOLS}, headers=h
    )
    call = r1.json()["choices"][0]["message"]["tool_calls"][0]
    messages = BODY["messages"] + [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "mail bob@example.com"},
    ]
    fake_upstream.push(fu.text("done"))
    r2 = httpx.post(
        f"{observed.url}/control/chat/v1/chat/completions",
        json={**BODY, "tools": TOOLS, "messages": messages},
        headers=h,
    )
    assert r2.status_code == 200
    assert (
        httpx.post(
            f"{observed.url}/control/chat/v1/chat/completions",
            json=BODY,
            headers={"Authorization": "Bearer sq-nope"},
        ).status_code
        == 401
    )
    after = scrape(observed.url)

    def grew(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    labels = {"route": "chat:chat", "provider": "openrouter", "arch": "single-llm"}
    assert grew("sequrity_relay_requests_total", status="200", **labels) == 2
    assert grew("sequrity_relay_requests_total", status="401", route="chat:chat") == 1
    assert grew("sequrity_relay_request_duration_seconds_count", **labels) == 2
    assert grew("sequrity_upstream_duration_seconds_count", provider="openrouter") >= 2
    assert grew("sequrity_policy_verdicts_total", arch="single-llm", verdict="allowed") == 1
    assert grew("sequrity_guardrail_findings_total", guardrail="pii_redaction") >= 1
    for name in (
        "sequrity_log_spool_events",
        "sequrity_log_publish_failures_total",
        "sequrity_program_runs_limited_total",
    ):
        assert f"\n{name} " in after


def test_metrics_are_off_by_default(relay):
    assert httpx.get(f"{relay}/metrics").status_code == 404


def test_readiness_covers_database_broker_and_caches(relay):
    r = httpx.get(f"{relay}/control/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "cache", "session_store"}
    assert httpx.get(f"{relay}/control/health").json()["status"] == "ok"


# --- the database goes away under a running server --------------------------------------------------------


class TcpProxy:
    """A TCP forwarder in a thread; ``cut()`` closes every connection and refuses new ones (a database host
    that went away)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self.writers: set = set()
        self.server = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer):
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.close()
                return
            self.writers |= {writer, up_writer}
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def start():
            self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def cut(self):
        async def close():
            self.server.close()
            for w in list(self.writers):
                w.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def _break_database_setup(tmp_path):
    """(DATABASE_URL for a dedicated server, a function that makes that database unavailable, cleanup)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        copy = tmp_path / "relay.sqlite3"
        src = sqlite3.connect(db["NAME"])
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()

        def cut():
            for suffix in ("-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
            copy.write_bytes(b"this is not a database any more " * 512)

        return f"sqlite:///{copy}", cut, lambda: shutil.rmtree(tmp_path, ignore_errors=True)
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@127.0.0.1:{proxy.port}/{db['NAME']}", proxy.cut, proxy.stop


def test_database_going_away_is_a_json_error_with_a_request_id_in_the_log(
    transactional_db, fake_upstream, artifacts_dir, tmp_path
):
    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    key, secret = make_key(UserFactory(), arch="single-llm")
    url, cut, cleanup = _break_database_setup(tmp_path)
    live = start_uvicorn(
        {
            **_relay_env(fake_upstream),
            "DATABASE_URL": url,
            "LOG_FORMAT": "json",
            "LOG_REQUESTS": "1",
            "RELAY_KEY_CACHE_SECONDS": "0",
            "CONN_MAX_AGE": "0",
            # no stale-while-error key cache here: every request needs the database
            # (tests/relay/test_key_cache_outage.py covers serving known keys through an outage)
            "RELAY_KEY_STALE_SECONDS": "0",
        },
        log_dir=artifacts_dir,
    )
    try:
        h = {"Authorization": f"Bearer {secret}", "X-Api-Key": "k"}
        fake_upstream.push(fu.text("fine"))
        ok = httpx.post(f"{live.url}/control/chat/v1/chat/completions", json=BODY, headers=h)
        assert ok.status_code == 200, ok.text
        cut()
        for path, api in (
            ("/control/chat/v1/chat/completions", "chat"),
            ("/control/chat/anthropic/v1/messages", "messages"),
        ):
            body = BODY if api == "chat" else {**BODY, "max_tokens": 10}
            r = httpx.post(f"{live.url}{path}", json=body, headers=h, timeout=30)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/json")
            rid = r.headers["x-request-id"]
            doc = r.json()
            message = doc["error"]["message"]
            assert f"request id {rid}" in message and "database" in message
            if api == "messages":
                assert doc["type"] == "error"  # Anthropic's error shape on the Messages route
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                logged = [x for x in json_lines(live.log()) if x.get("request_id") == rid]
                if any("Traceback" in (x.get("exc") or "") for x in logged) and any(
                    x.get("logger") == "sequrity.access" for x in logged
                ):
                    break
                time.sleep(0.05)
            assert any("Traceback" in (x.get("exc") or "") for x in logged), live.log()[-3000:]
            assert any(x.get("logger") == "sequrity.access" and x.get("status") == 503 for x in logged)
        health = httpx.get(f"{live.url}/control/health")
        if connection.vendor == "postgresql":  # a garbage SQLite file still answers SELECT 1
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
        ready = httpx.get(f"{live.url}/control/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
        # Nothing under /control is HTML, whatever fails.
        for path in ("/control/", "/control/v1/validate-headers", "/control/nope"):
            r = httpx.get(f"{live.url}{path}")
            assert r.headers["content-type"].startswith("application/json"), (path, r.text[:200])
    finally:
        live.stop()
        cleanup()


# --- in-process: an unexpected exception anywhere under /control --------------------------------------------


def _asgi_client():
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi.application), base_url="http://testserver"
    )


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_is_json_with_the_request_id(monkeypatch, caplog, settings, debug):
    from relay.lifecycle import chain

    settings.DEBUG = debug

    async def boom(request, route):
        raise RuntimeError("a bug in the relay")

    monkeypatch.setattr(chain, "handle", boom)

    async def go():
        async with _asgi_client() as c:
            return await c.post("/control/chat/v1/chat/completions", json=BODY)

    with caplog.at_level("ERROR"):
        r = asyncio.run(go())
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
    rid = r.headers["x-request-id"]
    assert f"request id {rid}" in r.json()["error"]["message"]
    records = [rec for rec in caplog.records if getattr(rec, "request_id", None) == rid and rec.exc_info]
    assert records and "a bug in the relay" in str(records[0].exc_info[1])


def test_an_exception_escaping_the_relay_handler_is_still_json(monkeypatch, caplog):
    async def broken(scope, receive, send):
        raise RuntimeError("handler crashed")

    monkeypatch.setattr(asgi, "relay_application", broken)

    async def go():
        async with _asgi_client() as c:
            return await c.get("/control/health")

    with caplog.at_level("ERROR"):
        r = asyncio.run(go())
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    rid = r.headers["x-request-id"]
    assert rid in r.json()["error"]["message"]
    assert any(getattr(rec, "request_id", None) == rid and rec.exc_info for rec in caplog.records)
