"""Pooled upstream HTTP clients: ``post_json`` and SSE streaming with cancellation.

One ``httpx.AsyncClient`` per provider and per running event loop, with the aiohttp transport
(``httpx-aiohttp``; plain httpx pools collapse under concurrency). Clients are
created lazily on first use inside a loop, so uvicorn workers (one loop each) and tests (many loops) are both
safe; ``aclose_clients()`` closes the current loop's clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, cast

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

from ..formats._json import dumps, loads
from ..formats.sse import SSEEvent, SSEParser
from .errors import UpstreamError, from_response, label
from .settings import UpstreamSettings, get_settings

ANTHROPIC_VERSION = "2023-06-01"
USER_AGENT = "sequrity-control-relay/0.1"
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=15.0)
_TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError)

# A bare OpenAI model id sent to OpenRouter gets the vendor prefix (control-api §18 item 19).
_OPENAI_PREFIXES = (
    "gpt-",
    "gpt4",
    "o1",
    "o3",
    "o4",
    "chatgpt-",
    "codex-",
    "computer-use-",
    "text-embedding-",
    "omni-",
)


def openrouter_model(model: Any) -> Any:
    if isinstance(model, str) and "/" not in model and model.startswith(_OPENAI_PREFIXES):
        return f"openai/{model}"
    return model


# ------------------------------------------------------------------------------------------------- pool

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
_last: tuple[weakref.ref[Any], dict[str, httpx.AsyncClient]] | None = None


def _new_client() -> httpx.AsyncClient:
    return HttpxAiohttpClient(
        limits=LIMITS,
        timeout=get_settings().httpx_timeout,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )


def get_client(provider: str) -> httpx.AsyncClient:
    """The pooled client of ``provider`` for the running event loop (created on first use)."""
    global _last
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0]() is loop:
        clients = last[1]
    else:
        clients = _pools.setdefault(loop, {})
        _last = (weakref.ref(loop), clients)
    client = clients.get(provider)
    if client is None or client.is_closed:
        client = clients[provider] = _new_client()
    return client


async def aclose_clients() -> None:
    """Close every pooled client of the running loop (shutdown, end of a test)."""
    global _last
    loop = asyncio.get_running_loop()
    clients = _pools.pop(loop, None) or {}
    if _last is not None and _last[0]() is loop:
        _last = None
    for client in clients.values():
        with contextlib.suppress(Exception):  # closing is best effort
            await client.aclose()


def call_from_sync_code(coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``await coro_fn(*args, **kwargs)`` on a fresh event loop from synchronous code (Celery tasks,
    management commands) and close that loop's pooled clients afterwards, so no session leaks."""

    async def main() -> Any:
        try:
            return await coro_fn(*args, **kwargs)
        finally:
            await aclose_clients()

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------- helpers


def auth_headers(provider: str, api_key: str | None) -> dict[str, str]:
    if provider == "anthropic":
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers
    if not api_key:
        return {}
    if provider == "sequrity_azure":
        return {"api-key": api_key}
    return {"authorization": f"Bearer {api_key}"}


def _prepare(provider: str, body: Mapping[str, Any], stream: bool | None) -> Mapping[str, Any]:
    if provider == "openrouter":
        mapped = openrouter_model(body.get("model"))
        if mapped is not body.get("model"):
            body = {**body, "model": mapped}
    if stream is not None and body.get("stream") is not stream:
        body = {**body, "stream": stream}
    return body


def _is_timeout(exc: BaseException) -> bool:
    # httpx-aiohttp maps some aiohttp connection errors to httpx.ConnectTimeout; trust the original cause.
    cause = exc.__cause__
    if isinstance(exc, httpx.HTTPError) and isinstance(cause, BaseException):
        return isinstance(cause, TimeoutError)
    return isinstance(exc, (httpx.TimeoutException, TimeoutError))


def transport_error(provider: str, exc: BaseException, settings: UpstreamSettings) -> UpstreamError:
    name = label(provider)
    if _is_timeout(exc):
        return UpstreamError(
            504,
            f"{name} did not answer within {settings.timeout:g}s (upstream timeout)",
            None,
            "timeout",
            provider=provider,
        )
    cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc
    detail = str(cause) or type(cause).__name__
    return UpstreamError(502, f"Could not reach {name}: {detail}", None, "connection", provider=provider)


def _url(provider: str, path_kind: str, settings: UpstreamSettings) -> str:
    try:
        return settings.url(provider, path_kind)
    except ValueError as exc:
        raise UpstreamError(
            502, f"{label(provider)} is not available: {exc}", None, "config", provider=provider
        ) from None


def _headers(
    provider: str, api_key: str | None, accept: str, extra: Mapping[str, str] | None
) -> dict[str, Any]:
    headers = {"content-type": "application/json", "accept": accept, **auth_headers(provider, api_key)}
    if extra:
        headers.update(extra)
    return headers


