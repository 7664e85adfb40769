"""Benchmark: "What would this policy have done?" over a key's last 200 recorded tool calls.

Target (issue #17): under 2 s for 200 calls. Prints the time of the whole dashboard request (session, view, the
form's validation, the policy's compilation on a cold run, reading the calls, the replay, the result's template)
and of the service alone, median / p95 / max of --runs, plus the first (cold-compile) request.

    .venv/bin/python bench/bench_policy_dryrun.py [--calls 200] [--sessions 20] [--rules 60] [--runs 20]
                                                  [--database-url postgres://...]

Without --database-url it uses a fresh SQLite file in a temporary directory (migrated on each run); the key's
calls are recorded as the relay records them (``tests.policy_recording``), both architectures mixed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOOLS = ["send_email", "search_inbox", "read_file", "delete_file", "post_message", "fetch_url"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--rules", type=int, default=60, help="rules in the edited policy")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--database-url", default="")
    return p.parse_args()


def setup_django(args, tmp: str) -> None:
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.sqlite3",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "CELERY_BROKER_URL": "",
            "CACHE_URL": "locmemcache://",
            "ALLOWED_HOSTS": "testserver",
            "LOG_LEVEL": "ERROR",
            "LOG_SPOOL_DIR": f"{tmp}/spool",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings_test")
    import django
    from django.core.management import call_command

    warnings.filterwarnings(
        "ignore", message="No directory at"
    )  # no collectstatic: the bench serves no files

    django.setup()
    call_command("migrate", verbosity=0)


def edited_policy(rules: int) -> str:
    """A policy of ``rules`` rules over the tools the traffic uses; one of them denies mail to evil.example."""
    lines = ['tool "send_email" {', '    hard deny when to.value in {w"*@evil.example"};', "}"]
    for i in range(rules - 1):
        tool = TOOLS[i % len(TOOLS)]
        lines += [f'tool "{tool}" {{', f'    soft deny when "tag{i}" in @session.tags;', "}"]
    return "\n".join(lines) + "\n"


def record_traffic(key, calls: int, sessions: int) -> None:
    from tests.policy_recording import record_tool_calls

    per_session = max(1, calls // sessions)
    made = 0
    while made < calls:
        batch = []
        for i in range(min(per_session, calls - made)):
            n = made + i
            tool = TOOLS[n % len(TOOLS)]
            to = "mallory@evil.example" if n % 7 == 0 else f"user{n}@example.com"
            batch.append(
                (tool, {"to": to, "body": f"message {n}", "path": f"/data/{n}.txt", "q": f"query {n}"})
            )
        record_tool_calls(key, batch)
        made += len(batch)


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def describe(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{label:<44} median {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms   max {ms[-1]:8.1f} ms"


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(args, tmp)
        from django.test import Client
        from django.urls import reverse

        from apikeys.dryrun import do_dry_run
        from tests.factories import PASSWORD, UserFactory, make_key

        user = UserFactory()
        single, _ = make_key(user, arch="single-llm")
        dual, _ = make_key(user, arch="dual-llm")
        record_traffic(single, args.calls // 2, max(1, args.sessions // 2))
        record_traffic(dual, args.calls - args.calls // 2, max(1, args.sessions - args.sessions // 2))
        # One key with all the calls: the dual key's rows move to the single key's sessions' key.
        from sessions.models import RelaySession

        RelaySession.objects.filter(api_key=dual).update(api_key=single)
        client = Client()
        assert client.login(username=user.username, password=PASSWORD)
        code = edited_policy(args.rules)
        url = reverse("apikeys:dry-run", args=[single.pk])
        form = {
            "name": single.name,
            "arch": single.arch,
            "content_logging": single.content_logging,
            "policy_code": code,
            "limit": str(args.calls),
        }

        t0 = time.perf_counter()
        first = client.post(url, form)
        cold_ms = (time.perf_counter() - t0) * 1000
        assert first.status_code == 200, first.content[:500]
        body = first.json()
        assert body["replayed"] == args.calls, body["replayed"]

        request_ms = timed(lambda: client.post(url, form), args.runs)
        service_ms = timed(
            lambda: do_dry_run(
                key=single, policy={"codes": {"code": code, "language": "sqrt"}}, limit=args.calls
            ),
            args.runs,
        )
        db = os.environ["DATABASE_URL"].split(":", 1)[0]
        print(
            f"dry-run of {args.calls} recorded calls ({args.sessions} sessions, both architectures), "
            f"{args.rules}-rule policy, {db}"
        )
        print(f"summary: {body['summary']}")
        print(f"{'first request (policy compiled cold)':<44} {cold_ms:8.1f} ms")
        print(describe("dashboard request (form, replay, template)", request_ms))
        print(describe("service alone (read calls + replay)", service_ms))
        worst = max(cold_ms, *request_ms)
        print(f"worst {worst:.1f} ms; target < 2000 ms: {'met' if worst < 2000 else 'NOT met'}")


if __name__ == "__main__":
    main()
