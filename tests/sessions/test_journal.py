"""The usage log's journal (``sessions.emit``): per-process files that only their owner appends to, adopted by
another process only once their owner is gone (issue #18 items 1 and 2).

- Two processes append (their broker down, or flapping) while a third flushes in a loop, one writer is killed
  mid-way: every event emitted is published, none twice.
- A relay process killed with SIGKILL right after answering: its events are published by the next flusher.
- Requests refused because the database was down before the key could be checked are logged once it is back,
  for the key the secret belongs to (and not at all for a secret that is no key).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sessions import emit as log

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("journal_child.py")

pytestmark = pytest.mark.timeout(180)


def _child(*args: str, spool: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "LOG_SPOOL_DIR": str(spool),
        "DJANGO_SETTINGS_MODULE": "sequrity_site.settings_test",
        "DEBUG": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_two_writers_and_a_flusher_lose_nothing_and_double_nothing(tmp_path):
    spool = tmp_path / "spool"
    out = {name: tmp_path / name for name in ("a.emitted", "b.emitted", "pub.a", "pub.b", "pub.f", "stop")}
    flusher = _child("flusher", str(out["stop"]), str(out["pub.f"]), spool=spool)
    # a: the broker flaps (half its publishes fail); b: the broker is down for it, and it is killed mid-way
    a = _child("writer", "6000", str(out["a.emitted"]), str(out["pub.a"]), "0.5", spool=spool)
    b = _child("writer", "200000", str(out["b.emitted"]), str(out["pub.b"]), "1", spool=spool)
    try:
        time.sleep(1.0)
        b.send_signal(signal.SIGKILL)
        b.wait(timeout=10)
        assert a.stdout.readline().strip() == "done"
        a.wait(timeout=30)
        time.sleep(2 * log.ADOPT_INTERVAL)
        out["stop"].touch()
        assert flusher.stdout.readline().strip() == "done"
        flusher.wait(timeout=30)
    finally:
        for p in (a, b, flusher):
            if p.poll() is None:
                p.kill()
                p.wait()
    emitted_a, emitted_b = _ids(out["a.emitted"]), _ids(out["b.emitted"])
    published = Counter(_ids(out["pub.a"]) + _ids(out["pub.b"]) + _ids(out["pub.f"]))
    assert len(emitted_a) == 6000 and len(emitted_b) > 1000, (len(emitted_a), len(emitted_b))
    assert not _ids(out["pub.b"])  # b never reached the broker: everything of b went through the flusher
    lost = [i for i in emitted_a + emitted_b if i not in published]
    doubled = [i for i, n in published.items() if n > 1]
    assert (len(lost), len(doubled)) == (0, 0), (lost[:5], doubled[:5])
    # b may have been killed between its emit and recording the id: at most that one event is extra
    assert len(set(published) - set(emitted_a) - set(emitted_b)) <= 1
    assert not [p for p in spool.iterdir() if p.name.startswith("events-")]  # all published, all deleted


def test_a_journal_is_not_adopted_while_its_owner_lives(tmp_path, settings, monkeypatch):
    """The owner holds the lock: another process's flush skips its file, however long it is there; once the
    owner is gone (here: SIGKILL) the next flush takes it."""
    spool = tmp_path / "spool"
    settings.LOG_SPOOL_DIR = spool
    log.flush()
    writer = _child(
        "writer", "300", str(tmp_path / "emitted"), str(tmp_path / "pub.w"), "1", "60", spool=spool
    )
    published: list[dict] = []
    try:
        assert writer.stdout.readline().strip() == "done"
        monkeypatch.setattr(log, "_publish", published.extend)
        log.flush()
        assert published == [] and len(list(spool.glob("events-*.jsonl"))) == 1
    finally:
        writer.kill()
        writer.wait(timeout=10)
    log.flush()
    assert sorted(e["n"] for e in published) == list(range(300))
    assert not list(spool.glob("events-*"))


@pytest.mark.django_db(transaction=True)
def test_relay_killed_right_after_answering_loses_nothing(
    fake_upstream, artifacts_dir, tmp_path, monkeypatch, settings
):
    """uvicorn answers, with its broker unreachable (its events can only be in its journal), and is killed
    with SIGKILL: the next flusher (here: this process's) publishes them, once."""
    import httpx

    from sessions import services
    from sessions.models import RelaySession, UsageEvent
    from tests import fake_upstream as fu
    from tests.conftest import _relay_env
    from tests.factories import UserFactory, make_key
    from tests.live import start_uvicorn

    spool = tmp_path / "relay-spool"
    _, secret = make_key(UserFactory(), arch="single-llm")
    relay = start_uvicorn(
        {
            **_relay_env(fake_upstream),
            "LOG_SPOOL_DIR": str(spool),
            "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:9//",
        },
        log_dir=artifacts_dir,
    )
    try:
        headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": "k"}
        sids = []
        for stream in (False, True):
            fake_upstream.push(fu.text("answered", usage=(21, 3)))
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            r = httpx.post(
                f"{relay.url}/control/chat/v1/chat/completions", json=body, headers=headers, timeout=10
            )
            assert r.status_code == 200 and "answered" in r.text
            sids.append(r.headers["x-session-id"])
        relay.proc.send_signal(signal.SIGKILL)
        relay.proc.wait(timeout=10)
    finally:
        relay.stop()
    lines = [json.loads(line) for p in spool.glob("events-*.jsonl") for line in p.read_text().splitlines()]
    assert {e["session_id"] for e in lines if e["kind"] == "usage"} == set(sids)

    settings.LOG_SPOOL_DIR = spool
    monkeypatch.setattr(log, "_publish", services.do_record_events)  # whatever the broker of this run
    log.flush()
    log.flush()
    rows = list(UsageEvent.objects.filter(session_id__in=sids))
    assert sorted(str(r.session_id) for r in rows) == sorted(sids)
    assert all((r.status_code, r.prompt_tokens, r.completion_tokens) == (200, 21, 3) for r in rows)
    assert RelaySession.objects.filter(id__in=sids).count() == 2
    assert not list(spool.glob("events-*"))
    log.flush()  # published once: a later flush finds nothing more
    assert UsageEvent.objects.filter(session_id__in=sids).count() == 2


def test_requests_refused_with_the_database_down_are_logged_when_it_is_back(
    db, settings, tmp_path, monkeypatch
):
    from django.db import OperationalError

    from apikeys.models import ApiKey
    from tests.factories import UserFactory, make_key

    settings.LOG_SPOOL_DIR = tmp_path / "spool"
    log.flush()
    key, secret = make_key(UserFactory(), arch="single-llm")
    published: list[dict] = []
    monkeypatch.setattr(log, "_publish", published.extend)
    fields = dict(
        session_id=None,
        endpoint_type="chat",
        api="chat",
        provider="openrouter",
        arch="",
        models=[],
        prompt_tokens=0,
        completion_tokens=0,
        latency_ms=1.5,
        status_code=503,
        error_kind="database",
        streamed=False,
    )
    good = log.emit_unauthenticated(secret, **fields)
    assert log.emit_unauthenticated(secret[:-4] + "AAAA", **fields) is not None  # its prefix, not its secret
    assert log.emit_unauthenticated("not-a-key", **fields) is None
    pending = (tmp_path / "spool").glob("pending-*.jsonl")
    assert secret not in "".join(p.read_text() for p in pending)  # the secret is never written

    real_filter = ApiKey.objects.filter

    def database_down(*a, **kw):
        raise OperationalError("the database is down")

    monkeypatch.setattr(ApiKey.objects, "filter", database_down)
    log.flush()
    log.flush()
    assert published == []  # kept while the database is away

    monkeypatch.setattr(ApiKey.objects, "filter", real_filter)
    log.flush()
    log.flush()
    assert [(e["event_id"], e["key_id"], e["status_code"]) for e in published] == [
        (good["event_id"], key.pk, 503)
    ]
    assert "key_hash" not in published[0] and "key_prefix" not in published[0]
    log.flush()
    assert len(published) == 1
