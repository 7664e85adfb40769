"""Where a session's state lives between requests: the ``relay_sessions`` Django cache.

Redis in production (``CACHE_URL`` / ``RELAY_SESSION_CACHE_URL``), a database table otherwise, so a session
started on one worker process continues on any other. Entries expire after ``RELAY_SESSION_IDLE_SECONDS``
of inactivity (an expired session behaves as unknown, control-api.md §7.4). Requests of one session are
serialised by a lock (an atomic ``add`` of a lock entry), so concurrent requests never interleave writes.
The people-facing session log is separate: it goes through Celery (``sessions.emit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from django.conf import settings
from django.core.cache import caches

_PREFIX = "relay:s:"
_LOCK_PREFIX = "relay:lock:"


class SessionBusy(Exception):
    """Another request of the same session holds its lock for too long."""


def _cache():
    return caches["relay_sessions"]


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


async def aload(session_id: str) -> dict | None:
    return await _cache().aget(_PREFIX + session_id)


async def asave(session_id: str, state: dict) -> None:
    await _cache().aset(_PREFIX + session_id, state, timeout=settings.RELAY_SESSION_IDLE_SECONDS)


async def adelete(session_id: str) -> None:
    await _cache().adelete(_PREFIX + session_id)


@contextlib.asynccontextmanager
async def alocked(session_id: str, wait_seconds: float = 30.0, hold_seconds: int = 600):
    """Hold the session's lock; waits up to ``wait_seconds`` for another request of it to finish."""
    key = _LOCK_PREFIX + session_id
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    delay = 0.005
    while not await _cache().aadd(key, token, timeout=hold_seconds):
        if time.monotonic() > deadline:
            raise SessionBusy(session_id)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    try:
        yield
    finally:
        if await _cache().aget(key) == token:
            await _cache().adelete(key)


_RESPONSE_PREFIX = "relay:resp:"


async def aremember_response(response_id: str, session_id: str) -> None:
    """Responses API: map a response id we returned to its session (``previous_response_id``, §10.3)."""
    await _cache().aset(_RESPONSE_PREFIX + response_id, session_id, timeout=settings.RELAY_SESSION_IDLE_SECONDS)


async def alookup_response(response_id: str) -> str | None:
    return await _cache().aget(_RESPONSE_PREFIX + response_id)