# ---------------------------------------------------------------------------------------------- requests


async def post_json(
    provider: str,
    path_kind: str,
    body: Mapping[str, Any],
    api_key: str | None,
    *,
    settings: UpstreamSettings | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST ``body`` to the provider's ``path_kind`` endpoint (chat | messages | responses) and return its
    JSON answer. Raises :class:`UpstreamError`."""
    st = settings or get_settings()
    url = _url(provider, path_kind, st)
    payload = dumps(_prepare(provider, body, None))
    client = get_client(provider)
    try:
        resp = await client.post(
            url,
            content=payload,
            timeout=st.httpx_timeout,
            headers=_headers(provider, api_key, "application/json", headers),
        )
    except _TRANSPORT_ERRORS as exc:
        raise transport_error(provider, exc, st) from exc
    if resp.status_code >= 300:
        raise from_response(provider, resp.status_code, resp.content, resp.headers.get("retry-after"))
    try:
        data = loads(resp.content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(
            502,
            f"{label(provider)} returned an answer that is not a JSON object",
            None,
            "bad_response",
            provider=provider,
            upstream_status=resp.status_code,
        )
    return data


class UpstreamStream:
    """An open upstream SSE response: ``async for ev in stream`` yields :class:`SSEEvent` as they arrive.

    Obtained from :func:`open_stream`, which has already checked the HTTP status (so errors surface before
    the relay commits to a 200). ``aclose()`` (idempotent) closes the upstream connection, cancelling the
    request; it is called automatically at the end of the stream and on any error.
    """

    def __init__(self, provider: str, resp: httpx.Response, settings: UpstreamSettings) -> None:
        self.provider = provider
        self.response = resp
        self._settings = settings
        self._chunks = resp.aiter_bytes()
        self._parser = SSEParser()
        self._queue: deque[SSEEvent] = deque()
        self._eof = False
        self._closed = False

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> SSEEvent:
        queue = self._queue
        while not queue:
            if self._eof or self._closed:
                await self.aclose()
                raise StopAsyncIteration
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._eof = True
                queue.extend(self._parser.flush())
                continue
            except _TRANSPORT_ERRORS as exc:
                await self.aclose()
                raise transport_error(self.provider, exc, self._settings) from exc
            except BaseException:
                await self.aclose()
                raise
            queue.extend(self._parser.feed(chunk))
        return queue.popleft()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await cast(AsyncGenerator[bytes, None], self._chunks).aclose()  # httpx's is a generator
        with contextlib.suppress(Exception):
            await self.response.aclose()


async def open_stream(
    provider: str,
    path_kind: str,
    body: Mapping[str, Any],
    api_key: str | None,
    *,
    settings: UpstreamSettings | None = None,
    headers: Mapping[str, str] | None = None,
) -> UpstreamStream:
    """Start a streaming request (``stream: true`` is forced) and return once the upstream answered 2xx.

    Raises :class:`UpstreamError` for an error status (body read, provider message extracted), connection
    failures and timeouts.
    """
    st = settings or get_settings()
    url = _url(provider, path_kind, st)
    payload = dumps(_prepare(provider, body, True))
    client = get_client(provider)
    request = client.build_request(
        "POST",
        url,
        content=payload,
        timeout=st.httpx_timeout,
        headers={**_headers(provider, api_key, "text/event-stream", headers), "accept-encoding": "identity"},
    )
    try:
        resp = await client.send(request, stream=True)
    except _TRANSPORT_ERRORS as exc:
        raise transport_error(provider, exc, st) from exc
    if resp.status_code >= 300:
        try:
            content = await resp.aread()
        except _TRANSPORT_ERRORS:
            content = b""
        finally:
            await resp.aclose()
        raise from_response(provider, resp.status_code, content, resp.headers.get("retry-after"))
    ctype = resp.headers.get("content-type", "")
    if "json" in ctype:
        try:
            content = await resp.aread()
        finally:
            await resp.aclose()
        raise UpstreamError(
            502,
            f"{label(provider)} answered a streaming request without a stream",
            None,
            "bad_response",
            provider=provider,
            upstream_status=resp.status_code,
        )
    return UpstreamStream(provider, resp, st)


async def stream_events(
    provider: str,
    path_kind: str,
    body: Mapping[str, Any],
    api_key: str | None,
    *,
    settings: UpstreamSettings | None = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[SSEEvent]:
    """Yield the upstream's SSE events as they arrive (no buffering).

    The HTTP status is checked before the first event is yielded, so awaiting the first event raises
    :class:`UpstreamError` for a rejected request. Closing the generator (``aclose()``, or cancelling the task
    that iterates it — a client disconnect) closes the upstream connection and so cancels the request.
    """
    stream = await open_stream(provider, path_kind, body, api_key, settings=settings, headers=headers)
    try:
        async for ev in stream:
            yield ev
    finally:
        await stream.aclose()
