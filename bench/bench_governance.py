"""What key governance adds to the relay's hot path (issue #16; run by hand).

    .venv/bin/python bench/bench_governance.py [--requests 3000] [--sqlite] [--skip-micro]

1. In-process: the median cost of one reservation and one settlement (rate limits + budget) in each store
   (Redis, the database, memory), and of the access checks (expiry, provider/model lists) alone.
2. End to end, like bench/bench_relay.py (PostgreSQL + Redis, one uvicorn worker, the zero-cost fake upstream,
   concurrency 1): a key without governance against a key with every setting (expiry, model and provider
   lists, requests/minute, tokens/minute, a monthly budget, all far from their limits) and a second key
   without governance (the noise floor), alternating keys request by request so that whatever else loads the machine hits both alike; medians seen by the client
   and in the server (the access log's latency, arrival to last byte), plain and streaming.
Needs PostgreSQL and Redis on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
_spec = importlib.util.spec_from_file_location("bench_relay", ROOT / "bench" / "bench_relay.py")
bench_relay = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_relay)
# (bench_relay's body, a few words longer: its estimate, ~bytes/4 tokens, is not exactly the 19 tokens the fake
# upstream reports, so that every request's settlement has something to write)
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Say hello to the relay, please"}]}

GOVERN = """
import os
from datetime import timedelta
from django.utils import timezone
from apikeys.models import ApiKey
ApiKey.objects.filter(prefix=os.environ["BENCH_KEY"][:12]).update(
    expires_at=timezone.now() + timedelta(days=30), allowed_providers=["openrouter", "openai"],
    allowed_models=["gpt-5-mini", "openai/*"], rpm_limit=10**9, tpm_limit=10**12, budget_nano=10**18,
    budget_period="month")
