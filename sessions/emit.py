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
import atexit
import json
import logging
import os
import signal
import sys
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
_flusher_tasks: dict[int, asyncio.Task] = {}
_thread: threading.Thread | None = None
_hooks_installed = False
_stopping = False  # the server process is shutting down (see install_shutdown_hooks)


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
    if _stopping:  # the server is shutting down: straight to disk (the process may be gone before a publish)
        spool_buffered()
        return
    _ensure_flusher()


def _ensure_flusher() -> None:
    global _thread
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        task = _flusher_tasks.get(id(loop))
        # (an id can be reused by a later loop once the first is gone: check the task is this loop's, alive)
        if task is None or task.done() or task.get_loop() is not loop:
            _flusher_tasks[id(loop)] = loop.create_task(_flush_forever_async())
            install_shutdown_hooks()
        return
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_flush_forever_thread, name="log-flusher", daemon=True)
        _thread.start()


async def _flush_forever_async() -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        if _stopping:
            spool_buffered()
        elif _buffer or _spool_has_data():
            await asyncio.to_thread(flush)


def _flush_forever_thread() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL)
        if _buffer or _spool_has_data():
            flush()


def install_shutdown_hooks() -> None:
    """In a server process (uvicorn), make a stop lose no event: the buffer (up to ``FLUSH_INTERVAL`` of
    events) and whatever the requests still running emit go to the spool, which the next flush of any process
    publishes (events are idempotent). Idempotent; a no-op elsewhere (a test or management process must not
    leave events behind for a server to publish).

    uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again with the default handler, which
    ends the process at once: no ``atexit``, and a publish that had not happened yet never does. So the
    signal handler in place (uvicorn's) is wrapped: from the signal on, events are written to the spool as
    they are emitted. ``atexit`` covers the other ways a server ends."""
    global _hooks_installed
    if _hooks_installed or "uvicorn" not in sys.modules:
        return
    _hooks_installed = True
    atexit.register(spool_buffered)
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue  # not a server's handler (default or ignored): leave it alone

        def handler(signum, frame, previous=previous):
            _begin_stopping(loop)
            previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not the main thread after all
            return


def _begin_stopping(loop) -> None:
    """Called in a signal handler: no lock taken here; the buffer is spooled from the event loop."""
    global _stopping
    _stopping = True
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(spool_buffered)


def spool_buffered() -> int:
    """Append the buffered events to this process's spool file (published by a later ``flush``)."""
    batch = _take()
    if not batch:
        return 0
    try:
        with _spool_lock, _spool_path().open("a") as fh:
            for event in batch:
                fh.write(json.dumps(event) + "\n")
    except OSError:
        logger.exception("could not spool %d log events", len(batch))
        with _lock:
            _buffer[:0] = batch  # keep them for a later attempt
        return 0
    return len(batch)


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
_spool_lock = threading.Lock()
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
        with _spool_lock:  # (this process's appends to its spool file wait: none lands in a claimed file)
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
            with _spool_lock, _spool_path().open("a") as fh:
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


install_shutdown_hooks()  # imported while uvicorn loads the app: its signal handlers are in place by now
