"""The production smoke test (issue #13): the documented production path on a fresh PostgreSQL database.

`make prod` with a .env from `scripts/make_env.py --production` (plus this machine's URLs): migrate,
collectstatic, `check --deploy`, then honcho runs the Procfile (uvicorn with 2 workers, a Celery worker,
beat) with DEBUG off. Chromium signs up and creates a key; the official `sequrity` client makes one relay
request against the fake upstream; `/metrics` (behind its token, summed over both workers) shows it; the
Celery worker has written its usage row; then everything is stopped, and no process of it is left.

TLS is ended by a reverse proxy in production; here the browser sends the proxy's `X-Forwarded-Proto: https`
itself. Runs when SEQURITY_PROD_SMOKE=1 (`.ci/run` sets it) with PostgreSQL and Redis on this machine
(SMOKE_POSTGRES_URL, SMOKE_REDIS_URL).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests import fake_upstream as fu
from tests.live import free_port

pytestmark = [pytest.mark.production, pytest.mark.timeout(420)]
if not os.environ.get("SEQURITY_PROD_SMOKE"):
    pytest.skip(
        "the production smoke test runs with SEQURITY_PROD_SMOKE=1 (.ci/run sets it)", allow_module_level=True
    )

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "production"
PG = os.environ.get("SMOKE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("SMOKE_REDIS_URL", "redis://127.0.0.1:6379")
METRICS_TOKEN = "smoke-metrics-token-0123456789abcdef"


def _psql(dbname: str, *statements: str):
    import psycopg

    with psycopg.connect(f"{PG}/{dbname}", autocommit=True) as conn:
        rows = None
        for sql in statements:
            cur = conn.execute(sql)
            rows = cur.fetchall() if cur.description else None
        return rows


def _processes_with(marker: str) -> list[int]:
    """Pids whose environment names this run's env file (every process `make prod` started)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _redis_flush(db: int) -> None:
    import redis

    redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


@pytest.fixture
def production(tmp_path, fake_upstream):
    """`make prod` with a production .env; yields (base URL, log path); stops everything afterwards."""
    db = f"sequrity_prod_smoke_{os.getpid()}"
    _psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}")
    for n in (12, 13):
        _redis_flush(n)
    port = free_port()
    env_file = tmp_path / "production.env"
    base = subprocess.run(
        [sys.executable, "scripts/make_env.py", "--production", "localhost", "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    overrides = {
        "DATABASE_URL": f"{PG}/{db}",
        "CELERY_BROKER_URL": f"{REDIS}/12",
        "CACHE_URL": f"{REDIS}/13",
        "CELERY_TASK_DEFAULT_QUEUE": f"smoke-{os.getpid()}",
        "CELERY_CONCURRENCY": "1",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": f"http://localhost:{port}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "METRICS_TOKEN": METRICS_TOKEN,
        "STATIC_ROOT": str(tmp_path / "static"),
        "LOG_SPOOL_DIR": str(tmp_path / "spool"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule"),
        **fake_upstream.base_urls(),
    }
    lines = [line for line in base.splitlines() if line.split("=", 1)[0] not in overrides]
    env_file.write_text("\n".join(lines + [f"{k}={v}" for k, v in overrides.items()]) + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "DEBUG",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
            "LOG_SPOOL_DIR",
            "PROMETHEUS_MULTIPROC_DIR",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            "ENV_FILE",
        )
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "make-prod.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        ["make", "prod", f"ENV_FILE={env_file}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"make prod exited:\n{log_path.read_text()[-4000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/control/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready:\n{log_path.read_text()[-4000:]}"
            time.sleep(0.5)
        yield url, log_path, db
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        deadline = time.monotonic() + 20
        while _processes_with(str(env_file)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _processes_with(str(env_file))
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            _psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        finally:
            for n in (12, 13):
                _redis_flush(n)
        assert not left, f"processes left running after stopping make prod: {left}"


def test_production_path_end_to_end(production, browser, fake_upstream):
    url, log_path, db = production
    log = log_path.read_text()
    assert "System check identified no issues" in log, log[-3000:]  # check --deploy, the documented settings
    assert "web.1" in log and "worker.1" in log and "beat.1" in log

    # DEBUG is off and static files are collected: hashed, compressed, cached for ever; the 404 page renders.
    login = httpx.get(f"{url}/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert login.status_code == 200
    css = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', login.text)
    assert css, "stylesheets are the hashed names from collectstatic"
    static = httpx.get(url + css.group(1), headers={"X-Forwarded-Proto": "https"})
    assert static.status_code == 200 and "immutable" in static.headers.get("cache-control", "")
    missing = httpx.get(f"{url}/no-such-page/", headers={"X-Forwarded-Proto": "https"})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert httpx.get(f"{url}/accounts/login/").status_code == 301  # plain HTTP goes to HTTPS
    assert "strict-transport-security" in login.headers

    # Chromium signs up and creates a key.
    context = browser.new_context(
        base_url=url,
        extra_http_headers={"X-Forwarded-Proto": "https"},
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto("/accounts/signup/")
        page.fill("#id_username", "operator")
        page.fill("#id_password1", "a-long-Passphrase-77")
        page.fill("#id_password2", "a-long-Passphrase-77")
        page.click("button[type=submit]")
        page.wait_for_url("**/keys/")
        page.click("text=Create your first key")
        page.fill("#id_name", "Smoke")
        page.locator("label.option-card[data-arch=single-llm]").click()
        page.click("#create-key-form button[type=submit]")
        page.wait_for_url(re.compile(r"/keys/\d+/created/$"))
        secret = page.input_value("#secret-value")
        page.screenshot(path=str(ARTIFACTS / "key-created.png"))
    finally:
        context.close()
    assert secret.startswith("sq-")

    # One relay request through the official client, against the fake upstream.
    from sequrity import SequrityClient
    from sequrity.control import FeaturesHeader

    fake_upstream.push(fu.text("hello from production", usage=(21, 8)))
    client = SequrityClient(api_key=secret, base_url=url)
    r = client.control.chat.create(
        messages=[{"role": "user", "content": "hi"}],
        model="openai/gpt-5-mini",
        llm_api_key="sk-byok",
        features=FeaturesHeader.single_llm(),
    )
    assert r.choices[0].message.content == "hello from production"

    # /metrics: behind its token, summed over the two worker processes.
    assert httpx.get(f"{url}/metrics").status_code == 401
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    sample = re.search(r"sequrity_relay_requests_total\{([^}]*)\} ([0-9.e+]+)", metrics)
    assert sample and 'status="200"' in sample.group(1) and 'arch="single-llm"' in sample.group(1), metrics[
        :3000
    ]
    assert float(sample.group(2)) >= 1
    assert "sequrity_upstream_duration_seconds_count" in metrics

    # The Celery worker of the production command stored the request's usage.
    deadline = time.monotonic() + 30
    rows = None
    while time.monotonic() < deadline:
        rows = _psql(
            db, "SELECT prompt_tokens, completion_tokens, status_code FROM agent_sessions_usageevent"
        )
        if rows:
            break
        time.sleep(0.3)
    assert rows == [(21, 8, 200)], rows
