"""Where a session's state lives between requests: the ``relay_sessions`` cache.

Redis in production (``CACHE_URL`` / ``RELAY_SESSION_CACHE_URL``), a database table otherwise, so a session
started on one worker process continues on any other. Entries expire after ``RELAY_SESSION_IDLE_SECONDS``
of inactivity (an expired session behaves as unknown, control-api.md §7.4). Requests of one session are
serialised by a lock (an atomic add of a lock entry), so concurrent requests never interleave writes.
The people-facing session log is separate: it goes through Celery (``sessions.emit``).

With Redis the store talks to it natively with ``redis.asyncio`` (one pooled client per event loop): going
through Django's cache API would cost a thread, and with it a new Redis connection, per request under
ASGI. Other cache backends run through a small pool of long-lived threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import caches

from sequrity_site.aio import run_sync

from .formats._json import dumps, loads

_PREFIX = "relay:s:"
_LOCK_PREFIX = "relay:lock:"
_RESPONSE_PREFIX = "relay:resp:"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class SessionBusy(Exception):
    """Another request of the same session holds its lock for too long."""


def new_session_id() -> str:
    return str(uuid.uuid1())


def is_session_id(value: str | None) -> bool:
    if not value or len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------- backends


class _RedisStore:
    def __init__(self, url: str):
        self.url = url
        self._clients: dict[int, Any] = {}

    def _client(self):
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None:
            client = aioredis.Redis.from_url(self.url, max_connections=256)
            self._clients[id(loop)] = client
        return client

    async def get(self, key: str) -> Any:
        raw = await self._client().get(key)
        return None if raw is None else loads(raw)

    async def set(self, key: str, value: Any, ttl: int) -> None:
        await self._client().set(key, dumps(value), ex=ttl)

    async def delete(self, key: str) -> None:
        await self._client().delete(key)

    async def add(self, key: str, value: str, ttl: int) -> bool:
        return bool(await self._client().set(key, value, ex=ttl, nx=True))

    async def release(self, key: str, token: str) -> None:
        await self._client().eval(_RELEASE, 1, key, token)


class _DjangoCacheStore:
    """Any Django cache backend (the database cache by default), through the relay's long-lived threads."""

    @staticmethod
    async def _run(fn, *args):
        return await run_sync(fn, *args)

    @staticmethod
    def _cache():
        return caches["relay_sessions"]

    async def get(self, key: str) -> Any:
        return await self._run(lambda: self._cache().get(key))

    async def set(self, key: str, value: Any, ttl: int) -> None:
        await self._run(lambda: self._cache().set(key, value, timeout=ttl))

    async def delete(self, key: str) -> None:
        await self._run(lambda: self._cache().delete(key))

    async def add(self, key: str, value: str, ttl: int) -> bool:
        return await self._run(lambda: self._cache().add(key, value, timeout=ttl))

    async def release(self, key: str, token: str) -> None:
        def _release():
            cache = self._cache()
            if cache.get(key) == token:
                cache.delete(key)

        await self._run(_release)


_store: _RedisStore | _DjangoCacheStore | None = None


def _backend():
    global _store
    if _store is None:
        conf = settings.CACHES["relay_sessions"]
        if conf["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
            location = conf["LOCATION"]
            _store = _RedisStore(location[0] if isinstance(location, (list, tuple)) else location)
        else:
            _store = _DjangoCacheStore()
    return _store


# ------------------------------------------------------------------------------------------- public API


async def aload(session_id: str) -> dict | None:
    return await _backend().get(_PREFIX + session_id)


async def asave(session_id: str, state: dict) -> None:
    await _backend().set(_PREFIX + session_id, state, settings.RELAY_SESSION_IDLE_SECONDS)


async def adelete(session_id: str) -> None:
    await _backend().delete(_PREFIX + session_id)


@contextlib.asynccontextmanager
async def alocked(session_id: str, wait_seconds: float = 30.0, hold_seconds: int = 600):
    """Hold the session's lock; waits up to ``wait_seconds`` for another request of it to finish."""
    backend = _backend()
    key = _LOCK_PREFIX + session_id
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    delay = 0.005
    while not await backend.add(key, token, hold_seconds):
        if time.monotonic() > deadline:
            raise SessionBusy(session_id)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    try:
        yield
    finally:
        await backend.release(key, token)


async def aremember_response(response_id: str, session_id: str) -> None:
    """Responses API: map a response id we returned to its session (``previous_response_id``, §10.3)."""
    await _backend().set(_RESPONSE_PREFIX + response_id, session_id, settings.RELAY_SESSION_IDLE_SECONDS)


async def alookup_response(response_id: str) -> str | None:
    return await _backend().get(_RESPONSE_PREFIX + response_id)