"""


def micro(n: int = 20000) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apikeys import governance as g
    from apikeys.models import ApiKey
    from tests.factories import UserFactory, make_key

    key = ApiKey.objects.filter(name="bench governance").first()
    if key is None:
        key, _ = make_key(UserFactory(username=f"bench-gov-{time.time_ns()}"), arch="single-llm")
        ApiKey.objects.filter(pk=key.pk).update(name="bench governance")
    gov = g.Governance(
        key_id=key.pk,
        rpm=10**9,
        tpm=10**12,
        budget_nano=10**18,
        arch="single-llm",
        expires_at=time.time() + 86400,
        providers=frozenset({"openrouter"}),
        models=frozenset({"gpt-5-mini"}),
    )

    def med(samples):
        return statistics.median(samples) * 1e6

    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        g.check_access(gov, "openrouter", "gpt-5-mini", time.time())
        t.append(time.perf_counter() - t0)
    print(f"access checks (expiry, provider, model): {med(t):.2f} µs median")

    stores = [
        ("memory", g.MemoryStore(seed=lambda *a: 0)),
        ("redis", g.RedisStore("redis://127.0.0.1:6379/7")),
        ("database", g.DatabaseStore(seed=lambda *a: 0)),
    ]
    for name, store in stores:
        g.set_store(store)

        async def loop(count):
            res_t, set_t = [], []
            for _ in range(count):
                t0 = time.perf_counter()
                res, refusal = await g.reserve(gov, tokens_est=20)
                t1 = time.perf_counter()
                await g.settle_reservation(res, tokens=19)
                t2 = time.perf_counter()
                assert refusal is None
                res_t.append(t1 - t0)
                set_t.append(t2 - t1)
            return res_t, set_t

        count = n if name != "database" else 2000
        res_t, set_t = asyncio.run(loop(count))
        print(
            f"{name:>8}: reserve {med(res_t):7.1f} µs, settle {med(set_t):7.1f} µs median ({count} requests)"
        )
    g.set_store(None)


def _blocks(
    port: int, pid: int, secrets: dict[str, str], body: dict, rounds: int, block: int
) -> tuple[dict[str, list[list[float]]], dict[str, list[float]]]:
    """Concurrency 1, keep-alive: ``rounds`` rounds of one block of ``block`` requests per key, the keys' order
    rotating from round to round. Blocks rather than single requests alternate, so that the work a request
    leaves behind (a settlement written after its answer) lands on requests of the same key, as it would on a
    server where every key has limits. Returns client latencies (ms) per key and round, and the relay
    process's CPU time (user + system, µs) per request per key and round."""
    import http.client
    import json

    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    payload = json.dumps(body)
    names = list(secrets)
    conns = {name: http.client.HTTPConnection("127.0.0.1", port) for name in names}
    lat: dict[str, list[list[float]]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            conn, samples = conns[name], []
            before = cpu()
            for _ in range(block):
                t0 = time.perf_counter()
                conn.request(
                    "POST",
                    "/control/chat/v1/chat/completions",
                    payload,
                    {
                        "Authorization": f"Bearer {secrets[name]}",
                        "X-Api-Key": "sk-bench",
                        "Content-Type": "application/json",
                    },
                )
                resp = conn.getresponse()
                resp.read()
                samples.append((time.perf_counter() - t0) * 1000)
                assert resp.status == 200, (name, resp.status)
            cpus[name].append((cpu() - before) / block * 1e6)
            lat[name].append(samples)
    return lat, cpus


def _server_latencies(log: Path, prefixes: dict[str, str], since: int) -> tuple[dict[str, list[float]], int]:
    """Server-side latency (the access log's latency_ms, from the request's arrival to its last byte) per key."""
    import json

    out: dict[str, list[float]] = {name: [] for name in prefixes}
    lines = log.read_text().splitlines()
    for line in lines[since:]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        for name, prefix in prefixes.items():
            if rec.get("key_prefix") == prefix and rec.get("status") == 200:
                out[name].append(float(rec["latency_ms"]))
    return out, len(lines)


def end_to_end(requests: int, sqlite: bool) -> None:
    from cryptography.fernet import Fernet

    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY="bench-secret-key",
        LOG_LEVEL="WARNING",
        LOG_REQUESTS="1",
        LOG_FORMAT="json",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    procs: list[subprocess.Popen] = []
    log = Path(tempfile.mkdtemp()) / "relay.log"
    try:
        if sqlite:
            db = Path(tempfile.mkdtemp()) / "bench.sqlite3"
            env.update(DATABASE_URL=f"sqlite:///{db}", CELERY_BROKER_URL="", CACHE_URL="")
        else:
            subprocess.run(
                [
                    "psql",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-c",
                    "DROP DATABASE IF EXISTS sequrity_bench_gov WITH (FORCE)",
                    "-c",
                    "CREATE DATABASE sequrity_bench_gov",
                ],
                check=True,
            )
            for n in ("10", "11"):
                subprocess.run(["redis-cli", "-n", n, "flushdb"], check=True, capture_output=True)
            env.update(
                DATABASE_URL="postgres://postgres@127.0.0.1:5432/sequrity_bench_gov",
                CELERY_BROKER_URL="redis://127.0.0.1:6379/10",
                CACHE_URL="redis://127.0.0.1:6379/11",
            )
        up_port, relay_port = bench_relay.free_port(), bench_relay.free_port()
        procs.append(
            subprocess.Popen(
                [PY, "tests/fake_upstream.py", "--port", str(up_port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([PY, "manage.py", "createcachetable"], cwd=ROOT, env=env, check=True)
        secrets = {}
        for name in ("plain", "plain-2", "governed"):
            secrets[name] = subprocess.run(
                [
                    PY,
                    "manage.py",
                    "create_api_key",
                    "--username",
                    "bench",
                    "--arch",
                    "single-llm",
                    "--name",
                    name,
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
        subprocess.run(
            [PY, "manage.py", "shell", "-c", GOVERN],
            cwd=ROOT,
            check=True,
            env={**env, "BENCH_KEY": secrets["governed"]},
        )
        upstream = f"http://127.0.0.1:{up_port}"
        env.update(
            RELAY_OPENROUTER_BASE_URL=f"{upstream}/api/v1",
            RELAY_OPENAI_BASE_URL=f"{upstream}/v1",
            RELAY_ANTHROPIC_BASE_URL=upstream,
        )
        with log.open("w") as fh:
            procs.append(
                subprocess.Popen(
                    [
                        PY,
                        "-m",
                        "uvicorn",
                        "sequrity_site.asgi:application",
                        "--port",
                        str(relay_port),
                        "--workers",
                        "1",
                        "--http",
                        "httptools",
                        "--loop",
                        "uvloop",
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            )
        relay = f"http://127.0.0.1:{relay_port}"
        bench_relay.wait_http(f"{relay}/control/health")
        bench_relay.wait_http(f"{upstream}/")
        prefixes = {name: secret[:12] for name, secret in secrets.items()}
        rounds, block = max(3, requests // 200), 200
        print(
            f"\nend to end: {'SQLite (database store)' if sqlite else 'PostgreSQL + Redis (Redis store)'}; one "
            f"uvicorn worker; concurrency 1; {rounds} rounds of {block} requests per key (blocks alternate, the "
            f"order rotates)"
        )
        print(f"{'':>10}{'':>10}{'client p50':>12}{'server p50':>12}{'server p90':>12}{'CPU/request':>13}")
        pid = procs[-1].pid
        for stream in (False, True):
            body = {**BODY, "stream": True} if stream else BODY
            _blocks(relay_port, pid, secrets, body, 1, 100)  # warm up
            _, since = _server_latencies(log, prefixes, 0)
            client, cpus = _blocks(relay_port, pid, secrets, body, rounds, block)
            time.sleep(0.5)
            server_all, _ = _server_latencies(log, prefixes, since)
            server = {
                name: [v[i : i + block] for i in range(0, len(v), block)] for name, v in server_all.items()
            }
            kind = "streaming" if stream else "plain"
            for name in secrets:
                flat = sorted(x for b in server[name] for x in b)
                print(
                    f"{kind:>10}{name:>10}{statistics.median(x for b in client[name] for x in b):>12.3f}"
                    f"{statistics.median(flat):>12.3f}{flat[int(len(flat) * 0.9)]:>12.3f}"
                    f"{statistics.median(cpus[name]) / 1000:>10.3f} ms"
                )

            def added(blocks: dict, name: str) -> float:
                """Median over the rounds of the difference of the blocks' medians, in µs."""
                return 1000 * statistics.median(
                    statistics.median(b) - statistics.median(a)
                    for a, b in zip(blocks["plain"], blocks[name], strict=True)
                )

            def cpu_added(name: str, cpus=cpus) -> float:
                return statistics.median(b - a for a, b in zip(cpus["plain"], cpus[name], strict=True))

            print(
                f"{kind:>10}: governance adds {added(client, 'governed'):+.0f} µs at the median seen by the client, "
                f"{added(server, 'governed'):+.0f} µs in the server, {cpu_added('governed'):+.0f} µs of CPU "
                f"(noise floor, a second key without governance: {added(client, 'plain-2'):+.0f} / "
                f"{added(server, 'plain-2'):+.0f} / {cpu_added('plain-2'):+.0f} µs)"
            )
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--skip-micro", action="store_true")
    args = parser.parse_args()
    if not args.skip_micro:
        subprocess.run(
            [
                "psql",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-c",
                "DROP DATABASE IF EXISTS sequrity_bench_gov_micro WITH (FORCE)",
                "-c",
                "CREATE DATABASE sequrity_bench_gov_micro",
            ],
            check=True,
        )
        subprocess.run(["redis-cli", "-n", "7", "flushdb"], check=True, capture_output=True)
        subprocess.run(
            [PY, __file__, "--micro-only"],
            cwd=ROOT,
            check=True,
            env=dict(
                os.environ,
                DATABASE_URL="postgres://postgres@127.0.0.1:5432/sequrity_bench_gov_micro",
                DEBUG="1",
                PYTHONPATH=str(ROOT),
            ),
        )
    end_to_end(args.requests, args.sqlite)


if __name__ == "__main__":
    if "--micro-only" in sys.argv:
        micro()
    else:
        main()
