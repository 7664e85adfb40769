"""Non-blocking emission of log events (usage, session life) from the relay's request path.

``emit(kind, event)`` appends to an in-process buffer and returns at once. A background flusher (one
asyncio task per event loop, or a daemon thread outside one) publishes batches to Celery every
``FLUSH_INTERVAL`` seconds or ``BATCH_SIZE`` events, off the event loop. When publishing fails (broker
down), the batch is appended to a local spool file (``LOG_SPOOL_DIR``) and re-published on a later flush,
so nothing is lost while the broker or the worker is down: Redis keeps queued messages while the worker is
down; the spool keeps them while Redis is. Tasks are idempotent by ``event_id``, so a batch published
twice (e.g. after a crash between publish and spool truncation) is stored once.

Without a broker (``CELERY_TASK_ALWAYS_EAGER``) the flusher runs the task in a worker thread, so the
request path never waits on the database either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
BATCH_SIZE = 200

_buffer: list[dict] = []
_lock = threading.Lock()
_flusher_started: set[int] = set()
_thread: threading.Thread | None = None


def new_event(kind: str, **fields) -> dict:
    return {"kind": kind, "event_id": str(uuid.uuid4()), "created_at": timezone.now().isoformat(), **fields}


def emit(kind: str, **fields) -> dict:
    """Queue one event for the log; never blocks on the broker or the database.

    Called inside a database transaction (synchronous code in ``atomic``), the event is queued only when the
    transaction commits, so a rolled-back change never leaves a log event behind.
    """
    event = new_event(kind, **fields)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _queue(event))
    else:
        _queue(event)
    return event


def _queue(event: dict) -> None:
    with _lock:
        _buffer.append(event)
    _ensure_flusher()


def _ensure_flusher() -> None:
    global _thread
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        if id(loop) not in _flusher_started:
            _flusher_started.add(id(loop))
            loop.create_task(_flush_forever_async())
        return
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_flush_forever_thread, name="log-flusher", daemon=True)
        _thread.start()


async def _flush_forever_async() -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        if _buffer or _spool_has_data():
            await asyncio.to_thread(flush)


def _flush_forever_thread() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL)
        if _buffer or _spool_has_data():
            flush()


def _take() -> list[dict]:
    with _lock:
        batch = _buffer[:]
        _buffer.clear()
    return batch


def _spool_path() -> Path:
    directory = Path(getattr(settings, "LOG_SPOOL_DIR", settings.BASE_DIR / "var" / "spool"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"events-{os.getpid()}.jsonl"


def _spool_has_data() -> bool:
    directory = Path(getattr(settings, "LOG_SPOOL_DIR", settings.BASE_DIR / "var" / "spool"))
    try:
        return any(p.stat().st_size for p in directory.glob("events-*"))
    except OSError:
        return False


_flush_lock = threading.Lock()
_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError)
try:
    from kombu.exceptions import OperationalError as _KombuOperationalError

    _BROKER_ERRORS += (_KombuOperationalError,)
except ImportError:  # pragma: no cover
    pass


def _publish(batch: list[dict]) -> None:
    from .tasks import record_events

    for start in range(0, len(batch), BATCH_SIZE):
        record_events.delay(batch[start : start + BATCH_SIZE])


def _claimed_by_live_process(path: Path) -> bool:
    """A file another running process has claimed is its business; one left by a dead process is ours."""
    try:
        pid = int(path.name.rsplit(".claimed-", 1)[1].split("-")[0])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def flush() -> int:
    """Publish buffered and spooled events; returns how many were published. Thread-safe.

    Spool files are claimed by renaming and deleted only after their events were published; a claimed file
    left by a crash is picked up again by the next flush (events are idempotent, so a repeat is harmless).
    """
    with _flush_lock:
        batch = _take()
        spooled: list[dict] = []
        claimed_files: list[Path] = []
        directory = _spool_path().parent
        for path in sorted(directory.glob("events-*.jsonl")) + sorted(directory.glob("events-*.claimed-*")):
            if ".claimed-" in path.name:
                if _claimed_by_live_process(path):
                    continue
                claimed = path
            else:
                claimed = path.with_name(f"{path.stem}.claimed-{os.getpid()}-{uuid.uuid4().hex[:8]}")
                try:
                    path.rename(claimed)
                except OSError:
                    continue
            try:
                with claimed.open() as fh:
                    spooled.extend(json.loads(line) for line in fh if line.strip())
            except (OSError, ValueError):
                continue
            claimed_files.append(claimed)
        events = spooled + batch
        if not events:
            return 0
        try:
            _publish(events)
        except _BROKER_ERRORS:  # broker unreachable: keep everything on disk for the next flush
            logger.warning("log broker unavailable; spooling %d events", len(events), exc_info=True)
            with _spool_path().open("a") as fh:
                for event in events:
                    fh.write(json.dumps(event) + "\n")
            for claimed in claimed_files:  # only now that their events are back in the spool
                claimed.unlink(missing_ok=True)
            return 0
        except Exception:  # eager mode runs the task here; its own failures are not a reason to spool
            logger.exception("recording %d events failed", len(events))
        for claimed in claimed_files:
            claimed.unlink(missing_ok=True)
        return len(events)
