"""The relay under faults, end to end (issue #18 items 5, 6 and 8): uvicorn, the fake upstream, and a private
redis-server holding the session store (``RELAY_SESSION_CACHE_URL``) that the tests stop, kill and restart.

* Redis down: every API, streaming or not, new session or continuation, is a JSON 503 with ``Retry-After``
  and the upstream is never called (the store is checked, by locking the session, first); Redis back: served.
* Redis gone in the middle of a request: a JSON 503 (the session could not be kept), and the request is still
  in the usage log though its lock could not be released.
* A relay process killed while holding a session's lock: the next request of that session proceeds once the
  lease (upstream timeout + 5 s) lapses, not after 10 minutes, and not as a 409.
* The database down: keys the relay saw recently keep working (stale-while-error); others get a JSON 503 with
  ``Retry-After``, every API, streaming or not.
* Bodies: 3 MB is served by default; over ``RELAY_MAX_BODY_BYTES`` a JSON 413 naming it; a client that
  announces more than it sends gets a JSON 408 after ``RELAY_BODY_READ_TIMEOUT`` and the connection closes;
  ``//control//chat/...`` is the API's JSON 404.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from sessions.models import RelaySession, UsageEvent
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key
from tests.redis_server import RedisServer

pytestmark = pytest.mark.live

ROUTES = {
    "chat": "/control/chat/v1/chat/completions",
    "messages": "/control/chat/anthropic/v1/messages",
    "responses": "/control/chat/v1/responses",
}


def body_for(api: str, stream: bool = False, text: str = "hi") -> dict:
    if api == "chat":
        return {"model": "gpt-5-mini", "stream": stream, "messages": [{"role": "user", "content": text}]}
    if api == "messages":
        return {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "stream": stream,
            "messages": [{"role": "user", "content": text}],
        }
    return {"model": "gpt-5-mini", "stream": stream, "input": text}


def headers(secret: str, **extra) -> dict:
    return {"Authorization": f"Bearer {secret}", "X-Api-Key": "sk-test", **extra}


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def assert_json_503(r: httpx.Response, what: str) -> None:
    assert r.status_code == 503, r.text[:500]
    assert r.headers["content-type"].startswith("application/json"), r.text[:200]
    assert int(r.headers["retry-after"]) > 0
    doc = r.json()
    message = doc["error"]["message"]
    assert what in message and f"request id {r.headers['x-request-id']}" in message, message


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server):
    """The private Redis, running at the start of the test (a test may stop it; it is restarted here)."""
    if not redis_server.ping():
        redis_server.start()
    yield redis_server
    if not redis_server.ping():
        redis_server.start()


def _env(fake, redis_url: str, **extra) -> dict:
    from tests.conftest import _relay_env

    return {**_relay_env(fake), "RELAY_SESSION_CACHE_URL": redis_url, "RELAY_PROGRAM_WORKERS": "0", **extra}


@pytest.fixture(scope="module")
def redis_relay_server(
    django_db_setup,
    django_db_blocker,
    fake_upstream_server,
    artifacts_dir,
    redis_server,
    celery_worker_process,
):
    from tests.live import start_uvicorn

    with django_db_blocker.unblock():
        live = start_uvicorn(_env(fake_upstream_server, redis_server.url), log_dir=artifacts_dir)
    yield live
    live.stop()


@pytest.fixture
def redis_relay(redis_relay_server, redis, fake_upstream, transactional_db):
    return redis_relay_server


# --- Redis down ---------------------------------------------------------------------------------------------


def test_redis_down_is_a_json_503_before_any_upstream_call(redis_relay, redis, fake_upstream):
    key, secret = make_key(UserFactory(), arch="single-llm")
    dual_key, dual_secret = make_key(UserFactory(), arch="dual-llm")
    url = redis_relay.url
    fake_upstream.push(fu.text("kept"))
    r = httpx.post(url + ROUTES["chat"], json=body_for("chat"), headers=headers(secret))
    assert r.status_code == 200, r.text
    sid = r.headers["x-session-id"]

    redis.stop()
    fake_upstream.reset()
    refused = 0
    for api, path in ROUTES.items():
        for stream in (False, True):
            r = httpx.post(url + path, json=body_for(api, stream), headers=headers(secret), timeout=20)
            assert_json_503(r, "session store")
            if api == "messages":
                assert r.json()["type"] == "error"
            refused += 1
    r = httpx.post(
        url + ROUTES["chat"], json=body_for("chat"), headers=headers(secret, **{"X-Session-ID": sid})
    )
    assert_json_503(r, "session store")  # a continuation: its state cannot be read
    r = httpx.post(url + ROUTES["chat"], json=body_for("chat", True), headers=headers(dual_secret))
    assert_json_503(r, "session store")
    assert fake_upstream.requests == []  # nothing was sent to (or billed by) the provider
    ready = httpx.get(url + "/control/ready").json()
    assert ready["checks"]["session_store"].startswith("error")

    # Every refused request is in the usage log as what it was, and leaves no open session behind.
    assert wait_for(
        lambda: (
            UsageEvent.objects.filter(api_key=key, status_code=503, error_kind="session_store").count()
            == refused + 1
        )
    )
    assert wait_for(
        lambda: RelaySession.objects.filter(api_key=key, status="error", closed=True).count() == refused
    )
    assert not RelaySession.objects.filter(api_key=key, status="open").exists()
    assert RelaySession.objects.get(id=uuid.UUID(sid)).status == "success"  # the session from before: intact

    redis.start()  # back (empty): the relay reconnects by itself
    for api, path in ROUTES.items():
        fake_upstream.push(fu.text("back"))
        r = httpx.post(url + path, json=body_for(api), headers=headers(secret))
        assert r.status_code == 200, r.text


def test_redis_gone_during_a_request_is_a_503_and_still_logged(redis_relay, redis, fake_upstream):
    key, secret = make_key(UserFactory(), arch="single-llm")
    fake_upstream.push(fu.text("too late", delay=1.5))
    out: dict = {}
    t = threading.Thread(
        target=lambda: out.update(
            r=httpx.post(
                redis_relay.url + ROUTES["chat"], json=body_for("chat"), headers=headers(secret), timeout=20
            )
        )
    )
    t.start()
    assert wait_for(lambda: len(fake_upstream.requests) == 1, 5)
    redis.kill()  # while the upstream is answering: the session cannot be saved nor its lock released
    t.join(20)
    assert_json_503(out["r"], "session store")
    usage = wait_for(lambda: UsageEvent.objects.filter(api_key=key).first())
    assert usage is not None and usage.status_code == 503 and usage.error_kind == "session_store"
    assert usage.prompt_tokens > 0  # the upstream's usage is recorded: the provider did the work


# --- a stale lock -------------------------------------------------------------------------------------------


def test_a_lock_left_by_a_killed_relay_lapses_with_its_lease(
    redis_relay, redis, fake_upstream, artifacts_dir
):
    from tests.live import start_uvicorn

    key, secret = make_key(UserFactory(), arch="single-llm")
    fake_upstream.push(fu.text("first"))
    r = httpx.post(redis_relay.url + ROUTES["chat"], json=body_for("chat"), headers=headers(secret))
    sid = r.headers["x-session-id"]
    other = start_uvicorn(_env(fake_upstream, redis.url), log_dir=artifacts_dir)  # a second relay process
    try:
        fake_upstream.push(fu.text("never delivered", delay=20), fu.text("continued"))
        h = headers(secret, **{"X-Session-ID": sid})

        def doomed():
            with contextlib.suppress(httpx.HTTPError):  # its server is killed under it
                httpx.post(other.url + ROUTES["chat"], json=body_for("chat", text="2"), headers=h, timeout=30)

        t = threading.Thread(target=doomed, daemon=True)
        t.start()
        assert wait_for(lambda: len(fake_upstream.requests) == 2, 10)  # it holds the session's lock now
        other.proc.kill()  # kill -9: no release
        other.proc.wait()
        started = time.monotonic()
        r = httpx.post(
            redis_relay.url + ROUTES["chat"], json=body_for("chat", text="3"), headers=h, timeout=40
        )
        waited = time.monotonic() - started
    finally:
        other.stop()
    assert r.status_code == 200, r.text  # not a 409
    assert r.headers["x-session-id"] == sid and r.json()["choices"][0]["message"]["content"] == "continued"
    assert waited < 8 + 3, waited  # the lease: RELAY_UPSTREAM_TIMEOUT (3 s) + 5 s, not 600 s


# --- the database down --------------------------------------------------------------------------------------


def test_database_down_known_keys_served_others_json_503(
    transactional_db, fake_upstream, artifacts_dir, tmp_path, redis
):
    from tests.live import start_uvicorn
    from tests.relay.test_observability_e2e import _break_database_setup

    known, known_secret = make_key(UserFactory(), arch="single-llm")
    unknown, unknown_secret = make_key(UserFactory(), arch="single-llm")
    url, cut, cleanup = _break_database_setup(tmp_path)
    live = start_uvicorn(
        _env(fake_upstream, redis.url, DATABASE_URL=url, CONN_MAX_AGE="0", RELAY_KEY_CACHE_SECONDS="0.2"),
        log_dir=artifacts_dir,
    )
    try:
        fake_upstream.push(fu.text("seen"))
        r = httpx.post(live.url + ROUTES["chat"], json=body_for("chat"), headers=headers(known_secret))
        assert r.status_code == 200, r.text
        cut()
        time.sleep(0.3)  # the cached entry is past RELAY_KEY_CACHE_SECONDS: the database is asked (and fails)
        fake_upstream.reset()
        for api, path in ROUTES.items():
            for stream in (False, True):
                r = httpx.post(
                    live.url + path, json=body_for(api, stream), headers=headers(unknown_secret), timeout=30
                )
                assert_json_503(r, "database")
        assert fake_upstream.requests == []
        for api, path in ROUTES.items():
            for stream in (False, True):
                fake_upstream.push(fu.text("served from the cache"))
                r = httpx.post(
                    live.url + path, json=body_for(api, stream), headers=headers(known_secret), timeout=30
                )
                assert r.status_code == 200, (api, stream, r.text[:300])
                assert b"served from the cache" in r.content or stream
        assert "served from the cache (stale)" in live.log()
    finally:
        live.stop()
        cleanup()


# --- bodies and paths ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bounded_server(django_db_setup, django_db_blocker, fake_upstream_server, artifacts_dir):
    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    env = {
        **_relay_env(fake_upstream_server),
        "RELAY_MAX_BODY_BYTES": "2000000",
        "RELAY_BODY_READ_TIMEOUT": "1",
    }
    with django_db_blocker.unblock():
        live = start_uvicorn(env, log_dir=artifacts_dir)
    yield live
    live.stop()


def raw_request(
    base: str, head: str, body: bytes = b"", *, read_timeout: float = 15
) -> tuple[int, dict, bytes, float]:
    """Send a raw HTTP/1.1 request; read the answer until the server closes (status, headers, body, seconds)."""
    u = urlsplit(base)
    started = time.monotonic()
    with socket.create_connection((u.hostname, u.port), timeout=read_timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                top, _, rest = data.partition(b"\r\n\r\n")
                hdrs = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in top.decode("latin-1").split("\r\n")[1:])
                }
                if (
                    "content-length" in hdrs
                    and len(rest) >= int(hdrs["content-length"])
                    and hdrs.get("connection") != "close"
                ):
                    break
    elapsed = time.monotonic() - started
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        body = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            body, rest = body + rest[:n], rest[n + 2 :]
            if n == 0:
                break
        rest = body
    return int(lines[0].split()[1]), hdrs, rest, elapsed


def test_a_3_mb_history_is_served_by_default(relay, single_key, fake_upstream):
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 31_000}
        for i in range(99)
    ] + [{"role": "user", "content": "and now?"}]
    body = {"model": "gpt-5-mini", "messages": history}
    assert len(json.dumps(body)) > 3_000_000
    fake_upstream.push(fu.text("long memory"))
    r = httpx.post(relay + ROUTES["chat"], json=body, headers=headers(single_key), timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert len(fake_upstream.requests[-1].json["messages"]) == 100


def test_a_body_over_the_limit_is_a_json_413_naming_it(bounded_server, single_key, fake_upstream):
    body = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "x" * 3_000_000}]}
    r = httpx.post(bounded_server.url + ROUTES["chat"], json=body, headers=headers(single_key), timeout=30)
    assert r.status_code == 413 and r.headers["content-type"] == "application/json"
    message = r.json()["error"]["message"]
    assert "2000000 bytes" in message and "RELAY_MAX_BODY_BYTES" in message
    assert fake_upstream.requests == []


def test_a_client_that_sends_less_than_it_announced_is_cut_off(bounded_server, single_key):
    u = urlsplit(bounded_server.url)
    head = (
        f"POST {ROUTES['chat']} HTTP/1.1\nHost: {u.hostname}\nAuthorization: Bearer {single_key}\n"
        f"Content-Type: application/json\nContent-Length: 100000\n"
    )
    status, hdrs, body, elapsed = raw_request(bounded_server.url, head, b'{"model": "gpt-5-mini", ')
    assert status == 408 and hdrs["content-type"] == "application/json", body[:200]
    assert "RELAY_BODY_READ_TIMEOUT" in json.loads(body)["error"]["message"]
    assert elapsed < 5, elapsed  # RELAY_BODY_READ_TIMEOUT is 1 s; the connection was closed (read returned)


@pytest.mark.parametrize(
    "path",
    ["//control//chat/v1/chat/completions", "//control//", "/./control/chat", "/control/chat/v1/nothing"],
)
def test_paths_under_control_are_json_404(bounded_server, path):
    u = urlsplit(bounded_server.url)
    head = f"POST {path} HTTP/1.1\nHost: {u.hostname}\nContent-Length: 2\nConnection: close\n"
    status, hdrs, body, _ = raw_request(bounded_server.url, head, b"{}")
    assert status == 404 and hdrs["content-type"] == "application/json", (path, body[:200])
    assert "No such Control API route" in json.loads(body)["error"]["message"]
