"""Every streamed request that reached the provider is metered exactly once (issue #12, part 2).

Through the live relay (uvicorn) and the fake upstream, with a raw HTTP/1.1 client that does the strictest
thing a client can do: it reads the stream up to its end marker (``data: [DONE]``, ``message_stop``,
``response.completed``) and drops the connection at once, never reading the end of the chunked body. Others
cut the stream at a random point. Each request must leave exactly one usage row, with the tokens the fake
upstream reported (so far, for a stream cut before the upstream reported its usage: then the row says
``cancelled``).
"""

from __future__ import annotations

import json
import random
import socket
import time
from urllib.parse import urlsplit

import pytest

from sessions.models import UsageEvent
from tests import fake_upstream as fu

pytestmark = pytest.mark.live

ROUTES = {
    "chat": ("/control/chat/v1/chat/completions", b"data: [DONE]\n\n"),
    "messages": ("/control/chat/anthropic/v1/messages", b"event: message_stop\n"),
    "responses": ("/control/chat/v1/responses", b"event: response.completed\n"),
}


def body_for(api: str, text: str = "hi") -> dict:
    if api == "chat":
        return {
            "model": "gpt-5-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}],
        }
    if api == "messages":
        return {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": text}],
        }
    return {"model": "gpt-5-mini", "stream": True, "input": text}


class RawStream:
    """A bare HTTP/1.1 client on a socket: no buffering library between the test and the bytes."""

    def __init__(self, base: str, path: str, key: str, body: dict) -> None:
        u = urlsplit(base)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=10)
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {key}\r\n"
            f"X-Api-Key: sk-test\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + payload)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        header_block, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = header_block.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the relay closed the connection")
        self.buf += data

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._recv()
        return self.buf

    def read_events(self, n: int) -> bytes:
        """Read until ``n`` SSE events (blank-line separated) have arrived (chunk framing lines included)."""
        while self.buf.count(b"\n\n") < n:
            self._recv()
        return self.buf

    def drop(self) -> None:
        """Close at once; no further read (the end of the chunked body is never consumed)."""
        self.sock.close()


def usage_rows(sid: str):
    return list(UsageEvent.objects.filter(session_id=sid))


def wait_rows(sids: list[str], timeout: float = 30.0) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    while True:
        rows = {sid: usage_rows(sid) for sid in sids}
        if all(rows.values()) or time.monotonic() > deadline:
            time.sleep(0.3)  # a duplicate would arrive with the same flush or the next one
            return {sid: usage_rows(sid) for sid in sids}
        time.sleep(0.1)


@pytest.mark.parametrize("api,count", [("chat", 50), ("messages", 10), ("responses", 10)])
def test_streams_closed_at_the_end_marker_are_metered(relay, single_key, fake_upstream, api, count):
    path, marker = ROUTES[api]
    expected: dict[str, tuple[int, int]] = {}
    for i in range(count):
        usage = (100 + i, 10 + i)
        fake_upstream.push(fu.text(f"answer number {i} in words", usage=usage))
        s = RawStream(relay, path, single_key, body_for(api, f"q{i}"))
        assert s.status == 200
        s.read_until(marker)
        s.drop()
        expected[s.headers["x-session-id"]] = usage
    rows = wait_rows(list(expected))
    for sid, usage in expected.items():
        assert len(rows[sid]) == 1, (sid, rows[sid])
        row = rows[sid][0]
        assert (row.prompt_tokens, row.completion_tokens) == usage
        assert row.status_code == 200 and row.error_kind == "" and row.streamed


def _events_of(api: str) -> list[tuple[str | None, str]]:
    body = body_for(api) if api != "chat" else {**body_for(api), "stream_options": {"include_usage": True}}
    builder = {"chat": fu.chat_stream, "messages": fu.messages_stream, "responses": fu.responses_stream}[api]
    return builder(fu.text("one two three four five six seven eight nine ten"), body, "m")


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
def test_streams_cut_at_random_points_are_metered_once(relay, single_key, fake_upstream, api):
    """20 streams (chat; 8 for the others) cut after a random number of events: one row each, with what
    the upstream had reported when the relay stopped reading it, marked cancelled when cut before the end."""
    rng = random.Random(1234)
    path, marker = ROUTES[api]
    n_events = len(_events_of(api))
    results = []
    for i in range(20 if api == "chat" else 8):
        usage = (200 + i, 20 + i)
        # Slow upstream: a cut lands while the relay waits for the next upstream event.
        fake_upstream.push(
            fu.text("one two three four five six seven eight nine ten", usage=usage, chunk_delay=0.03)
        )
        s = RawStream(relay, path, single_key, body_for(api, f"cut{i}"))
        assert s.status == 200
        cut = rng.randint(1, n_events - 1)
        seen = s.read_events(cut)
        s.drop()
        results.append((s.headers["x-session-id"], usage, cut, seen))
    rows = wait_rows([sid for sid, *_ in results])
    assert (
        sum(rows[sid][0].error_kind == "cancelled" for sid, *_ in results if rows[sid]) >= len(results) // 2
    )
    for sid, usage, cut, seen in results:
        assert len(rows[sid]) == 1, (sid, cut, rows[sid])
        row = rows[sid][0]
        got = (row.prompt_tokens, row.completion_tokens)
        finished = marker in seen
        if finished:  # the client saw the end: the request completed and was metered in full
            assert got == usage and row.error_kind == ""
            continue
        # Cut mid-way: what the upstream had reported when the relay noticed the disconnect.
        if api == "messages":  # message_start reports the input tokens at once, message_delta the output
            assert got in ((usage[0], 1), usage), (cut, got)
        else:  # chat and responses report usage only at the very end
            assert got in ((0, 0), usage), (cut, got)
        if got != usage:
            assert row.error_kind == "cancelled" and row.status_code == 499, (cut, row.error_kind)


