"""Relay overhead: wrk against the relay vs. against the fake upstream directly (run by hand).

    .venv/bin/python bench/bench_relay.py [--seconds 10] [--sqlite]

Starts the zero-cost fake upstream (tests/fake_upstream.py --port), a uvicorn worker serving the relay
(PostgreSQL + Redis by default, like production; ``--sqlite`` for the embedded default), creates a
single-LLM key, and runs wrk at concurrency 1 and 32, plain and streaming, through the relay and directly.
Prints requests/s and latency percentiles, and the median latency the relay adds.
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, body: dict, headers: dict, connections: int, seconds: int) -> dict:
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(body))}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1" if connections == 1 else "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "errors": int(non2xx.group(1)) if non2xx else 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    env = dict(
        os.environ, DEBUG="0", SECRET_KEY="bench-secret-key", FIELD_ENCRYPTION_KEY="", LOG_LEVEL="ERROR"
    )
    from cryptography.fernet import Fernet

    env["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    procs: list[subprocess.Popen] = []
    try:
        if args.sqlite:
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
                    "DROP DATABASE IF EXISTS sequrity_bench_relay WITH (FORCE)",
                    "-c",
                    "CREATE DATABASE sequrity_bench_relay",
                ],
                check=True,
            )
            subprocess.run(["redis-cli", "-n", "10", "flushdb"], check=True, capture_output=True)
            subprocess.run(["redis-cli", "-n", "11", "flushdb"], check=True, capture_output=True)
            env.update(
                DATABASE_URL="postgres://postgres@127.0.0.1:5432/sequrity_bench_relay",
                CELERY_BROKER_URL="redis://127.0.0.1:6379/10",
                CACHE_URL="redis://127.0.0.1:6379/11",
            )
        up_port, relay_port = free_port(), free_port()
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
        secret = subprocess.run(
            [PY, "manage.py", "create_api_key", "--username", "bench", "--arch", "single-llm"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        upstream = f"http://127.0.0.1:{up_port}"
        env.update(
            RELAY_OPENROUTER_BASE_URL=f"{upstream}/api/v1",
            RELAY_OPENAI_BASE_URL=f"{upstream}/v1",
            RELAY_ANTHROPIC_BASE_URL=upstream,
        )
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
            )
        )
        relay = f"http://127.0.0.1:{relay_port}"
        wait_http(f"{relay}/control/health")
        wait_http(f"{upstream}/")
        headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": "sk-bench"}
        check = httpx.post(f"{relay}/control/chat/v1/chat/completions", json=BODY, headers=headers)
        assert check.status_code == 200, check.text
        print(
            f"database: {'SQLite' if args.sqlite else 'PostgreSQL + Redis'}; one uvicorn worker; "
            f"{args.seconds}s per run\n"
        )
        print(f"{'run':<34}{'c':>4}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
        results = {}
        for stream in (False, True):
            body = {**BODY, "stream": True} if stream else BODY
            for c in (1, 32):
                direct = wrk(f"{upstream}/api/v1/chat/completions", body, {}, c, args.seconds)
                via = wrk(f"{relay}/control/chat/v1/chat/completions", body, headers, c, args.seconds)
                kind = "streaming" if stream else "plain"
                for name, r in ((f"upstream directly, {kind}", direct), (f"through the relay, {kind}", via)):
                    print(
                        f"{name:<34}{c:>4}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>9}"
                    )
                results[(kind, c)] = (direct, via)
        print()
        for (kind, c), (direct, via) in results.items():
            print(f"added at the median, {kind}, c={c}: {via['p50'] - direct['p50']:.2f} ms")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
