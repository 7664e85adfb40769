"""Run blocking Django work (ORM, cache) from async code on a few long-lived threads.

``sync_to_async`` under ASGI starts a fresh thread per request, and with it a fresh database connection
(connections are per thread), which costs milliseconds on PostgreSQL. The relay's hot path instead uses
this pool, whose threads keep their connections (``CONN_MAX_AGE``) between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="relay-db")


def _call(fn, args):
    close_old_connections()  # drop a connection past CONN_MAX_AGE or broken, like a request would
    return fn(*args)


async def run_sync(fn, *args):
    """Run the blocking ``fn(*args)`` (database work) in the relay's database threads, from async code: the
    opposite of ``relay.providers.call_from_sync_code``."""
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _call, fn, args)


def close_connections() -> None:
    """Close the database connections the pool's threads hold (test teardown, shutdown)."""
    import threading

    from django.db import connections

    workers = _EXECUTOR._max_workers
    barrier = threading.Barrier(workers, timeout=5)

    def close():
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # one task per thread: every thread gets to close its own connections
        connections.close_all()

    for future in [_EXECUTOR.submit(close) for _ in range(workers)]:
        future.result()
