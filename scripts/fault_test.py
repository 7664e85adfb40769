"""Fault test: the relay and its usage log under load, one fault at a time (issue #18). Run by hand:

    .venv/bin/python scripts/fault_test.py              # every fault, 40 s of load per phase (~10 min)
    .venv/bin/python scripts/fault_test.py --quick      # the short form (CI): shorter phases and outages
    .venv/bin/python scripts/fault_test.py --only broker-kill,worker-kill --rate 60

Everything it starts is its own and listens on 127.0.0.1 only, so a run disturbs nothing else on the machine:
a fresh PostgreSQL database (on the server of ``--pg``; the "restart" fault terminates the backends of *that*
database and refuses new connections to it for a while, the server itself keeps running), a RabbitMQ node of
its own (own node name, port and data directory: stopping or killing it touches no other broker), a
redis-server on a port of its own (cache and session store), the fake upstream (``tests/fake_upstream.py``),
and the production processes of the ``Procfile`` under honcho: the relay (uvicorn, 2 workers), a Celery
worker and beat, each under ``sequrity_site.supervise``.

Per phase: fresh keys, a bounded mixed load (single- and dual-LLM, plain and streaming, Chat Completions),
one fault injected a few seconds in, then the accounting, from the client's side and the database's:

- sent; answered (a complete answer: a full JSON body, or a stream to its end), by status; cut (a stream
  that ended early) and unanswered (connection refused / reset: no answer at all);
- usage rows of the phase's keys; lost: complete answers without their usage row; doubled: a request
  logged twice; wrong status: a row whose status is not the one the client got; bad errors: an error that
  is not JSON, or a 503 without Retry-After;
- healthy after: seconds from the fault until everything is back (/control/ready answers 200: database,
  broker, caches; both uvicorn workers and a Celery worker with its pool run); log complete: seconds from the
  end of the load until every answered request has its row.

The exit status is 1 if any phase lost or doubled a row (or gave a bad error), so CI can run ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
BIN = Path(PY).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------- processes


def _proc_children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[ppid].append(int(entry))
    return out


def ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    children = _proc_children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class RabbitNode:
    """A RabbitMQ node of this run's own: stopping or killing it disturbs no other broker."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"sqfault{os.getpid()}@localhost"
        self.vhost = "sequrity"
        self.home = base / "home"
        self.proc: subprocess.Popen | None = None
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        for candidate in (Path("/var/lib/rabbitmq/.erlang.cookie"), Path.home() / ".erlang.cookie"):
            if candidate.exists():
                shutil.copy(candidate, cookie)
                break
        else:
            cookie.write_text(uuid.uuid4().hex)
        cookie.chmod(0o400)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (base / "enabled_plugins").write_text("[].\n")
        (base / "env.conf").write_text("ERL_EPMD_ADDRESS=127.0.0.1\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{self.vhost}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self) -> float:
        t = time.monotonic()
        server = shutil.which("rabbitmq-server", path="/usr/lib/rabbitmq/bin") or "rabbitmq-server"
        log = (self.base / "server.out").open("a")
        self.proc = subprocess.Popen(
            [server], env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if not wait_port(self.port, 90):
            raise RuntimeError(f"RabbitMQ did not start: {(self.base / 'server.out').read_text()[-2000:]}")
        return time.monotonic() - t

    def setup_vhost(self) -> None:
        self.ctl("add_vhost", self.vhost, check=False)
        self.ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def beam_pid(self) -> int | None:
        try:
            return int((self.base / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        self.ctl("stop", check=False)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        pid = self.beam_pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --------------------------------------------------------------------------------------------- the run


@dataclass
class Result:
    kind: str
    status: int | None = None  # None: no HTTP answer at all
    complete: bool = False
    sid: str | None = None
    json_ok: bool = True
    retry_after: bool = False
    error: str = ""


@dataclass
class Phase:
    name: str
    fault: str
    results: list[Result] = field(default_factory=list)
    fault_started: float = 0.0
    fault_restored: float = 0.0
    ready_after: float | None = None
    log_complete_after: float | None = None
    rows: int = 0
    lost: int = 0
    doubled: int = 0
    wrong_status: int = 0
    logged_unanswered: int = 0
    notes: list[str] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)


class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.base = Path(tempfile.mkdtemp(prefix="sequrity-fault-"))
        self.db = f"sequrity_fault_{os.getpid()}"
        self.pg_admin = args.pg.rstrip("/") + "/postgres"
        self.rabbit = RabbitNode(self.base / "rabbit")
        self.redis_port = free_port()
        self.web_port = free_port()
        self.redis: subprocess.Popen | None = None
        self.honcho: subprocess.Popen | None = None
        self.fake = None
        self.env_file = self.base / "fault.env"
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.key_ids: dict[str, list[int]] = {}

    # -- setup ------------------------------------------------------------------------------------------

    def psql(self, *sql: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin, autocommit=True) as conn:
            for statement in sql:
                conn.execute(statement)

    def start(self) -> None:
        say(f"work directory {self.base}")
        self.psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)", f"CREATE DATABASE {self.db}")
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
            ],
            stdout=(self.base / "redis.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert wait_port(self.redis_port, 20), "redis-server did not start"
        say(
            f"RabbitMQ node {self.rabbit.name} on port {self.rabbit.port} started in {self.rabbit.start():.1f} s"
        )
        self.rabbit.setup_vhost()
        self.start_fake()
        base = subprocess.run(
            [PY, "scripts/make_env.py", "--production", "localhost", "--workers", "2"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pg = self.args.pg.rstrip("/")
        overrides = {
            "DATABASE_URL": f"{pg}/{self.db}",
            "CELERY_BROKER_URL": self.rabbit.url,
            "CACHE_URL": f"redis://127.0.0.1:{self.redis_port}/1",
            "RELAY_SESSION_CACHE_URL": f"redis://127.0.0.1:{self.redis_port}/2",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "HOST": "127.0.0.1",
            "PORT": str(self.web_port),
            "WEB_CONCURRENCY": "2",
            "CELERY_CONCURRENCY": "2",
            "LOG_REQUESTS": "0",
            "LOG_LEVEL": "WARNING",
            "STATIC_ROOT": str(self.base / "static"),
            "LOG_SPOOL_DIR": str(self.base / "spool"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.base / "prometheus"),
            "CELERY_BEAT_SCHEDULE_FILE": str(self.base / "celerybeat-schedule"),
            "RELAY_UPSTREAM_TIMEOUT": "15",
            **self.fake.base_urls(),
        }
        lines = [line for line in base.splitlines() if line.split("=", 1)[0] not in overrides]
        self.env_file.write_text("\n".join(lines + [f"{k}={v}" for k, v in overrides.items()]) + "\n")
        os.environ["ENV_FILE"] = str(self.env_file)
        for k in (
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "DEBUG",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
            "LOG_SPOOL_DIR",
        ):
            os.environ.pop(k, None)
        subprocess.run(
            [PY, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            check=True,
            env={**os.environ, "ENV_FILE": str(self.env_file)},
        )
        os.environ["DJANGO_SETTINGS_MODULE"] = "sequrity_site.settings"
        import django

        django.setup()
        import logging

        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # (the fake upstream: a killed relay)
        self.start_processes()

    def start_fake(self) -> None:
        from tests import fake_upstream as fu

        def reply(req):
            model = req.json.get("model", "") if isinstance(req.json, dict) else ""
            if "dual" in str(model):  # the planner writes a program; the relay runs it
                return fu.text("```python\nfinal_return_value = 6 * 7\n```", delay=0.03, usage=(50, 10))
            return fu.text("alpha beta gamma delta epsilon", delay=0.05, chunk_delay=0.01, usage=(30, 5))

        self.fake = fu.FakeUpstream().start()
        self.fake.reply = reply

    def start_processes(self) -> None:
        env = {**os.environ, "ENV_FILE": str(self.env_file), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        self.honcho = subprocess.Popen(
            [str(BIN / "honcho"), "-e", str(self.env_file), "-f", "Procfile", "start"],
            cwd=ROOT,
            env=env,
            stdout=(self.base / "honcho.log").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not self.wait_ready(120):
            raise RuntimeError(
                f"the relay did not become ready:\n{(self.base / 'honcho.log').read_text()[-4000:]}"
            )
        self.wait_worker(60)

    def ready(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/control/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.honcho is not None and self.honcho.poll() is not None:
                raise RuntimeError(f"honcho exited:\n{(self.base / 'honcho.log').read_text()[-4000:]}")
            if self.ready():
                return True
            time.sleep(0.5)
        return False

    def pids(self, needle: str) -> list[int]:
        return [p for p in descendants(self.honcho.pid) if needle in cmdline(p)]

    def celery_main(self) -> int | None:
        """The worker's main process (its supervisor's child; its pool processes are its own children)."""
        for pid in self.pids("celery -A sequrity_site worker"):
            if "sequrity_site.supervise" not in cmdline(pid) and "sequrity_site.supervise" in cmdline(
                ppid(pid)
            ):
                return pid
        return None

    def uvicorn_master(self) -> int | None:
        for pid in self.pids("uvicorn sequrity_site.asgi:application"):
            return pid
        return None

    def uvicorn_workers(self) -> list[int]:
        master = self.uvicorn_master()
        if master is None:
            return []
        children = _proc_children().get(master, [])
        return [p for p in children if "spawn_main" in cmdline(p)]

    def wait_worker(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.celery_main()
            if pid and len(descendants(pid)) >= 1:
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> None:
        if self.honcho is not None and self.honcho.poll() is None:
            os.killpg(self.honcho.pid, signal.SIGTERM)
            try:
                self.honcho.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.honcho.pid, signal.SIGKILL)
        if self.honcho is not None:  # anything of its tree still there (it should not be)
            for pid in descendants(self.honcho.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            self.rabbit.stop()
        except Exception:  # noqa: BLE001
            self.rabbit.kill()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(timeout=10)
        if self.fake is not None:
            self.fake.stop()
        from django.conf import settings

        if settings.configured:  # (not when the start failed before Django was set up)
            from django.db import connections

            connections.close_all()
        if not self.args.keep:
            try:
                self.psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            except Exception as exc:  # noqa: BLE001
                say(f"could not drop {self.db}: {exc}")
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            say(f"kept database {self.db} and {self.base}")

    # -- faults -----------------------------------------------------------------------------------------

    def fault(self, name: str, phase: Phase) -> None:
        """Inject one fault and undo it (blocking; runs in a thread while the load goes on)."""
        q = self.args.quick
        phase.fault_started = time.monotonic()
        if name == "none":
            pass
        elif name == "broker-stop":
            self.rabbit.stop()
            time.sleep(6 if q else 20)
            self.rabbit.start()
        elif name == "broker-kill":
            self.rabbit.kill()
            time.sleep(5)
            self.rabbit.start()
        elif name == "worker-kill":
            pid = self.celery_main()
            if pid is None:
                phase.notes.append("no celery worker found")
            else:
                phase.killed.add(pid)
                os.kill(pid, signal.SIGKILL)
        elif name == "db-restart":
            # PostgreSQL "restart" of this run's database only: its backends are terminated and new
            # connections refused for a while (the server is shared; restarting it would disturb others).
            self.psql(
                f"ALTER DATABASE {self.db} ALLOW_CONNECTIONS false",
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.db}' "
                f"AND pid <> pg_backend_pid()",
            )
            time.sleep(5 if q else 10)
            self.psql(f"ALTER DATABASE {self.db} ALLOW_CONNECTIONS true")
        elif name == "uvicorn-kill":
            workers = self.uvicorn_workers()
            if not workers:
                phase.notes.append("no uvicorn worker found")
            else:
                os.kill(workers[0], signal.SIGKILL)
        elif name == "relay-restart":
            master = self.uvicorn_master()
            if master is None:
                phase.notes.append("no uvicorn master found")
            else:
                os.kill(master, signal.SIGTERM)  # graceful; its supervisor starts it again
                time.sleep(1.0)
        elif name == "relay-reload":
            supervisors = self.pids("sequrity_site.supervise --name web")
            if not supervisors:
                phase.notes.append("no web supervisor found")
            else:  # uvicorn replaces its workers one at a time, each new one serving before the old stops
                os.kill(supervisors[0], signal.SIGHUP)
                time.sleep(1.0)
        else:
            raise ValueError(name)
        phase.fault_restored = time.monotonic()

    # -- load -------------------------------------------------------------------------------------------

    def make_keys(self, phase: str, fresh: int) -> dict:
        """A single-LLM and a dual-LLM key for the phase, plus ``fresh`` single-LLM keys used once each (a key
        the relay has not seen cannot be served from its cache while the database is down)."""
        from apikeys.services import do_create_api_key, get_or_create_user

        user = get_or_create_user("fault-test")
        keys: dict = {"fresh": []}
        for arch in ("single-llm", "dual-llm"):
            key, secret = do_create_api_key(user=user, name=f"{phase} {arch}", arch=arch)
            keys[arch] = secret
            self.key_ids.setdefault(phase, []).append(key.pk)
        for i in range(fresh):
            key, secret = do_create_api_key(user=user, name=f"{phase} fresh {i}", arch="single-llm")
            keys["fresh"].append(secret)
            self.key_ids[phase].append(key.pk)
        return keys

    async def one(self, client, kind: str, keys: dict[str, str], n: int) -> Result:
        import httpx

        arch, stream = ("dual-llm" if kind.startswith("dual") else "single-llm"), kind.endswith("stream")
        body = {
            "model": "fault/dual" if arch == "dual-llm" else "fault/single",
            "messages": [{"role": "user", "content": f"question {n}"}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        secret = keys["fresh"].pop() if kind == "fresh" and keys["fresh"] else keys[arch]
        headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": "k"}
        url = f"{self.url}/control/chat/v1/chat/completions"
        res = Result(kind)
        try:
            async with client.stream("POST", url, json=body, headers=headers) as r:
                res.status, res.sid = r.status_code, r.headers.get("x-session-id")
                res.retry_after = "retry-after" in r.headers
                data = b""
                async for part in r.aiter_bytes():
                    data += part
            if res.status >= 400 or not stream:
                try:
                    json.loads(data)
                except ValueError:
                    res.json_ok = False
                res.complete = res.json_ok
            else:
                res.complete = data.rstrip().endswith(b"data: [DONE]")
        except httpx.HTTPError as exc:
            res.error = type(exc).__name__
        return res

    async def load(self, phase: Phase, keys: dict[str, str], seconds: float) -> None:
        import httpx

        kinds = [
            "single",
            "single-stream",
            "dual",
            "dual-stream",
            "single",
            "single-stream",
            "dual",
            "dual-stream",
            "single",
            "fresh",
        ]  # 1 in 10 with a key used for the first time
        interval = 1.0 / self.args.rate
        started = time.monotonic()
        n = 0
        sem = asyncio.Semaphore(self.args.concurrency)
        tasks = []
        limits = httpx.Limits(
            max_connections=self.args.concurrency, max_keepalive_connections=self.args.concurrency
        )
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits) as client:

            async def run(kind, i):
                async with sem:
                    phase.results.append(await self.one(client, kind, keys, i))

            while time.monotonic() - started < seconds:
                tasks.append(asyncio.ensure_future(run(kinds[n % len(kinds)], n)))
                n += 1
                await asyncio.sleep(max(0.0, started + n * interval - time.monotonic()))
                if len(self.fake.requests) > 5000:
                    self.fake.requests.clear()
            await asyncio.gather(*tasks)

    def healthy(self, phase: Phase) -> bool:
        """Whatever the fault took away is back: /control/ready (database, broker, caches) answers 200, both
        uvicorn workers run, and a Celery worker (another process than the one killed) has its pool."""
        if not self.ready() or len(self.uvicorn_workers()) < 2:
            return False
        pid = self.celery_main()
        return pid is not None and pid not in phase.killed and bool(descendants(pid))

    async def watch_ready(self, phase: Phase, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if (
                phase.fault_restored
                and phase.ready_after is None
                and await loop.run_in_executor(None, self.healthy, phase)
            ):
                phase.ready_after = time.monotonic() - phase.fault_started
            await asyncio.sleep(0.25)

    def run_phase(self, fault: str) -> Phase:
        q = self.args.quick
        phase = Phase(fault, fault)
        seconds = self.args.seconds or (16 if q else 40)
        keys = self.make_keys(fault, int(seconds * self.args.rate / 10) + 5)
        fault_at = 4 if q else 8

        async def main():
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(self.watch_ready(phase, stop))
            load = asyncio.ensure_future(self.load(phase, keys, seconds))
            await asyncio.sleep(fault_at)
            await asyncio.get_running_loop().run_in_executor(None, self.fault, fault, phase)
            await load
            # (a restart may still be under way when the load ends: keep watching)
            deadline = time.monotonic() + 90
            while phase.ready_after is None and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            stop.set()
            await watcher

        say(f"phase {fault}: {seconds} s of load at {self.args.rate} req/s, fault at {fault_at} s")
        asyncio.run(main())
        load_end = time.monotonic()
        self.account(phase, load_end)
        return phase

    # -- accounting -------------------------------------------------------------------------------------

    def usage_rows(self, phase: str) -> list[tuple]:
        from django.db import connections

        from sessions.models import UsageEvent

        for _attempt in range(20):
            try:
                return list(
                    UsageEvent.objects.filter(api_key_id__in=self.key_ids[phase]).values_list(
                        "session_id", "status_code", "error_kind"
                    )
                )
            except Exception:  # noqa: BLE001 - the database may have just come back
                connections.close_all()
                time.sleep(0.5)
        return []

    def account(self, phase: Phase, load_end: float) -> None:
        results = phase.results
        answered = [r for r in results if r.status is not None and r.complete]
        with_sid = {r.sid: r for r in answered if r.sid}
        expected_nosid = collections.Counter(r.status for r in answered if not r.sid)
        timeout = 60 if self.args.quick else 150
        deadline = load_end + timeout
        while True:
            rows = self.usage_rows(phase.name)
            by_sid = collections.Counter(str(s) for s, _, _ in rows if s)
            missing = [sid for sid in with_sid if by_sid[sid] == 0]
            unmatched = collections.Counter(st for s, st, _ in rows if not s or str(s) not in with_sid)
            short = sum(max(0, n - unmatched[st]) for st, n in expected_nosid.items())
            if not missing and not short:
                phase.log_complete_after = time.monotonic() - load_end
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
        time.sleep(3.0)  # anything late (a redelivery, a re-published journal) would show as doubled now
        rows = self.usage_rows(phase.name)
        phase.rows = len(rows)
        by_sid = collections.Counter(str(s) for s, _, _ in rows if s)
        status_of = {str(s): st for s, st, _ in rows if s}
        phase.lost = sum(1 for sid in with_sid if by_sid[sid] == 0)
        unmatched = collections.Counter(st for s, st, _ in rows if not s or str(s) not in with_sid)
        phase.lost += sum(max(0, n - unmatched[st]) for st, n in expected_nosid.items())
        phase.doubled = sum(n - 1 for sid, n in by_sid.items() if n > 1)
        phase.wrong_status = sum(
            1 for sid, r in with_sid.items() if sid in status_of and status_of[sid] != r.status
        )
        phase.logged_unanswered = sum(max(0, n - expected_nosid.get(st, 0)) for st, n in unmatched.items())

    # -- report -----------------------------------------------------------------------------------------


LABELS = {
    "none": "no fault",
    "broker-stop": "broker (RabbitMQ) stopped {broker_stop} s",
    "broker-kill": "broker killed (kill -9), back after 5 s",
    "worker-kill": "Celery worker kill -9",
    "db-restart": "PostgreSQL down {db_down} s (backends killed, connections refused)",
    "uvicorn-kill": "uvicorn worker kill -9",
    "relay-restart": "graceful relay restart (SIGTERM)",
    "relay-reload": "rolling relay reload (SIGHUP)",
}
ALL = [
    "none",
    "broker-stop",
    "broker-kill",
    "worker-kill",
    "db-restart",
    "uvicorn-kill",
    "relay-restart",
    "relay-reload",
]


def table(phases: list[Phase], args) -> str:
    head = (
        "| fault | sent | answered (status: n) | cut / unanswered | usage rows | lost | doubled | wrong status "
        "| bad errors | healthy after | log complete after |"
    )
    lines = [head, "|" + "---|" * 11]
    for p in phases:
        answered = [r for r in p.results if r.status is not None and r.complete]
        by_status = collections.Counter(r.status for r in answered)
        cut = sum(1 for r in p.results if r.status is not None and not r.complete)
        unanswered = sum(1 for r in p.results if r.status is None)
        bad = sum(
            1
            for r in p.results
            if r.status is not None
            and r.status >= 400
            and (not r.json_ok or (r.status == 503 and not r.retry_after))
        )
        label = LABELS[p.fault].format(broker_stop=6 if args.quick else 20, db_down=5 if args.quick else 10)
        ready = f"{p.ready_after:.1f} s" if p.ready_after is not None else "—"
        complete = (
            f"{p.log_complete_after:.1f} s" if p.log_complete_after is not None else "not within timeout"
        )
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(by_status.items()))
        lines.append(
            f"| {label} | {len(p.results):,} | {len(answered):,} ({statuses}) | {cut} / {unanswered} | "
            f"{p.rows:,} | {p.lost} | {p.doubled} | {p.wrong_status} | {bad} | {ready} | {complete} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short form (CI)")
    parser.add_argument("--only", default="", help=f"comma-separated faults of: {','.join(ALL)}")
    parser.add_argument("--rate", type=float, default=0, help="requests per second (default 40; quick 25)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=0, help="load per phase (default 40; quick 16)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("FAULT_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (a database of this run's own is created there)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and the work directory")
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args(argv)
    args.rate = args.rate or (25 if args.quick else 40)
    faults = [f for f in args.only.split(",") if f] or ALL
    for f in faults:
        if f not in LABELS:
            parser.error(f"unknown fault {f!r}")
    run = Run(args)
    phases: list[Phase] = []
    try:
        run.start()
        for fault in faults:
            phases.append(run.run_phase(fault))
            p = phases[-1]
            say(
                f"  {fault}: sent {len(p.results)}, rows {p.rows}, lost {p.lost}, doubled {p.doubled}"
                + (f" ({'; '.join(p.notes)})" if p.notes else "")
            )
            if not run.wait_ready(120) or not run.wait_worker(60):
                say("the system did not come back: stopping")
                break
    finally:
        run.stop()
    print()
    print(table(phases, args))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "fault": p.fault,
                        "sent": len(p.results),
                        "answered": dict(
                            collections.Counter(str(r.status) for r in p.results if r.status and r.complete)
                        ),
                        "cut": sum(1 for r in p.results if r.status is not None and not r.complete),
                        "unanswered": sum(1 for r in p.results if r.status is None),
                        "rows": p.rows,
                        "lost": p.lost,
                        "doubled": p.doubled,
                        "wrong_status": p.wrong_status,
                        "ready_after": p.ready_after,
                        "log_complete_after": p.log_complete_after,
                        "notes": p.notes,
                    }
                    for p in phases
                ],
                indent=1,
            )
        )
    bad = [p.fault for p in phases if p.lost or p.doubled]
    if bad or len(phases) < len(faults):
        print(f"\nFAILED: {', '.join(bad) or 'not every phase ran'}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
