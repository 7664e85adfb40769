"""A process that emits or publishes log events, for tests/sessions/test_journal.py.

    python tests/sessions/journal_child.py writer N EMITTED PUBLISHED FAIL_RATE [LINGER]
        emits N events (each id appended to EMITTED once ``emit`` returned); its flusher's publishes fail with
        probability FAIL_RATE (1: the broker is down for it), the others append the ids to PUBLISHED; then
        stays alive LINGER seconds
    python tests/sessions/journal_child.py flusher STOP PUBLISHED
        flushes in a loop (adopting the journals of processes that are gone), appending every published id to
        PUBLISHED, until the file STOP exists; then flushes a last few times

Both need LOG_SPOOL_DIR; settings are the tests' (no database is touched).
"""

from __future__ import annotations

import os
import random
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings_test")
os.environ.setdefault("DEBUG", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import django  # noqa: E402

django.setup()

from sessions import emit as log  # noqa: E402


def appender(path: str):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(ids) -> None:
        data = "".join(f"{i}\n" for i in ids).encode()
        if data:
            os.write(fd, data)  # one write per batch: a kill cannot tear it

    return write


def main() -> None:
    mode = sys.argv[1]
    if mode == "writer":
        n, emitted, published, fail_rate = int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
        record_emitted, record_published = appender(emitted), appender(published)

        def publish(batch):
            if random.random() < fail_rate:
                raise ConnectionError("broker down")
            record_published(e["event_id"] for e in batch)

        log._publish = publish
        print("ready", flush=True)
        for i in range(n):
            ev = log.emit("usage", key_id=1, session_id=None, n=i, pid=os.getpid())
            record_emitted([ev["event_id"]])
            if i % 100 == 0:
                time.sleep(0.002)  # let the flushers run in between
        print("done", flush=True)
        time.sleep(float(sys.argv[6]) if len(sys.argv) > 6 else 0)
    elif mode == "flusher":
        stop, published = sys.argv[2], sys.argv[3]
        record_published = appender(published)
        log._publish = lambda batch: record_published(e["event_id"] for e in batch)
        print("ready", flush=True)
        while not os.path.exists(stop):
            log.flush()
            time.sleep(0.005)
        for _ in range(3):
            log.flush()
        print("done", flush=True)


if __name__ == "__main__":
    main()
