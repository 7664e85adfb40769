"""Bounded request bodies and JSON 404s under /control (issue #18 item 8), in-process through the ASGI app:
a body over ``RELAY_MAX_BODY_BYTES`` (announced or sent) is a JSON 413 naming the limit, a body not received
within ``RELAY_BODY_READ_TIMEOUT`` a JSON 408, both with ``Connection: close``; a path that normalises to
/control answers the API's JSON 404. The live-server forms are in test_faults_e2e.py."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sequrity_site import asgi

BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}


def scope(path: str, headers: dict[str, str] | None = None, method: str = "POST") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        + [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }


def call(
    scope_: dict, chunks: list[bytes], *, stall: bool = False, timeout: float = 10
) -> tuple[int, dict, bytes]:
    """Run the ASGI app; the client sends ``chunks`` (then stalls forever if ``stall``)."""
    sent: list[dict] = []

    async def go():
        queue = list(chunks)

        async def receive():
            if queue:
                chunk = queue.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(queue) or stall}
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(asgi.application(scope_, receive, send), timeout)

    asyncio.run(go())
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def small_limit(settings):
    settings.RELAY_MAX_BODY_BYTES = 2_000_000
    settings.RELAY_BODY_READ_TIMEOUT = 0.5
    return settings


def test_announced_body_over_the_limit_is_413_naming_it(small_limit):
    body = b"x" * 3_000_000
    status, headers, out = call(
        scope("/control/chat/v1/chat/completions", {"content-length": str(len(body))}),
        [body[:1_000_000], body[1_000_000:]],
    )
    assert status == 413 and headers["content-type"] == "application/json"
    assert headers["connection"] == "close" and headers["x-request-id"]
    message = json.loads(out)["error"]["message"]
    assert "2000000 bytes" in message and "RELAY_MAX_BODY_BYTES" in message


def test_unannounced_body_over_the_limit_is_413_in_the_messages_shape(small_limit):
    chunks = [b"y" * 500_000] * 6  # chunked transfer: no Content-Length
    status, headers, out = call(scope("/control/chat/anthropic/v1/messages"), chunks)
    assert status == 413
    doc = json.loads(out)
    assert doc["type"] == "error" and "RELAY_MAX_BODY_BYTES" in doc["error"]["message"]


def test_a_body_that_never_completes_is_408_within_the_timeout(small_limit):
    started = time.monotonic()
    status, headers, out = call(
        scope("/control/chat/v1/chat/completions", {"content-length": "1000"}), [b'{"model": '], stall=True
    )
    assert status == 408 and time.monotonic() - started < 3
    assert headers["connection"] == "close"
    assert "RELAY_BODY_READ_TIMEOUT" in json.loads(out)["error"]["message"]


def test_a_body_within_the_limit_reaches_the_view(small_limit):
    status, headers, out = call(
        scope("/control/v1/validate-headers", {"content-type": "application/json"}),
        [b'{"features": ', b'"{}"}'],
    )
    assert status == 200, out


@pytest.mark.parametrize(
    "path",
    [
        "//control//chat/v1/chat/completions",
        "/control//chat/v1/chat/completions",
        "/./control/chat",
        "/control/../control/x",
        "//control/a\nb",
        "/control/a\nb",
        "///control///",
        "/x/../control/nope",
    ],
)
def test_paths_that_normalise_under_control_are_json_404(path):
    status, headers, out = call(scope(path), [b""])
    assert status == 404 and headers["content-type"].startswith("application/json"), (path, out[:200])
    assert "No such Control API route" in json.loads(out)["error"]["message"]


def test_the_dashboard_404_stays_html():
    status, headers, _ = call(scope("/nope/control", method="GET"), [b""])
    assert status == 404 and "html" in headers["content-type"]
