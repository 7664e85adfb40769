"""The production path's pieces (issue #13): migrate alone prepares a database, the production .env passes
`check --deploy`, static files without collectstatic degrade instead of 500, secrets on demand, and the
session-log levels."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env_extra: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "CACHE_URL",
            "CELERY_BROKER_URL",
            "DEBUG",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        )
    }
    env.update(env_extra)
    run = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert not check or run.returncode == 0, run.stdout + run.stderr
    return run


def test_migrate_alone_creates_the_session_store_cache_tables(tmp_path):
    db = tmp_path / "fresh.sqlite3"
    manage(
        "migrate",
        "--noinput",
        "-v",
        "0",
        env_extra={"DATABASE_URL": f"sqlite:///{db}", "DEBUG": "1", "ENV_FILE": str(tmp_path / "none.env")},
    )
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"django_cache", "relay_session_cache"} <= tables


def _production_env(tmp_path) -> Path:
    out = subprocess.run(
        [sys.executable, "scripts/make_env.py", "--production", "relay.example.com"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DEBUG=0" in out and "SECURE_HSTS_SECONDS=31536000" in out
    env_file = tmp_path / "prod.env"
    keep = [
        line
        for line in out.splitlines()
        if not line.startswith(("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"))
    ]
    env_file.write_text(
        "\n".join(
            keep
            + [
                f"DATABASE_URL=sqlite:///{tmp_path / 'db.sqlite3'}",
                "CACHE_URL=dbcache://django_cache",
                f"STATIC_ROOT={tmp_path / 'static'}",
            ]
        )
        + "\n"
    )
    return env_file


def test_the_documented_production_settings_pass_check_deploy(tmp_path):
    env_file = _production_env(tmp_path)
    before = manage("check", "--deploy", env_extra={"ENV_FILE": str(env_file)})
    # Only the reminder that static files are not collected yet (a step of `make prod`)...
    assert "sequrity.W001" in before.stderr and before.stderr.count("(security.") == 0, before.stderr
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    after = manage("check", "--deploy", env_extra={"ENV_FILE": str(env_file)})
    assert "System check identified no issues (0 silenced)" in after.stdout, after.stdout + after.stderr


def test_secrets_are_printed_fresh():
    run = [sys.executable, "scripts/make_env.py", "--secrets"]
    one = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    two = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split("=")[0] for line in one] == ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"]
    assert one != two and len(one[0]) > 60
    from cryptography.fernet import Fernet

    Fernet(one[1].split("=", 1)[1])  # a valid key


@pytest.mark.django_db
def test_debug_off_without_collectstatic_pages_still_render(client, tmp_path, settings):
    """No manifest: plain static URLs served from static/, the 404 page renders (no 500 anywhere)."""
    from sequrity_site.storage import StaticStorage

    StaticStorage._warned = False
    with override_settings(
        DEBUG=False,
        STATIC_ROOT=str(tmp_path / "empty"),
        WHITENOISE_USE_FINDERS=True,
        STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": "sequrity_site.storage.StaticStorage"}},
    ):
        login = client.get("/accounts/login/")
        assert login.status_code == 200
        assert "/static/css/app.css" in login.content.decode()
        missing = client.get("/no-such-page/")
        assert missing.status_code == 404 and b"<html" in missing.content.lower()
        css = client.get("/static/css/app.css")
        assert css.status_code == 200
        assert b"".join(css.streaming_content) if hasattr(css, "streaming_content") else css.content


# --- session-log levels (relay.session_log) -----------------------------------------------------------------


def _steps():
    from relay.session_log import redact

    steps = {
        "tool_result": {
            "type": "tool_result",
            "data": {"call_id": "c", "tool": "t", "content": "secret result", "meta": {"tags": ["pii"]}},
        },
        "tool_call": {
            "type": "tool_call",
            "data": {
                "tool": "t",
                "args": {"q": {"value": "x", "meta": {}}},
                "verdict": "allowed",
                "record": {"args": {"q": 1}},
            },
        },
        "final": {
            "type": "final",
            "data": {"status": "success", "final_return_value": {"value": 42, "meta": {}}},
        },
        "user_message": {"type": "user_message", "data": {"text": "hello"}},
        "llm_call": {"type": "llm_call", "data": {"model": "m", "prompt_tokens": 3}},
    }
    return redact, steps


def test_full_keeps_everything():
    redact, steps = _steps()
    for step in steps.values():
        assert redact(step, "full") == step


def test_metadata_only_drops_tool_result_content_keeps_the_rest():
    redact, steps = _steps()
    result = redact(steps["tool_result"], "metadata")["data"]
    assert (
        "content" not in result and result["meta"] == {"tags": ["pii"]} and result["withheld"] == "metadata"
    )
    assert result["size"] == len("secret result")
    for kind in ("tool_call", "final", "user_message", "llm_call"):
        assert redact(steps[kind], "metadata") == steps[kind]
    assert steps["tool_result"]["data"]["content"] == "secret result"  # the input is never changed


def test_nothing_keeps_only_the_structure():
    redact, steps = _steps()
    assert redact(steps["tool_result"], "none")["data"] == {
        "call_id": "c",
        "tool": "t",
        "size": 13,
        "withheld": "none",
    }
    call = redact(steps["tool_call"], "none")["data"]
    assert (
        call["args"] == {"q": {"withheld": True}}
        and call["verdict"] == "allowed"
        and "args" not in call["record"]
    )
    assert "final_return_value" not in redact(steps["final"], "none")["data"]
    assert "text" not in redact(steps["user_message"], "none")["data"]
    assert redact(steps["llm_call"], "none") == steps["llm_call"]
    assert redact(steps["tool_result"], "bogus") == redact(steps["tool_result"], "metadata")


def test_check_deploy_runs_before_the_metrics_directory_exists(tmp_path):
    """`make prod` runs `check --deploy` (which loads the URLs, and so the metrics) before the web process has
    prepared PROMETHEUS_MULTIPROC_DIR: the check must not fail on the missing directory."""
    env_file = _production_env(tmp_path)
    metrics_dir = tmp_path / "not-yet" / "prometheus"
    manage("check", env_extra={"ENV_FILE": str(env_file), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    assert metrics_dir.is_dir()
