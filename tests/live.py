"""Real processes for end-to-end tests: uvicorn serving the ASGI app, and a Celery worker.

Both run against the test database (a SQLite file or the PostgreSQL test database), so tests that use
them need ``transactional_db`` (data must be committed to be seen by another process).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """A DATABASE_URL naming the database the tests are using right now."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "DEBUG": "1",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEY),
            "PYTHONPATH": str(ROOT),
            "LOG_SPOOL_DIR": str(settings.LOG_SPOOL_DIR),
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class LiveProcess:
    proc: subprocess.Popen
    url: str = ""
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


def start_uvicorn(env_extra: dict[str, str], *, workers: int = 1, log_dir: Path) -> LiveProcess:
    port = free_port()
    log_path = log_dir / f"uvicorn-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "sequrity_site.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "2",
    ]
    fh = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(**env_extra), stdout=fh, stderr=subprocess.STDOUT)
    live = LiveProcess(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{live.log()}")
        try:
            if httpx.get(live.url + "/control/health", timeout=1).status_code == 200:
                return live
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    live.stop()
    raise RuntimeError(f"uvicorn did not become healthy:\n{live.log()}")


def start_celery_worker(env_extra: dict[str, str], *, log_dir: Path) -> LiveProcess:
    """A real worker (needs CELERY_BROKER_URL); waits until it answers a ping."""
    log_path = log_dir / f"celery-{time.time_ns()}.log"
    fh = log_path.open("w")
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "sequrity_site",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{os.getpid()}-{time.time_ns()}@localhost",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(**env_extra), stdout=fh, stderr=subprocess.STDOUT)
    live = LiveProcess(proc, log_path=log_path)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{live.log()}")
        if "ready." in live.log():
            return live
        time.sleep(0.2)
    live.stop()
    raise RuntimeError(f"celery worker did not start:\n{live.log()}")
