"""Session locks are leases released by their owner only (issue #18 item 6), on both store backends (the
database cache and Redis): a lock left behind (a crash: acquired, never released) lapses after its lease,
not after 10 minutes; a live holder keeps it by renewal; a lapsed holder's release never frees a lock another
request took since; a failed release raises nothing; a store that went away is ``StoreUnavailable``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

from relay import session_store
from relay.lifecycle import finish
from tests.redis_server import RedisServer

TABLE = "relay_lock_test_cache"


@pytest.fixture(params=["database", "redis"])
def store(request, transactional_db, tmp_path, monkeypatch):
    """The session store's backend under test, installed as the store of this process."""
    if request.param == "redis":
        server = RedisServer(tmp_path / "redis").start()
        request.addfinalizer(server.stop)
        backend = session_store._RedisStore(server.url)
        backend.server = server
    else:  # the database cache, whatever CACHE_URL says (CI: Redis)
        from django.core.cache.backends.db import DatabaseCache
        from django.core.management import call_command

        call_command("createcachetable", TABLE, verbosity=0)
        cache = DatabaseCache(TABLE, {})
        monkeypatch.setattr(session_store._DjangoCacheStore, "_cache", staticmethod(lambda: cache))
        backend = session_store._DjangoCacheStore()
    monkeypatch.setattr(session_store, "_store", backend)
    return backend


def run(coro):
    return asyncio.run(coro)


def test_the_default_lease_is_the_upstream_timeout_plus_a_margin(settings):
    settings.RELAY_UPSTREAM_TIMEOUT = 120
    settings.RELAY_SESSION_LOCK_SECONDS = 0
    assert session_store.lock_seconds() == 125
    settings.RELAY_UPSTREAM_TIMEOUT = 3
    assert session_store.lock_seconds() == 8
    settings.RELAY_SESSION_LOCK_SECONDS = 2.5
    assert session_store.lock_seconds() == 3


def test_a_lock_left_by_a_crash_lapses_after_its_lease(store):
    sid = session_store.new_session_id()

    async def go():
        # The crashed request: its lock entry, with its token, never released.
        assert await store.add(session_store._LOCK_PREFIX + sid, uuid.uuid4().hex, 2)
        started = time.monotonic()
        async with session_store.alocked(sid, wait_seconds=10, lease_seconds=2):
            waited = time.monotonic() - started
        return waited

    waited = run(go())
    assert 0.5 < waited < 4.5, waited


def test_busy_carries_the_time_until_the_lease_ends(store):
    sid = session_store.new_session_id()

    async def go():
        await store.add(session_store._LOCK_PREFIX + sid, "someone-else", 30)
        with pytest.raises(session_store.SessionBusy) as err:
            async with session_store.alocked(sid, wait_seconds=0.2):
                pass
        return err.value.retry_after

    retry_after = run(go())
    assert 25 <= retry_after <= 31, retry_after


def test_a_live_holder_keeps_its_lock_by_renewal(store):
    sid = session_store.new_session_id()

    async def go():
        async with session_store.alocked(sid, lease_seconds=1):
            await asyncio.sleep(2.5)  # well past the lease: renewed meanwhile
            with pytest.raises(session_store.SessionBusy):
                async with session_store.alocked(sid, wait_seconds=0.3):
                    pass
        async with session_store.alocked(sid, wait_seconds=0.5):  # released by its owner: free at once
            pass

    run(go())


def test_only_the_owner_releases(store):
    sid = session_store.new_session_id()
    key = session_store._LOCK_PREFIX + sid

    async def go():
        first = session_store.alocked(sid, lease_seconds=1)
        await first.__aenter__()
        await store.delete(key)  # its lease lapsed meanwhile ...
        assert await store.add(key, "second-owner", 30)  # ... and another request took the lock
        await first.__aexit__(None, None, None)  # the first request finishes late
        assert not await store.release(key, "not-the-token")
        assert not await store.renew(key, "not-the-token", 30)
        return (
            await store.get(key)
            if isinstance(store, session_store._DjangoCacheStore)
            else (await store._client().get(key)).decode()
        )

    assert run(go()) == "second-owner"


def test_a_failed_release_raises_nothing_and_is_logged(store, monkeypatch, caplog):
    sid = session_store.new_session_id()

    async def broken(key, token):
        raise ConnectionError("the store went away")

    async def go():
        async with session_store.alocked(sid):
            monkeypatch.setattr(store, "release", broken)

    with caplog.at_level(logging.WARNING, logger="relay.session_store"):
        run(go())
    assert any("could not release" in r.getMessage() for r in caplog.records)


def test_the_pipeline_release_never_raises(caplog):
    class Exploding:
        async def __aexit__(self, *exc):
            raise RuntimeError("boom")

    call = type("C", (), {"locked": Exploding(), "session_id": "s"})()
    run(finish.release(call))
    assert call.locked is None


def test_a_store_that_went_away_is_store_unavailable(store, monkeypatch):
    sid = session_store.new_session_id()
    if isinstance(store, session_store._RedisStore):
        store.server.stop()
    else:  # the database cache's table cannot be reached
        from django.core.cache.backends.db import DatabaseCache

        gone = DatabaseCache("no_such_table", {})
        monkeypatch.setattr(session_store._DjangoCacheStore, "_cache", staticmethod(lambda: gone))

    async def go():
        for op in (
            session_store.aload(sid),
            session_store.asave(sid, {"a": 1}),
            session_store.alookup_response("resp_1"),
        ):
            with pytest.raises(session_store.StoreUnavailable) as err:
                await op
            assert err.value.public_message.endswith("retry later")
        with pytest.raises(session_store.StoreUnavailable):
            async with session_store.alocked(sid):
                pass

    started = time.monotonic()
    run(go())
    assert time.monotonic() - started < 5  # fails fast, no long reconnect loop
