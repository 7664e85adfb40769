"""The one fake of the test suite: an HTTP server speaking the LLM providers' wire formats.

A real aiohttp.web server on 127.0.0.1 (random free port) in a background thread with its own event loop.
It serves any path ending in ``/chat/completions`` (OpenAI, OpenRouter ``/api/v1/…``, Azure), ``/responses``
(OpenAI Responses) and ``/messages`` (Anthropic), JSON and SSE (when the body says ``"stream": true``),
streaming chunk by chunk with small awaits in between.

Scripting, per test::

    fake.push(text("Paris"), tool_calls(("get_weather", {"city": "London"})), error(429, retry_after="7"))
    fake.reply = lambda req: structured({"ok": True}) if "planner" in req.text else None   # None: default
    ... run the code under test ...
    fake.requests[-1].json["model"], fake.requests[-1].headers["authorization"], fake.requests[-1].provider

Queued replies are used first (FIFO), then ``fake.reply(request)``, then the default echo completion
("Echo: <last user text>"). Reply kinds: ``text``, ``tool_calls``, ``structured`` (JSON answer; for Anthropic a
``tool_use`` of the forced tool), ``error`` (status, message, Retry-After), ``drop`` (connection closed without
an answer), ``raw`` (any body/status/content type) and, on any reply, ``delay=`` (before the answer: provokes timeouts), ``chunk_delay=``,
``drop_after=`` (stream: close the connection after N events) and ``forever=True`` (stream that never ends,
for cancellation tests; ``fake.aborted_streams`` counts streams whose client went away).

CLI for benchmarks: ``python tests/fake_upstream.py --port 9100`` serves a fixed zero-cost answer per API
(no recording, no echo), with uvloop when available.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sys
import threading
import time
import types
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "FakeUpstream",
    "Reply",
    "RecordedRequest",
    "text",
    "tool_calls",
    "structured",
    "error",
    "drop",
    "raw",
    "shared_fake_upstream",
]


# ============================================================================================== replies


@dataclass
class Reply:
    kind: str = "text"  # text | tool_calls | structured | error | drop | raw
    text: str = ""
    calls: list[tuple[str, dict]] = field(default_factory=list)
    value: Any = None
    status: int = 200
    message: str = ""
    retry_after: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.002
    drop_after: int | None = None
    forever: bool = False
    usage: tuple[int, int] = (12, 7)
    model: str | None = None
    finish: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"


def text(content: str, **kw: Any) -> Reply:
    return Reply("text", text=content, **kw)


def tool_calls(*calls: tuple[str, dict], text: str = "", **kw: Any) -> Reply:
    return Reply("tool_calls", calls=list(calls), text=text, **kw)


def structured(value: Any, **kw: Any) -> Reply:
    return Reply("structured", value=value, **kw)


def error(
    status: int, message: str = "fake upstream error", *, retry_after: str | None = None, **kw: Any
) -> Reply:
    return Reply("error", status=status, message=message, retry_after=retry_after, **kw)


def drop(**kw: Any) -> Reply:
    return Reply("drop", **kw)


def raw(body: bytes | str, *, status: int = 200, content_type: str = "text/plain", **kw: Any) -> Reply:
    """An arbitrary answer (bytes as given), e.g. a non-JSON body or JSON where a stream was asked for."""
    return Reply(
        "raw",
        body=body.encode() if isinstance(body, str) else body,
        status=status,
        content_type=content_type,
        **kw,
    )


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    json: Any
    raw: bytes
    api: str  # chat | responses | messages | unknown
    provider: str  # openai | openrouter | anthropic | sequrity_azure (guessed from the path)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    @property
    def api_key(self) -> str | None:
        h = self.headers
        if "x-api-key" in h:
            return h["x-api-key"]
        if "api-key" in h:
            return h["api-key"]
        auth = h.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


def _api_of(path: str) -> str:
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/messages"):
        return "messages"
    return "unknown"


def _provider_of(path: str) -> str:
    if path.startswith("/api/"):
        return "openrouter"
    if path.startswith("/azure"):
        return "sequrity_azure"
    if path.endswith("/messages"):
        return "anthropic"
    return "openai"


def _last_user_text(api: str, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if api == "responses":
        inp = body.get("input")
        if isinstance(inp, str):
            return inp
        items = inp if isinstance(inp, list) else []
    else:
        items = body.get("messages") if isinstance(body.get("messages"), list) else []
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") in ("text", "input_text")
                )
    return ""


def _hex() -> str:
    return uuid.uuid4().hex


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _pieces(s: str, n: int = 3) -> list[str]:
    """Split text into a few deltas (word boundaries), at least one."""
    if not s:
        return [""]
    words = s.split(" ")
    size = max(1, -(-len(words) // n))
    parts = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


# ======================================================================================= answer builders


def _calls_with_ids(reply: Reply, prefix: str) -> list[tuple[str, str, dict]]:
    return [(f"{prefix}{_hex()[:24]}", name, args) for name, args in reply.calls]


def chat_json(reply: Reply, body: dict, model: str) -> dict:
    prompt, completion = reply.usage
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text or None,
        "refusal": None,
        "annotations": [],
    }
    finish = "stop"
    if reply.kind == "tool_calls":
        msg["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": n, "arguments": _dumps(a)}}
            for cid, n, a in _calls_with_ids(reply, "call_")
        ]
        finish = "tool_calls"
    elif reply.kind == "structured":
        msg["content"] = _dumps(reply.value)
    else:
        msg["content"] = reply.text
    return {
        "id": f"chatcmpl-{_hex()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": reply.finish or finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "system_fingerprint": "fp_fake",
    }


def chat_stream(reply: Reply, body: dict, model: str) -> list[tuple[str | None, str]]:
    cid, created = f"chatcmpl-{_hex()}", int(time.time())
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish: str | None = None) -> tuple[None, str]:
        obj: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return None, _dumps(obj)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    finish = "stop"
    content = reply.text if reply.kind != "structured" else _dumps(reply.value)
    if content:
        events += [chunk({"content": p}) for p in _pieces(content)]
    if reply.kind == "tool_calls":
        finish = "tool_calls"
        for i, (call_id, name, args) in enumerate(_calls_with_ids(reply, "call_")):
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for p in _split_json(_dumps(args)):
                events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}))
    events.append(chunk({}, reply.finish or finish))
    if include_usage:
        prompt, completion = reply.usage
        events.append(
            (
                None,
                _dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        },
                    }
                ),
            )
        )
    events.append((None, "[DONE]"))
    return events


def _split_json(s: str) -> list[str]:
    if len(s) < 8:
        return [s]
    k = len(s) // 3
    return [s[:k], s[k : 2 * k], s[2 * k :]]


def _forced_tool(body: dict) -> str | None:
    tc = body.get("tool_choice")
    if isinstance(tc, dict) and tc.get("type") == "tool":
        return tc.get("name")
    return None


def messages_json(reply: Reply, body: dict, model: str) -> dict:
    prompt, completion = reply.usage
    content: list[dict] = []
    stop = "end_turn"
    forced = _forced_tool(body)
    if reply.kind == "structured" and forced:
        content.append(
            {"type": "tool_use", "id": f"toolu_{_hex()[:24]}", "name": forced, "input": reply.value}
        )
        stop = "tool_use"
    elif reply.kind == "structured":
        content.append({"type": "text", "text": _dumps(reply.value)})
    else:
        if reply.text or reply.kind == "text":
            content.append({"type": "text", "text": reply.text})
        if reply.kind == "tool_calls":
            content += [
                {"type": "tool_use", "id": cid, "name": n, "input": a}
                for cid, n, a in _calls_with_ids(reply, "toolu_")
            ]
            stop = "tool_use"
    return {
        "id": f"msg_{_hex()[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.finish or stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt,
            "output_tokens": completion,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def messages_stream(reply: Reply, body: dict, model: str) -> list[tuple[str | None, str]]:
    final = messages_json(reply, body, model)
    prompt, completion = reply.usage

    def ev(obj: dict) -> tuple[str, str]:
        return obj["type"], _dumps(obj)

    start_msg = {
        **final,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": prompt, "output_tokens": 1},
    }
    events = [ev({"type": "message_start", "message": start_msg}), ev({"type": "ping"})]
    for i, block in enumerate(final["content"]):
        if block["type"] == "text":
            events.append(
                ev({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
            )
            events += [
                ev({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": p}})
                for p in _pieces(block["text"])
            ]
        else:
            events.append(
                ev(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {
                            "type": "tool_use",
                            "id": block["id"],
                            "name": block["name"],
                            "input": {},
                        },
                    }
                )
            )
            events += [
                ev(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": p},
                    }
                )
                for p in _split_json(_dumps(block["input"]))
            ]
        events.append(ev({"type": "content_block_stop", "index": i}))
    events.append(
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": completion},
            }
        )
    )
    events.append(ev({"type": "message_stop"}))
    return events


def responses_json(reply: Reply, body: dict, model: str) -> dict:
    prompt, completion = reply.usage
    output: list[dict] = []
    content = reply.text if reply.kind != "structured" else _dumps(reply.value)
    if content or reply.kind in ("text", "structured"):
        output.append(
            {
                "type": "message",
                "id": f"msg_{_hex()}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}],
            }
        )
    if reply.kind == "tool_calls":
        output += [
            {
                "type": "function_call",
                "id": f"fc_{_hex()}",
                "call_id": cid,
                "name": n,
                "arguments": _dumps(a),
                "status": "completed",
            }
            for cid, n, a in _calls_with_ids(reply, "call_")
        ]
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    return {
        "id": f"resp_{_hex()}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools,
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }


def responses_stream(reply: Reply, body: dict, model: str) -> list[tuple[str | None, str]]:
    final = responses_json(reply, body, model)
    seq = itertools.count()
    events: list[tuple[str | None, str]] = []

    def ev(etype: str, **fields: Any) -> None:
        events.append((etype, _dumps({"type": etype, "sequence_number": next(seq), **fields})))

    start = {**final, "status": "in_progress", "output": [], "usage": None}
    ev("response.created", response=start)
    ev("response.in_progress", response=start)
    for idx, item in enumerate(final["output"]):
        if item["type"] == "message":
            ev(
                "response.output_item.added",
                output_index=idx,
                item={**item, "status": "in_progress", "content": []},
            )
            part = item["content"][0]
            ev(
                "response.content_part.added",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            for p in _pieces(part["text"]):
                ev(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=idx,
                    content_index=0,
                    delta=p,
                    logprobs=[],
                )
            ev(
                "response.output_text.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            ev("response.content_part.done", item_id=item["id"], output_index=idx, content_index=0, part=part)
        else:
            ev(
                "response.output_item.added",
                output_index=idx,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for p in _split_json(item["arguments"]):
                ev("response.function_call_arguments.delta", item_id=item["id"], output_index=idx, delta=p)
            ev(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=idx,
                name=item["name"],
                arguments=item["arguments"],
            )
        ev("response.output_item.done", output_index=idx, item=item)
    ev("response.completed", response=final)
    return events


def error_json(api: str, reply: Reply) -> dict:
    if api == "messages":
        etype = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": reply.message}}
    return {
        "error": {
            "message": reply.message,
            "type": "invalid_request_error" if reply.status < 500 else "server_error",
            "param": None,
            "code": None,
        }
    }


_JSON_BUILDERS = {"chat": chat_json, "messages": messages_json, "responses": responses_json}
_STREAM_BUILDERS = {"chat": chat_stream, "messages": messages_stream, "responses": responses_stream}


# ================================================================================================ server


class FakeUpstream:
    """The fake provider server. ``start()`` it once (``shared_fake_upstream()`` does), ``reset()`` per test."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, fast: bool = False) -> None:
        self.host = host
        self.port = port
        self.fast = fast
        self.requests: list[RecordedRequest] = []
        self.reply: Callable[[RecordedRequest], Reply | None] | None = None
        self.aborted_streams = 0
        self.completed_streams = 0
        self._epoch = 0  # bumped by reset(): a stream counts only for the test that started it
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._fast_bodies: dict[str, bytes] = {}

    # -- scripting ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def push(self, *replies: Reply) -> FakeUpstream:
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.reply = None
            self.aborted_streams = 0
            self.completed_streams = 0
            self._epoch += 1

    @property
    def pending_replies(self) -> int:
        return len(self._queue)

    def base_urls(self) -> dict[str, str]:
        """Provider base URLs pointing here, under the Django setting names."""
        return {
            "RELAY_OPENAI_BASE_URL": f"{self.url}/v1",
            "RELAY_OPENROUTER_BASE_URL": f"{self.url}/api/v1",
            "RELAY_ANTHROPIC_BASE_URL": self.url,
            "RELAY_SEQURITY_AZURE_BASE_URL": f"{self.url}/azure/openai/v1",
        }

    def settings(self, timeout: float = 30.0) -> Any:
        """``relay.providers.UpstreamSettings`` pointing at this server."""
        from relay.providers import UpstreamSettings

        return UpstreamSettings.from_mapping({**self.base_urls(), "RELAY_UPSTREAM_TIMEOUT": timeout})

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    def _next_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.reply is not None:
            r = self.reply(req)
            if r is not None:
                return r
        return text(f"Echo: {_last_user_text(req.api, req.json)}")

    # -- lifecycle ---------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._fast_handle if self.fast else self._handle)
        return app

    def start(self) -> FakeUpstream:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
                loop.run_until_complete(runner.setup())
                loop.run_until_complete(web.SockSite(runner, sock).start())
                self._runner = runner
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        started.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- handlers ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = request.path
        api = _api_of(path)
        rec = RecordedRequest(
            request.method,
            path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            raw,
            api,
            _provider_of(path),
        )
        self.requests.append(rec)
        if api == "unknown" or request.method != "POST":
            return web.json_response({"error": {"message": f"no route {request.method} {path}"}}, status=404)
        reply = self._next_reply(rec)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if reply.kind == "raw":
            return web.Response(
                body=reply.body, status=reply.status, content_type=reply.content_type, headers=reply.headers
            )
        if reply.kind == "error":
            headers = dict(reply.headers)
            if reply.retry_after is not None:
                headers["Retry-After"] = reply.retry_after
            return web.json_response(error_json(api, reply), status=reply.status, headers=headers)
        model = reply.model or (body.get("model") if isinstance(body, dict) else None) or "fake-model"
        if not isinstance(body, dict):
            body = {}
        if body.get("stream"):
            return await self._stream(request, _STREAM_BUILDERS[api](reply, body, model), reply)
        return web.json_response(_JSON_BUILDERS[api](reply, body, model), headers=reply.headers)

    async def _stream(
        self, request: web.Request, events: list[tuple[str | None, str]], reply: Reply
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **reply.headers}
        )
        await resp.prepare(request)
        # A stream left behind by an earlier test (say one whose client timed out while this server slept
        # between two events) notices that its client is gone only at its next write, maybe seconds later and
        # in another test: it must not count there (that made "aborted_streams == 1" checks flaky).
        epoch = self._epoch
        try:
            if reply.forever:
                events = events[:1]
            for i, (etype, data) in enumerate(events):
                if reply.drop_after is not None and i >= reply.drop_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                line = (f"event: {etype}\n" if etype else "") + f"data: {data}\n\n"
                await resp.write(line.encode())
                await asyncio.sleep(reply.chunk_delay)
            while reply.forever:
                await resp.write(b": keep-alive\n\n")
                await asyncio.sleep(reply.chunk_delay or 0.01)
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError("client went away")
            await resp.write_eof()
            if epoch == self._epoch:
                self.completed_streams += 1
        except (ConnectionResetError, RuntimeError):  # the client went away (relay cancelled the request)
            if epoch == self._epoch:
                self.aborted_streams += 1
        except asyncio.CancelledError:
            if epoch == self._epoch:
                self.aborted_streams += 1
            raise
        return resp

    async def _fast_handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        api = _api_of(request.path)
        if api == "unknown":
            return web.Response(status=404)
        if b'"stream":true' in raw.replace(b" ", b""):
            payload = self._fast_bodies.get(api + "/stream")
            if payload is None:
                body = {"stream": True, "stream_options": {"include_usage": True}}
                events = _STREAM_BUILDERS[api](
                    Reply("text", text="Hello from the fake upstream."), body, "fake-model"
                )
                payload = "".join(
                    (f"event: {e}\n" if e else "") + f"data: {d}\n\n" for e, d in events
                ).encode()
                self._fast_bodies[api + "/stream"] = payload
            return web.Response(body=payload, content_type="text/event-stream")
        payload = self._fast_bodies.get(api)
        if payload is None:
            payload = json.dumps(
                _JSON_BUILDERS[api](Reply("text", text="Hello from the fake upstream."), {}, "fake-model")
            ).encode()
            self._fast_bodies[api] = payload
        return web.Response(body=payload, content_type="application/json")


def shared_fake_upstream() -> FakeUpstream:
    """The process-wide fake server (started on first use), shared however this module was imported."""
    holder = sys.modules.setdefault("_sequrity_fake_upstream_singleton", types.ModuleType("_fake_upstream"))
    server = getattr(holder, "server", None)
    if server is None:
        server = FakeUpstream().start()
        holder.server = server  # type: ignore[attr-defined]
    return server


# =================================================================================================== CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fake LLM provider (OpenAI/OpenRouter/Anthropic wire formats)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--echo", action="store_true", help="scriptable echo server instead of the fixed answer"
    )
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    fake = FakeUpstream(args.host, args.port, fast=not args.echo)
    print(
        f"fake upstream on {fake.url} (chat: /v1/chat/completions, /api/v1/chat/completions; "
        f"responses: /v1/responses; messages: /v1/messages)",
        flush=True,
    )
    web.run_app(fake._app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
