"""Benchmark: the dashboard with 1,000,000 usage events and 50,000 sessions in PostgreSQL, and the cost of
logging on the relay's request path.

Targets (issue #6): the overview and the sessions list render in under 200 ms on the server; the relay's
request path spends under 0.5 ms on logging (``sessions.emit.emit``).

    .venv/bin/python bench/bench_dashboard.py [--db sequrity_bench] [--events 1000000] [--sessions 50000]
                                              [--runs 15] [--regenerate]

Creates the database (PostgreSQL at 127.0.0.1:5432, user postgres, or --url) and migrates it; generates the
data server-side with ``generate_series`` (a minute or two, once: later runs reuse it), including the hourly
and daily rollups the usage task would have written; then times whole requests through Django's test client
(middleware, view, queries, template) with DEBUG off: median and p95 of --runs after two warm-up requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_USERS = 60
N_KEYS = 200
HEAVY_KEYS = 5  # the heaviest user owns the 5 busiest keys
MODELS = ["openai/gpt-5-mini", "openai/gpt-5-nano", "anthropic/claude-sonnet-4.5", "openai/gpt-4.1"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="sequrity_bench")
    p.add_argument("--url", default="postgres://postgres@127.0.0.1:5432", help="server URL, without database")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--sessions", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--emit-calls", type=int, default=200_000)
    p.add_argument("--regenerate", action="store_true", help="drop and regenerate the data")
    return p.parse_args()


def setup_django(args) -> None:
    import psycopg
    from cryptography.fernet import Fernet

    with psycopg.connect(f"{args.url}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.db,)).fetchone():
            conn.execute(f'CREATE DATABASE "{args.db}"')
            print(f"created database {args.db}")
    os.environ.update(
        {
            "DATABASE_URL": f"{args.url}/{args.db}",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "CELERY_BROKER_URL": "",
            "CACHE_URL": "locmemcache://",
            "ALLOWED_HOSTS": "testserver",
            "LOG_LEVEL": "ERROR",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    # DEBUG off, but without collectstatic's manifest: plain static storage.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()


def generate(args) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from apikeys.models import ApiKey
    from sessions.histogram import sql_bucket_case
    from sessions.models import CreditAccount, RelaySession, SessionEvent, UsageEvent, UsageRollup

    User = get_user_model()
    have = (UsageEvent.objects.count(), RelaySession.objects.count())
    if have == (args.events, args.sessions) and not args.regenerate:
        print(f"reusing {have[0]:,} usage events and {have[1]:,} sessions in {args.db}")
        return
    t0 = time.perf_counter()
    with connection.cursor() as c:
        for model in (SessionEvent, UsageRollup, UsageEvent, RelaySession, CreditAccount, ApiKey):
            c.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
    User.objects.filter(username__startswith="bench-").delete()
    password = make_password("bench-password")
    users = User.objects.bulk_create(
        [
            User(username="bench-heavy", password=password),
            User(username="bench-staff", password=password, is_staff=True),
        ]
        + [User(username=f"bench-user{i}", password=password) for i in range(N_USERS - 2)]
    )
    heavy, rest = users[0], [u for u in users if u.username.startswith("bench-user")]
    keys = []
    for i in range(N_KEYS):
        owner = heavy if i < HEAVY_KEYS else rest[i % len(rest)]
        arch = "dual-llm" if i % 3 else "single-llm"
        keys.append(
            ApiKey(
                user=owner,
                name=f"bench key {i}",
                prefix=f"sq-b{i:08d}",
                secret_hash="0" * 64,
                arch=arch,
                features={"agent_arch": arch},
            )
        )
    ApiKey.objects.bulk_create(keys)
    ids = list(
        ApiKey.objects.filter(prefix__startswith="sq-b").order_by("prefix").values_list("pk", flat=True)
    )
    models_sql = "ARRAY[" + ", ".join(f"'{m}'" for m in MODELS) + "]"
    ids_sql = "ARRAY[" + ", ".join(map(str, ids)) + "]::bigint[]"
    # key index skewed towards the first keys: the heavy user's 5 keys get ~1/3 of the traffic
    pick = f"({ids_sql})[1 + floor(power(random(), 2.2) * {len(ids)})::int]"
    sessions_t, usage_t, rollup_t = (
        RelaySession._meta.db_table,
        UsageEvent._meta.db_table,
        UsageRollup._meta.db_table,
    )
    steps_t = SessionEvent._meta.db_table
    with connection.cursor() as c:
        c.execute("SELECT setseed(0.42)")
        c.execute(
            f"""
            INSERT INTO {sessions_t} (id, api_key_id, arch, endpoint_type, api, provider, status, turns, closed,
                model_names, requests, prompt_tokens, completion_tokens, cost_nano, created_at, last_activity, state_at)
            SELECT gen_random_uuid(), s.k, CASE WHEN mod(s.k, 3) = 0 THEN 'single-llm' ELSE 'dual-llm' END, 'chat', 'chat',
                'openrouter', (ARRAY['success','success','success','success','success','success','failure','denied',
                'open','open'])[1 + floor(random() * 10)::int], 1 + floor(random() * 5)::int, random() < 0.3,
                jsonb_build_array(({models_sql})[1 + mod(s.k, 4)::int]), 1 + floor(random() * 6)::int,
                floor(random() * 20000)::int, floor(random() * 3000)::int, floor(random() * 7000000)::bigint,
                s.ts, s.ts + random() * interval '20 minutes', s.ts
            FROM (SELECT {pick} AS k, now() - random() * interval '30 days' AS ts
                  FROM generate_series(1, %s)) s
        """,
            [args.sessions],
        )
        print(f"  {args.sessions:,} sessions ({time.perf_counter() - t0:.0f} s)")
        c.execute(
            f"""
            INSERT INTO {usage_t} (event_id, api_key_id, session_id, endpoint_type, api, provider, arch, models_used,
                model, prompt_tokens, completion_tokens, latency_ms, status_code, error_kind, streamed, cost_nano,
                created_at)
            SELECT gen_random_uuid(), e.k, NULL, 'chat', 'chat', 'openrouter',
                CASE WHEN mod(e.k, 3) = 0 THEN 'single-llm' ELSE 'dual-llm' END, e.m, e.m, e.pt, e.ct,
                round((exp(random() * 2.2 + 5.2) + random() * 200)::numeric, 3)::float8,
                CASE WHEN random() < 0.03 THEN 502 WHEN random() < 0.02 THEN 429 ELSE 200 END, '', random() < 0.4,
                (e.pt + e.ct) * 300, now() - random() * interval '30 days'
            FROM (SELECT k, ({models_sql})[1 + mod(k, 4)::int] AS m, floor(200 + random() * 4000)::int AS pt,
                         floor(20 + random() * 800)::int AS ct
                  FROM (SELECT {pick} AS k FROM generate_series(1, %s)) g) e
        """,
            [args.events],
        )
        print(f"  {args.events:,} usage events ({time.perf_counter() - t0:.0f} s)")
        c.execute(f"UPDATE {usage_t} SET error_kind = 'upstream_5xx' WHERE status_code >= 500")
        hist_cols = ", ".join(f"lat_{i:02d}" for i in range(len(sql_bucket_case("latency_ms"))))
        hist_sums = ", ".join(f"sum({expr})" for expr in sql_bucket_case("latency_ms"))
        for gran, unit in (("h", "hour"), ("d", "day")):
            c.execute(f"""
                INSERT INTO {rollup_t} (granularity, bucket, api_key_id, model, requests, errors, prompt_tokens,
                    completion_tokens, latency_sum_ms, cost_nano, {hist_cols})
                SELECT '{gran}', date_trunc('{unit}', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', api_key_id,
                    model, count(*), sum((status_code >= 400)::int), sum(prompt_tokens), sum(completion_tokens),
                    sum(latency_ms), sum(cost_nano), {hist_sums}
                FROM {usage_t} GROUP BY 2, 3, 4
            """)
        print(f"  rollups ({time.perf_counter() - t0:.0f} s)")
        # one inspectable session with a realistic number of steps
        c.execute(
            f"SELECT id FROM {sessions_t} WHERE api_key_id = %s ORDER BY created_at DESC LIMIT 1", [ids[0]]
        )
        sid = c.fetchone()[0]
        c.execute(
            f"""
            INSERT INTO {steps_t} (event_id, session_id, turn, seq, type, data, created_at)
            SELECT gen_random_uuid(), %s, 1 + g / 10, g,
                (ARRAY['user_message','llm_call','program','tool_call','tool_result','assistant_message'])[1 + mod(g, 6)],
                jsonb_build_object('text', 'step ' || g, 'tool', 'lookup', 'call_id', 'tc-' || (g - mod(g, 6)),
                    'args', jsonb_build_object('q', jsonb_build_object('value', 'x', 'meta', '{{}}'::jsonb)),
                    'verdict', 'hard_allowed', 'program', 'x = lookup(q="x")' || chr(10) || 'final_return_value = x',
                    'role', 'planner', 'model', 'openai/gpt-5-mini', 'prompt_tokens', 900, 'completion_tokens', 80,
                    'latency_ms', 640),
                now() - interval '1 hour' + g * interval '1 second'
            FROM generate_series(1, 120) g
        """,
            [sid],
        )
    connection.close()
    import psycopg

    with psycopg.connect(f"{args.url}/{args.db}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"generated in {time.perf_counter() - t0:.0f} s")


def timed(client, url: str, runs: int) -> tuple[float, float, int]:
    for _ in range(2):
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(url)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95, len(r.content)


def bench_pages(args) -> list[tuple[str, float]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from apikeys.models import ApiKey
    from sessions.models import RelaySession, UsageRollup

    User = get_user_model()
    heavy, staff = User.objects.get(username="bench-heavy"), User.objects.get(username="bench-staff")
    light = (
        User.objects.filter(username__startswith="bench-user")
        .annotate(n=Count("api_keys__sessions"))
        .order_by("n")
        .first()
    )  # a user with few sessions
    top_key = ApiKey.objects.filter(user=heavy).order_by("prefix").first()
    inspect = RelaySession.objects.filter(api_key=top_key).order_by("-created_at").first()
    with connection.cursor() as c:
        c.execute(
            "SELECT count(*) FROM agent_sessions_usageevent WHERE api_key_id IN "
            "(SELECT id FROM apikeys_apikey WHERE user_id = %s)",
            [heavy.pk],
        )
        heavy_events = c.fetchone()[0]
    heavy_sessions = RelaySession.objects.filter(api_key__user=heavy).count()
    print(
        f"\ndata: {RelaySession.objects.count():,} sessions, {UsageRollup.objects.count():,} rollup rows; "
        f"'bench-heavy' owns {heavy_events:,} usage events and {heavy_sessions:,} sessions\n"
    )
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 86400))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    pages = [
        ("overview 24h", "/dashboard/?range=24h"),
        ("overview 7d", "/dashboard/?range=7d"),
        ("overview 30d", "/dashboard/?range=30d"),
        ("overview 7d, one model", f"/dashboard/?range=7d&model={MODELS[1]}"),
        ("sessions list", "/dashboard/sessions/"),
        ("sessions list, page 40", "/dashboard/sessions/?page=40"),
        ("sessions list, denied", "/dashboard/sessions/?status=denied"),
        (
            "sessions list, key + dates",
            f"/dashboard/sessions/?key={top_key.pk}&date_from={day}&date_to={today}",
        ),
        ("key usage page 7d", f"/dashboard/keys/{top_key.pk}/?range=7d"),
        ("credits", "/dashboard/credits/"),
        ("session inspector (120 steps)", f"/dashboard/sessions/{inspect.pk}/"),
    ]
    results = []
    print(f"{'page':34} {'viewer':12} {'median':>9} {'p95':>9} {'size':>9}")
    for who, user in (("bench-heavy", heavy), ("light user", light), ("staff (all)", staff)):
        client = Client()
        client.force_login(user)
        for name, url in pages:
            if ("inspector" in name or "key" in name) and who != "bench-heavy":
                continue
            med, p95, size = timed(client, url, args.runs)
            flag = (
                "" if med < 200 or not name.startswith(("overview", "sessions list")) else "  <-- over target"
            )
            print(f"{name:34} {who:12} {med:7.1f} ms {p95:7.1f} ms {size / 1024:7.1f} kB{flag}")
            results.append((f"{name} [{who}]", med))
    return results


def bench_emit(args) -> None:
    """Per-call cost of sessions.emit.emit with the flusher running (its publish replaced by a no-op)."""
    from sessions import emit as log

    published = [0]

    def publish(batch):
        published[0] += len(batch)

    log._publish = publish
    fields = dict(
        key_id=1,
        session_id=str(uuid.uuid1()),
        endpoint_type="chat",
        api="chat",
        provider="openrouter",
        arch="dual-llm",
        models=["openai/gpt-5-mini", "openai/gpt-5-nano"],
        prompt_tokens=1234,
        completion_tokens=321,
        latency_ms=812.5,
        status_code=200,
        error_kind="",
        streamed=False,
    )
    n = args.emit_calls

    def per_batch(samples):
        samples.sort()
        return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))], samples[-1]

    # outside an event loop: the daemon-thread flusher
    samples = []
    for _ in range(n // 1000):
        t = time.perf_counter()
        for _ in range(1000):
            log.emit("usage", **fields)
        samples.append((time.perf_counter() - t) * 1e6 / 1000)
    med, p99, worst = per_batch(samples)
    print(
        f"\nemit() in a thread:      median {med:.2f} µs/call, p99 batch {p99:.2f} µs, worst batch {worst:.2f} µs "
        f"({n:,} calls)"
    )

    async def in_loop():  # the relay's case: an asyncio task flushes
        samples = []
        for _ in range(n // 1000):
            t = time.perf_counter()
            for _ in range(1000):
                log.emit("usage", **fields)
            samples.append((time.perf_counter() - t) * 1e6 / 1000)
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        return samples

    med, p99, worst = per_batch(asyncio.run(in_loop()))
    time.sleep(0.3)
    log.flush()
    print(
        f"emit() in an event loop: median {med:.2f} µs/call, p99 batch {p99:.2f} µs, worst batch {worst:.2f} µs"
    )
    print(
        f"(the flusher published {published[0]:,} of {2 * (n // 1000) * 1000:,} events; target < 500 µs per request)"
    )


def main() -> None:
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    args = parse_args()
    setup_django(args)
    generate(args)
    bench_pages(args)
    bench_emit(args)


if __name__ == "__main__":
    main()
