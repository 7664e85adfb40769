"""Key authentication cost (run by hand): queries per lookup and time per lookup, cold and cached.

    .venv/bin/python bench/bench_auth.py [--keys 2000]

Uses the configured database (SQLite by default; set DATABASE_URL for PostgreSQL). Creates keys for a bench
user, then measures ``apikeys.selectors.aauthenticate``: the number of SQL queries of a cold lookup (must be
1, on the unique prefix index), the time of cold and cached lookups, and that a revocation takes effect
within RELAY_KEY_CACHE_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from apikeys import selectors, services  # noqa: E402
from apikeys.models import ApiKey  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=2000)
    args = parser.parse_args()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user = services.get_or_create_user("bench-auth")
    ApiKey.objects.filter(user=user).delete()
    secrets = []
    t0 = time.perf_counter()
    for i in range(args.keys):
        _, secret = services.do_create_api_key(user=user, name=f"k{i}", arch="single-llm")
        secrets.append(secret)
    print(
        f"created {args.keys} keys in {time.perf_counter() - t0:.1f}s "
        f"({connection.vendor}); RELAY_KEY_CACHE_SECONDS={settings.RELAY_KEY_CACHE_SECONDS}"
    )

    with CaptureQueriesContext(connection) as ctx:
        assert selectors.authenticate(secrets[0]) is not None
    print(f"queries per uncached lookup: {len(ctx.captured_queries)}")
    print(f"  {ctx.captured_queries[0]['sql'][:160]}")

    async def run():
        cold, warm = [], []
        for s in secrets[1:1001]:
            a = time.perf_counter()
            assert await selectors.aauthenticate(s) is not None
            cold.append(time.perf_counter() - a)
            a = time.perf_counter()
            assert await selectors.aauthenticate(s) is not None
            warm.append(time.perf_counter() - a)
        return cold, warm

    cold, warm = asyncio.run(run())
    print(f"cold lookup (one query):   median {statistics.median(cold) * 1e6:8.1f} µs")
    print(f"cached lookup (no query):  median {statistics.median(warm) * 1e6:8.1f} µs")

    # Revocation while another worker still holds the key in its cache: that entry expires on its own.
    key = ApiKey.objects.get(prefix=secrets[5][:12])
    assert selectors.authenticate(secrets[5]) is not None
    asyncio.run(selectors.aauthenticate(secrets[5]))  # cached in this process now
    services.do_revoke_api_key(key=key)  # clears this process's entry; other processes keep theirs
    row = {**ApiKey.objects.filter(pk=key.pk).values(*selectors._FIELDS).first(), "revoked_at": None}
    selectors._KEY_CACHE[key.prefix] = (
        time.monotonic() + settings.RELAY_KEY_CACHE_SECONDS,
        *selectors._principal(row),
    )

    async def revoke_delay():
        start = time.perf_counter()
        while await selectors.aauthenticate(secrets[5]) is not None:
            await asyncio.sleep(0.01)
        return time.perf_counter() - start

    print(f"revocation seen by a worker holding a cached entry after {asyncio.run(revoke_delay()):.2f}s")
    ApiKey.objects.filter(user=user).delete()


if __name__ == "__main__":
    main()
