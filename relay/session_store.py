"""Where a session's state lives between requests: the ``relay_sessions`` cache.

Redis in production (``CACHE_URL`` / ``RELAY_SESSION_CACHE_URL``), a database table otherwise, so a session
started on one worker process continues on any other. Entries expire after ``RELAY_SESSION_IDLE_SECONDS``
of inactivity (an expired session behaves as unknown, control-api.md §7.4). The people-facing session log is
separate: it goes through Celery (``sessions.emit``).

**Locks.** Requests of one session are serialised by a lock: an atomic add of a lock entry holding a random
token. The entry is a lease of ``lock_seconds()`` (``RELAY_SESSION_LOCK_SECONDS``; by default the upstream
timeout + ``LOCK_MARGIN_SECONDS``, the deadline of one upstream call), renewed every third of it while its
owner is alive (a dual-LLM turn may make several upstream calls, a stream may last longer than one), for at
most ``MAX_HOLD_SECONDS``. So a lock left behind by a crashed process, or whose release failed (the store was
briefly away), lapses within one lease instead of blocking the session. Only the owner renews or releases a
lock (compare-and-delete on the token: a Lua script in Redis, a conditional ``DELETE``/``UPDATE`` on the
database cache's table), so a request whose lease lapsed never frees a lock another request took since.
A request that cannot get the lock within ``wait_seconds`` gets :class:`SessionBusy`, with the time until the
current lease ends (the relay's ``409`` carries it as ``Retry-After``).

**Failures.** Every operation raises :class:`StoreUnavailable` when the store does not answer (Redis down or
timing out, the database cache's database away), never a backend exception; the relay answers it with a JSON
503 and ``Retry-After``, before calling the upstream where it can (a new session's lock is taken first, which
is also the check that the store can keep the session). Releasing never raises: a failed release is logged
and left to the lease.

With Redis the store talks to it natively with ``redis.asyncio`` (one pooled client per event loop): going
through Django's cache API would cost a thread, and with it a new Redis connection, per request under
ASGI. The client fails fast (``REDIS_CONNECT_TIMEOUT`` / ``REDIS_SOCKET_TIMEOUT``, two quick retries on a
broken connection, so a Redis restart costs no request). Other cache backends run through a small pool of
long-lived threads.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import pickle
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import caches

from sequrity_site.aio import run_sync

from .formats._json import dumps, loads

logger = logging.getLogger(__name__)

_PREFIX = "relay:s:"
_LOCK_PREFIX = "relay:lock:"
_RESPONSE_PREFIX = "relay:resp:"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_SAVE_THEN_RELEASE = (
    "redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "if redis.call('get', KEYS[2]) == ARGV[3] then return redis.call('del', KEYS[2]) else return 0 end"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) "
    "else return 0 end"
)

LOCK_MARGIN_SECONDS = 5.0  # added to the upstream timeout: the default lease of a session lock
MAX_HOLD_SECONDS = 900.0  # a lock is renewed for at most this long (a request that never ends loses it)
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_SOCKET_TIMEOUT = 5.0
RETRY_AFTER_SECONDS = 5  # what a 503 for an unavailable store tells the client


class StoreUnavailable(Exception):
    """The session store did not answer (Redis down, the database cache's database away)."""

    def __init__(self, detail: str, *, database: bool = False):
        super().__init__(detail)
        self.public_message = (
            "The relay's database is unavailable; retry later"
            if database
            else "The relay's session store is unavailable; retry later"
        )


class SessionBusy(Exception):
    """Another request of the same session holds its lock for too long."""

    def __init__(self, session_id: str, retry_after: int = 1):
        super().__init__(session_id)
        self.retry_after = retry_after


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


def lock_seconds() -> int:
    """The lease of a session lock: ``RELAY_SESSION_LOCK_SECONDS``, else the upstream timeout + margin."""
    explicit = float(getattr(settings, "RELAY_SESSION_LOCK_SECONDS", 0) or 0)
    lease = explicit if explicit > 0 else float(settings.RELAY_UPSTREAM_TIMEOUT) + LOCK_MARGIN_SECONDS
    return max(1, math.ceil(lease))


_ERRORS: tuple[type[BaseException], ...] | None = None


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store that went away raises (the backends' own errors, socket errors, timeouts)."""
    global _ERRORS
    if _ERRORS is None:
        from django.db import DatabaseError

        errors: list[type[BaseException]] = [DatabaseError, OSError, TimeoutError, asyncio.TimeoutError]
        try:
            from redis.exceptions import RedisError

            errors.append(RedisError)
        except ImportError:  # pragma: no cover - redis is a dependency
            pass
        _ERRORS = tuple(errors)
    return _ERRORS


async def _guarded(awaitable):
    try:
        return await awaitable
    except _store_errors() as exc:
        from django.db import DatabaseError

        raise StoreUnavailable(
            f"{type(exc).__name__}: {str(exc)[:200]}", database=isinstance(exc, DatabaseError)
        ) from exc


# ------------------------------------------------------------------------------------------- backends


class _RedisStore:
    def __init__(self, url: str):
        self.url = url
        self._clients: dict[int, Any] = {}

    def _client(self):
        client = self._clients.get(id(asyncio.get_running_loop()))
        return client if client is not None else self._new_client()

    def _new_client(self):
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        client = aioredis.Redis.from_url(
            self.url,
            max_connections=256,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self._clients[id(asyncio.get_running_loop())] = client
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

    async def release(self, key: str, token: str) -> bool:
        return bool(await self._client().eval(_RELEASE, 1, key, token))

    async def renew(self, key: str, token: str, ttl: int) -> bool:
        return bool(await self._client().eval(_RENEW, 1, key, token, ttl))

    async def set_then_release(self, key: str, value: Any, ttl: int, lock_key: str, token: str) -> bool:
        """``set``, then ``release``, in one round trip (one script: the lock is freed after the save)."""
        return bool(await self._client().eval(_SAVE_THEN_RELEASE, 2, key, lock_key, dumps(value), ttl, token))

    async def ttl(self, key: str) -> float | None:
        ms = await self._client().pttl(key)
        return ms / 1000 if ms is not None and ms >= 0 else None


class _DjangoCacheStore:
    """Any Django cache backend (the database cache by default), through the relay's long-lived threads.

    Lock release and renewal are conditional on the token: one ``DELETE``/``UPDATE ... WHERE value = token``
    on the database cache's table (atomic); other backends (tests: local memory) compare, then act."""

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

    async def release(self, key: str, token: str) -> bool:
        def _release():
            cache = self._cache()
            if _is_db_cache(cache):
                return _db_conditional(cache, "delete", key, token) > 0
            if cache.get(key) == token:
                return bool(cache.delete(key))
            return False

        return await self._run(_release)

    async def renew(self, key: str, token: str, ttl: int) -> bool:
        def _renew():
            cache = self._cache()
            if _is_db_cache(cache):
                return _db_conditional(cache, "renew", key, token, ttl) > 0
            if cache.get(key) == token:
                return bool(cache.touch(key, timeout=ttl))
            return False

        return await self._run(_renew)

    async def ttl(self, key: str) -> float | None:
        def _ttl():
            cache = self._cache()
            if not _is_db_cache(cache):
                return None
            return _db_ttl(cache, key)

        return await self._run(_ttl)


def _is_db_cache(cache) -> bool:
    from django.core.cache.backends.db import DatabaseCache

    return isinstance(cache, DatabaseCache)


def _db_value(cache, value: str) -> str:
    """How ``DatabaseCache`` stores ``value`` (pickle, base64): equal strings are stored equal."""
    return base64.b64encode(pickle.dumps(value, cache.pickle_protocol)).decode("latin1")


def _db_conditional(cache, op: str, key: str, token: str, ttl: int = 0) -> int:
    from datetime import UTC, datetime

    from django.db import connections, router

    db_key = cache.make_and_validate_key(key)
    connection = connections[router.db_for_write(cache.cache_model_class)]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        if op == "delete":
            cursor.execute(
                f"DELETE FROM {q(cache._table)} WHERE {q('cache_key')} = %s AND {q('value')} = %s",
                [db_key, _db_value(cache, token)],
            )
        else:
            exp = datetime.fromtimestamp(cache.get_backend_timeout(ttl), tz=UTC if settings.USE_TZ else None)
            cursor.execute(
                f"UPDATE {q(cache._table)} SET {q('expires')} = %s WHERE {q('cache_key')} = %s AND {q('value')} = %s",
                [
                    connection.ops.adapt_datetimefield_value(exp.replace(microsecond=0)),
                    db_key,
                    _db_value(cache, token),
                ],
            )
        return cursor.rowcount


def _db_ttl(cache, key: str) -> float | None:
    from django.db import connections, models, router
    from django.utils.timezone import now

    db_key = cache.make_and_validate_key(key)
    connection = connections[router.db_for_read(cache.cache_model_class)]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q('expires')} FROM {q(cache._table)} WHERE {q('cache_key')} = %s", [db_key])
        row = cursor.fetchone()
    if row is None:
        return None
    expires = row[0]
    expression = models.Expression(output_field=models.DateTimeField())
    for converter in connection.ops.get_db_converters(expression) + expression.get_db_converters(connection):
        expires = converter(expires, expression, connection)
    return max(0.0, (expires - now()).total_seconds())


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
    return await _guarded(_backend().get(_PREFIX + session_id))


async def asave(session_id: str, state: dict) -> None:
    await _guarded(_backend().set(_PREFIX + session_id, state, settings.RELAY_SESSION_IDLE_SECONDS))


async def adelete(session_id: str) -> None:
    await _guarded(_backend().delete(_PREFIX + session_id))


class SessionLock:
    """The lock of one session (``alocked``): ``async with`` it, or ``__aenter__`` now and ``release`` later.

    While held, a timer renews the lease every third of it, up to ``MAX_HOLD_SECONDS`` (a timer rather than a
    task sleeping beside every request: nothing runs until a renewal is due)."""

    def __init__(self, session_id: str, wait_seconds: float, lease_seconds: int | None) -> None:
        self.session_id = session_id
        self.key = _LOCK_PREFIX + session_id
        self.token = os.urandom(16).hex()  # 128 random bits, like ``uuid4().hex``, at a quarter of the cost
        self.wait_seconds = wait_seconds
        self.lease_seconds = lease_seconds
        self.held = False
        self._backend: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._renewal: asyncio.Task | None = None

    async def __aenter__(self) -> str:
        """Take the lock, waiting up to ``wait_seconds``: :class:`SessionBusy` (with the seconds until the
        current lease ends) or :class:`StoreUnavailable` otherwise."""
        backend = self._backend = _backend()
        lease = self.lease = self.lease_seconds or lock_seconds()
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while not await _guarded(backend.add(self.key, self.token, lease)):
            if time.monotonic() > deadline:
                try:
                    remaining = await backend.ttl(self.key)
                except _store_errors():
                    remaining = None
                raise SessionBusy(
                    self.session_id, max(1, math.ceil(remaining if remaining is not None else 1))
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        self.held = True
        self._held_until = time.monotonic() + MAX_HOLD_SECONDS
        self._interval = max(lease / 3, 0.2)
        self._schedule_renewal()
        return self.token

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.release()

    def _schedule_renewal(self) -> None:
        if self.held and time.monotonic() + self._interval < self._held_until:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._start_renewal)

    def _start_renewal(self) -> None:
        self._timer = None
        if self.held:
            self._renewal = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        try:
            if not await self._backend.renew(self.key, self.token, self.lease):
                logger.warning("session lock %s lapsed before its owner finished", self.key)
                return
        except _store_errors() as exc:
            # retried at the next interval
            logger.warning("could not renew session lock %s: %s", self.key, exc)
        self._renewal = None
        self._schedule_renewal()

    def _stop_renewal(self) -> None:
        # a renewal in flight is conditional on the token: it cannot revive a released lock
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None

    async def release(self) -> None:
        """Release the lock if still held; never raises (a failed release is left to the lease)."""
        if not self.held:
            return
        self.held = False
        self._stop_renewal()
        try:
            if not await self._backend.release(self.key, self.token):
                logger.warning("session lock %s was no longer held at release (its lease lapsed)", self.key)
        except _store_errors() as exc:  # the lease ends it; the request's bookkeeping goes on
            logger.warning(
                "could not release session lock %s (it lapses within %s s): %s", self.key, self.lease, exc
            )

    async def save_then_release(self, state: dict) -> None:
        """``asave`` the session's state, then release the lock: one round trip with Redis. Raises
        :class:`StoreUnavailable` as ``asave`` does; the lock is then still held (``release`` it)."""
        set_then_release = getattr(self._backend, "set_then_release", None)
        if not self.held or set_then_release is None:
            await asave(self.session_id, state)
            await self.release()
            return
        self._stop_renewal()
        try:
            released = await _guarded(
                set_then_release(
                    _PREFIX + self.session_id,
                    state,
                    settings.RELAY_SESSION_IDLE_SECONDS,
                    self.key,
                    self.token,
                )
            )
        except BaseException:
            self._schedule_renewal()  # still held until ``release``
            raise
        self.held = False
        if not released:
            logger.warning("session lock %s was no longer held at release (its lease lapsed)", self.key)


def alocked(session_id: str, wait_seconds: float = 30.0, lease_seconds: int | None = None) -> SessionLock:
    """Hold the session's lock; waits up to ``wait_seconds`` for another request of it to finish.

    Raises :class:`SessionBusy` (with the seconds until the current lease ends) or :class:`StoreUnavailable`.
    The lock is a lease (``lock_seconds()``) renewed while held, and released by its owner only."""
    return SessionLock(session_id, wait_seconds, lease_seconds)


async def aremember_response(response_id: str, session_id: str) -> None:
    """Responses API: map a response id we returned to its session (``previous_response_id``, §10.3)."""
    await _guarded(
        _backend().set(_RESPONSE_PREFIX + response_id, session_id, settings.RELAY_SESSION_IDLE_SECONDS)
    )


async def alookup_response(response_id: str) -> str | None:
    return await _guarded(_backend().get(_RESPONSE_PREFIX + response_id))