def test_usage_buffered_when_the_server_stops_is_not_lost(
    relay_server, fake_upstream, single_key, artifacts_dir
):
    """A server told to stop while it answers (a deploy, a restart) finishes the request and exits at once,
    with the request's usage event still in its in-process buffer (the flusher publishes every 50 ms): it is
    spooled at exit and published by the next server, once."""
    import signal

    import httpx

    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    env = {
        **_relay_env(fake_upstream),
        "LOG_SPOOL_DIR": str(artifacts_dir / f"spool-restart-{time.time_ns()}"),
    }
    headers = {"Authorization": f"Bearer {single_key}", "X-Api-Key": "k"}
    sids = []
    for _ in range(3):
        server = start_uvicorn(env, log_dir=artifacts_dir)
        try:
            fake_upstream.push(fu.text("bye", usage=(31, 4), delay=0.3))
            body = json.dumps({**body_for("chat"), "stream": False}).encode()
            u = urlsplit(server.url)
            sock = socket.create_connection((u.hostname, u.port), timeout=10)
            sock.sendall(
                (
                    f"POST {ROUTES['chat'][0]} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {single_key}\r\n"
                    f"X-Api-Key: k\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            time.sleep(0.1)
            server.proc.send_signal(signal.SIGTERM)  # while the upstream is still thinking
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            sock.close()
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
            assert " 200 " in head.split("\r\n")[0], head
            sids.append(
                next(
                    line.split(":", 1)[1].strip()
                    for line in head.split("\r\n")
                    if line.startswith("x-session-id:")
                )
            )
            server.proc.wait(timeout=10)
        finally:
            server.stop()
    server = start_uvicorn(env, log_dir=artifacts_dir)
    try:
        httpx.post(
            f"{server.url}{ROUTES['chat'][0]}",
            json={**body_for("chat"), "stream": False},
            headers=headers,
            timeout=10,
        )
        rows = wait_rows(sids)
    finally:
        server.stop()
    for sid in sids:
        assert len(rows[sid]) == 1, rows
        assert (rows[sid][0].prompt_tokens, rows[sid][0].completion_tokens) == (31, 4)


def test_openai_and_anthropic_sdk_streams_are_metered(relay, single_key, fake_upstream):
    """The SDKs as agents use them: read to the end, or stop early and close the stream."""
    import anthropic
    import openai

    expected: dict[str, tuple[tuple[int, int], bool]] = {}  # sid -> (usage, read to the end)
    oai = openai.OpenAI(
        api_key=single_key,
        base_url=f"{relay}/control/chat/openrouter/v1",
        default_headers={"X-Api-Key": "k"},
        max_retries=0,
    )
    for i in range(6):
        usage = (300 + i, 30 + i)
        fake_upstream.push(
            fu.text("alpha beta gamma delta epsilon", usage=usage, chunk_delay=0.002 if i % 2 == 0 else 0.05)
        )
        with oai.chat.completions.with_streaming_response.create(
            model="openai/gpt-5-mini",
            messages=[{"role": "user", "content": f"o{i}"}],
            stream=True,
            stream_options={"include_usage": True},
        ) as resp:
            sid = resp.headers["x-session-id"]
            stream = resp.parse()
            if i % 2 == 0:
                chunks = list(stream)
                assert chunks[-1].usage.prompt_tokens == usage[0]
            else:
                next(iter(stream))
                stream.close()  # an agent that stopped reading
        expected[sid] = (usage, i % 2 == 0)

    ant = anthropic.Anthropic(
        api_key="k",
        base_url=f"{relay}/control/chat/anthropic",
        max_retries=0,
        default_headers={"Authorization": f"Bearer {single_key}", "X-Api-Key": "k"},
    )
    for i in range(4):
        usage = (400 + i, 40 + i)
        fake_upstream.push(
            fu.text("alpha beta gamma delta epsilon", usage=usage, chunk_delay=0.002 if i % 2 == 0 else 0.05)
        )
        with ant.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": f"a{i}"}]
        ) as stream:
            sid = stream.response.headers["x-session-id"]
            if i % 2 == 0:
                final = stream.get_final_message()
                assert final.usage.input_tokens == usage[0] and final.usage.output_tokens == usage[1]
            else:
                next(iter(stream.text_stream))
        expected[sid] = (usage, i % 2 == 0)

    rows = wait_rows(list(expected))
    for sid, (usage, complete) in expected.items():
        assert len(rows[sid]) == 1, (sid, rows[sid])
        row = rows[sid][0]
        if complete:
            assert (row.prompt_tokens, row.completion_tokens) == usage and row.error_kind == ""
        else:  # stopped early: what was reported by then (Anthropic: the input tokens), marked cancelled
            assert row.error_kind == "cancelled" and row.status_code == 499
            assert row.prompt_tokens in (0, usage[0])
