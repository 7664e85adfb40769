"""The production web process (the Procfile's ``web``): uvicorn serving the ASGI app with N workers.

    python -m sequrity_site.serve        # HOST, PORT, WEB_CONCURRENCY (workers) from the environment / .env

With metrics on (``METRICS_ENABLED`` or ``METRICS_TOKEN``) it points ``PROMETHEUS_MULTIPROC_DIR`` at an emptied
directory (default ``var/prometheus``) before the workers start, so ``/metrics`` sums every worker's samples.
``X-Forwarded-*`` headers are trusted from ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1: a proxy on this host).
Under ``sequrity_site.supervise --listen`` it serves the supervisor's socket (``SEQURITY_LISTEN_FD``), so a
restart queues connections instead of refusing them; SIGHUP replaces the workers one at a time.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def listen_args(env: environ.Env) -> list[str]:
    inherited = os.environ.get("SEQURITY_LISTEN_FD", "")
    if inherited:
        return ["--fd", inherited]
    return ["--host", env.str("HOST", default="127.0.0.1"), "--port", str(env.int("PORT", default=8000))]


def uvicorn_args(env: environ.Env) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "sequrity_site.asgi:application",
        *listen_args(env),
        "--workers",
        str(env.int("WEB_CONCURRENCY", default=2)),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",  # our access log has the request ids
        "--proxy-headers",
        "--forwarded-allow-ips",
        env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1"),
        "--h11-max-incomplete-event-size",
        "131072",
        "--timeout-graceful-shutdown",
        "10",
    ]


def prepare_metrics_dir(env: environ.Env) -> None:
    if not (env.bool("METRICS_ENABLED", default=False) or env.str("METRICS_TOKEN", default="")):
        return
    directory = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(BASE_DIR / "var" / "prometheus")))
    shutil.rmtree(directory, ignore_errors=True)  # samples of a previous run's (dead) processes
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def main() -> None:
    env = environ.Env()
    environ.Env.read_env(os.environ.get("ENV_FILE") or BASE_DIR / ".env", overwrite=False)
    prepare_metrics_dir(env)
    args = uvicorn_args(env)
    os.chdir(BASE_DIR)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
