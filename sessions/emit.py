"""Durable, non-blocking emission of log events (usage, session life) from the relay's request path.

``emit(kind, **fields)`` appends the event, one JSON line, to this process's **journal** and returns: the
line is in the kernel once ``emit`` returns, so an event emitted before an answer is sent survives the
process being killed right after (SIGKILL, OOM, a crash, a restart). A flusher (one asyncio task per event
loop handing the work to one dedicated thread, or a daemon thread outside a loop) publishes the journal to
Celery (``sessions.tasks.record_events``) every ``FLUSH_INTERVAL`` seconds, then truncates it. The journal
*is* the spool: while the broker is down, events simply stay in it (re-tried with a back-off of at most
``MAX_BACKOFF`` seconds) and are published when the broker is back.

Journals (``LOG_SPOOL_DIR``):

- one file per process at a time, ``events-<pid>-<start id>-<n>.jsonl``, created under a temporary name,
  ``flock``-ed (exclusive) by its owner and only then given its name; only its owner appends to it, reads it
  and truncates it;
- the lock is the claim: the kernel releases it when its owner exits, however it exits. Every flusher looks
  for journals whose lock it can take (their owner is gone, or closed them) every ``ADOPT_INTERVAL`` seconds,
  keeps the lock while it publishes them, and deletes them once published. A journal is never read by two
  processes, and never read while someone appends to it (issue #18, item 1: with the old rename-to-claim spool
  a flush could take a file another process was still appending to, then delete it).
- the same for ``pending-…`` journals: requests refused because the database was down *before* the key could
  be checked (``emit_unauthenticated``) are recorded with the key's prefix and the SHA-256 of the secret (what
  the database holds anyway); the flusher resolves them to the key once the database answers (dropping those
  of unknown or revoked keys) and logs them like any other request.

Durability (the fsync policy): ``emit`` writes to the page cache (no fsync on the request path: ~µs, not ms),
which covers every way a *process* can end. Against a power loss or kernel crash: a batch is handed to the
broker with publisher confirms (RabbitMQ acknowledges persistent messages once they are on its disk), and a
journal whose publish failed is ``fdatasync``-ed by the flusher, so at most the last ``FLUSH_INTERVAL``
(50 ms) of events can be lost with the machine. At shutdown (uvicorn's graceful stop, or ``atexit``) a last
flush runs; what it cannot publish stays in the journal for the next process.

Delivery is at least once (a crash between a publish and the truncation re-publishes a batch); the task is
idempotent by ``event_id``, so nothing is recorded twice. Without a broker (``CELERY_TASK_ALWAYS_EAGER``) the
flusher stores the events itself (``sessions.services``), in its thread, so the request path never waits on
the database either way.

One module, over 700 lines, because the journal's guarantees are one protocol: the segment files and their
locks, who may take a journal, the flusher's publish-then-truncate order, the fork and shutdown hooks; each
step's safety rests on the others' (tests/sessions/test_journal.py runs them against each other).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05  # seconds between publishes (also the fsync horizon of unpublished events)
BATCH_SIZE = 200  # events per task message
ADOPT_INTERVAL = 1.0  # seconds between looks for journals of processes that are gone
PENDING_INTERVAL = 1.0  # seconds between attempts to resolve requests refused while the database was down
MAX_BACKOFF = 1.0  # seconds: the longest wait between publish attempts while the broker is down
READ_CHUNK = 4 * 1024 * 1024  # bytes of journal read (and published) at a time
FINAL_FLUSH_SECONDS = 5.0  # at most this long publishing at shutdown; the rest stays in the journal

try:
    import orjson

    def _dumps(obj) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError:  # non-str keys, huge ints, exotic objects
            return json.dumps(obj, separators=(",", ":"), default=str).encode()

    _loads = orjson.loads
except ImportError:  # pragma: no cover

    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":"), default=str).encode()

    _loads = json.loads


# --------------------------------------------------------------------------------------------- journals


@dataclass(eq=False)
class _Segment:
    """One journal file this process holds the ``flock`` of (its own, or adopted from a process gone)."""

    path: Path
    fd: int
    size: int = 0  # bytes written (own segments; adopted ones: their size when adopted)
    pos: int = 0  # bytes consumed (published / resolved) so far
    synced: int = 0  # bytes known to be on disk (fdatasync)


@dataclass(eq=False)
class _Journal:
    stem: str  # "events" or "pending"
    current: _Segment | None = None  # this process appends here
    backlog: list[_Segment] = field(default_factory=list)  # retired own segments and adopted ones
    appended: int = 0  # lines appended (the flushers compare it with ``seen``)
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards ``current``: appends, truncation


_events = _Journal("events")
_pending = _Journal("pending")
_memory: list[dict] = []  # events the journal could not take (disk full, read-only): published from memory
_start_id = uuid.uuid4().hex[:8]
_names = itertools.count()

_flush_lock = threading.Lock()  # one flush at a time in a process
_flushing = threading.local()  # .active: this thread is inside ``flush``
_flusher_tasks: dict[int, asyncio.Task] = {}
_thread: threading.Thread | None = None
_executor: ThreadPoolExecutor | None = None
_retry_at = 0.0  # monotonic: no background publish before (back-off while the broker is down)
_backoff = 0.0
_next_adopt = 0.0
_next_pending = 0.0
_hooks_installed = False
_exit_hook = False
_disk_error_logged = 0.0


def _spool_dir() -> Path:
    return Path(getattr(settings, "LOG_SPOOL_DIR", settings.BASE_DIR / "var" / "spool"))


def _open_segment(stem: str) -> _Segment:
    """A new journal file, locked before it gets its name (nobody can adopt it in between)."""
    directory = _spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{stem}-{os.getpid()}-{_start_id}-{next(_names)}.jsonl"
    tmp = directory / f".{name}.tmp"
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_close_at_exit)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(tmp, directory / name)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return _Segment(directory / name, fd)


def _append(journal: _Journal, event: dict) -> None:
    _append_all(journal, [event])


def _append_all(journal: _Journal, events: list[dict]) -> None:
    """Append ``events`` to the journal in one write (one line each): all of them are in the kernel, or
    none (a short write is taken back and the events kept in memory)."""
    lines = b"".join([_dumps(event) + b"\n" for event in events])
    with journal.lock:
        try:
            seg = journal.current
            if seg is None:
                seg = journal.current = _open_segment(journal.stem)
            n = os.write(seg.fd, lines)
            if n != len(lines):  # a short write (disk full): take it back, keep the events in memory
                os.ftruncate(seg.fd, seg.size)
                raise OSError(f"short write ({n} of {len(lines)} bytes)")
            seg.size += n
            journal.appended += len(events)
        except OSError:
            for event in events:
                _journal_failed(journal, event)
            return
    if not getattr(_flushing, "active", False):  # (a flush appending resolved events: the flusher runs)
        _ensure_flusher()


def _journal_failed(journal: _Journal, event: dict) -> None:
    """The journal cannot take the event (called with ``journal.lock`` held): keep it in memory (published
    like the rest, but not durable), and say so at most once a minute."""
    global _disk_error_logged
    if journal is _events:
        _memory.append(event)
    now = time.monotonic()
    if now - _disk_error_logged > 60:
        _disk_error_logged = now
        logger.exception("log journal in %s not writable; events are kept in memory", _spool_dir())


# ------------------------------------------------------------------------------------------------ emit


def new_event(kind: str, **fields) -> dict:
    return {"kind": kind, "event_id": _event_id(), "created_at": timezone.now().isoformat(), **fields}


def _event_id() -> str:
    """``str(uuid.uuid4())``, formatted here at half the cost (one per event, several per request)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def emit(kind: str, **fields) -> dict:
    """Record one event for the log: appended to this process's journal (durable against the process dying),
    published by the flusher; never blocks on the broker or the database.

    Called inside a database transaction (synchronous code in ``atomic``), the event is written only when the
    transaction commits, so a rolled-back change never leaves a log event behind.
    """
    event = new_event(kind, **fields)
    if _in_atomic_block():
        transaction.on_commit(lambda: _append(_events, event))
    else:
        _append(_events, event)
    return event


def emit_many(events: list[tuple[str, dict]]) -> list[dict]:
    """``emit`` for several events at once, in order (a request's session steps, its session row, its usage):
    one journal write, one look at the transaction."""
    built = [new_event(kind, **fields) for kind, fields in events]
    if not built:
        return built
    if _in_atomic_block():
        transaction.on_commit(lambda: _append_all(_events, built))
    else:
        _append_all(_events, built)
    return built


def _in_atomic_block() -> bool:
    """``transaction.get_connection().in_atomic_block``, without creating the connection when this thread or
    task has none yet (then there is no transaction either): under ASGI every request's task would get
    a connection object of its own just to be asked. In a running event loop Django refuses to open a
    transaction at all (``SynchronousOnlyOperation``) unless ``DJANGO_ALLOW_ASYNC_UNSAFE`` lifts the guard."""
    if asyncio._get_running_loop() is not None and not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
        return False
    return any(
        conn.alias == DEFAULT_DB_ALIAS and conn.in_atomic_block
        for conn in connections.all(initialized_only=True)
    )


def emit_unauthenticated(secret: str, **fields) -> dict | None:
    """A usage event for a request whose key could not be checked (the database was down): kept with the
    key's prefix and the SHA-256 of the secret (as the database stores it, never the secret) until the
    flusher can resolve it to the key; dropped then if no active key has that secret. None for a string that
    is not shaped like a key (such a request is a 401 whatever the database says)."""
    from apikeys.selectors import _prefix_of

    prefix = _prefix_of(secret)
    if prefix is None:
        return None
    event = new_event(
        "usage", key_prefix=prefix, key_hash=hashlib.sha256(secret.encode()).hexdigest(), **fields
    )
    _append(_pending, event)
    return event


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


def _due() -> bool:
    """Cheap: is there anything for a background flush to do now?"""
    now = time.monotonic()
    if now < _retry_at:
        return False
    return bool(
        _events.appended != _events.seen
        or _events.backlog
        or _memory
        or now >= _next_adopt
        or (now >= _next_pending and (_pending.appended != _pending.seen or _pending.backlog))
    )


def _flush_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:  # one thread: one database connection at most (eager mode, pending keys)
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-flusher")
    return _executor


async def _flush_forever_async() -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        if _due():
            await loop.run_in_executor(_flush_executor(), _background_flush)


def _flush_forever_thread() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL)
        if _due():
            _background_flush()


def _background_flush() -> None:
    try:
        flush(force=False)
    except Exception:  # noqa: BLE001 - the flusher must survive anything; the journal keeps the events
        logger.exception("log flush failed")


# ----------------------------------------------------------------------------------------------- flush

_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError)
try:
    from kombu.exceptions import EncodeError as _EncodeError
    from kombu.exceptions import OperationalError as _KombuOperationalError

    _BROKER_ERRORS += (_KombuOperationalError,)
except ImportError:  # pragma: no cover
    _EncodeError = TypeError


def _publish(batch: list[dict]) -> None:
    """Hand one batch to the broker (publisher confirms with RabbitMQ, see settings), or store it at once
    without a broker. Raises if it was not taken."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # No broker: store here, in the flusher's thread. (Not through the eager task: its automatic retry
        # would re-run at once, forever, while the database is down.)
        from . import services

        _fresh_connection()
        try:
            services.do_record_events(batch)
        except Exception:
            _drop_connection()
            raise
        return
    from .tasks import record_events

    record_events.apply_async(
        args=[batch],
        retry=True,
        retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
    )


def _fresh_connection() -> None:
    """The flusher's thread uses the database (eager mode, pending keys) outside any request: drop a connection
    that broke (a database restart) or aged, as Django does between requests. Not inside a transaction (a
    test calling ``flush``)."""
    from django.db import close_old_connections, connection

    if not connection.in_atomic_block:
        close_old_connections()


def _drop_connection() -> None:
    from django.db import connection

    if not connection.in_atomic_block:
        connection.close()  # a broken connection is not reused by the next attempt


def _publish_events(events: list[dict]) -> int:
    """Publish in batches; how many (a prefix of ``events``) were taken."""
    done = 0
    for start in range(0, len(events), BATCH_SIZE):
        chunk = events[start : start + BATCH_SIZE]
        try:
            _publish(chunk)
        except _EncodeError:  # an event that cannot be serialised must not block the journal forever
            for ev in chunk:
                try:
                    _publish([ev])
                except _EncodeError:
                    logger.error("dropping a log event that cannot be serialised: %r", ev)
        except Exception as exc:  # noqa: BLE001 - not published, whatever the reason: it stays in the journal
            logger.warning(
                "log broker unavailable; %d events wait in the journal (%s: %s)",
                len(events) - done,
                type(exc).__name__,
                exc,
                exc_info=not isinstance(exc, _BROKER_ERRORS),
            )
            return done
        done += len(chunk)
    return done


def _read(seg: _Segment) -> tuple[list[dict], list[int], int]:
    """Complete lines from ``seg.pos``: (events, the offset after each, the offset after the last line)."""
    limit = READ_CHUNK
    while True:
        data = os.pread(seg.fd, limit, seg.pos)
        cut = data.rfind(b"\n") + 1
        if cut or len(data) < limit:
            break
        limit *= 2  # one line longer than the chunk
    events, ends = [], []
    offset = seg.pos
    for line in data[:cut].split(b"\n")[:-1]:
        offset += len(line) + 1
        if not line.strip() or line.startswith(_MARK):
            continue
        try:
            events.append(_loads(line))
        except ValueError:  # a line torn by a crash mid-write: nothing to publish
            logger.warning("skipping a malformed line in %s", seg.path)
            continue
        ends.append(offset)
    return events, ends, seg.pos + cut


def _drain(journal: _Journal, seg: _Segment, consume) -> tuple[int, bool]:
    """Consume what ``seg`` holds past ``pos``; returns (events consumed, everything consumed). The current
    segment, once consumed, is truncated (under the append lock: only if nothing was appended meanwhile, else
    a mark records how far it was consumed); any other (retired or adopted) is deleted, its lock released."""
    total = 0
    current = seg is journal.current
    while True:
        start = seg.pos
        events, ends, end = _read(seg)
        done = consume(events) if events else 0
        total += done
        if done < len(events):
            if done:
                seg.pos = ends[done - 1]
                _mark(journal, seg)
            _sync(seg)
            return total, False
        seg.pos = end
        if end == start or (current and end - start < READ_CHUNK):
            break  # no complete line left (another pass would find only what is appended meanwhile)
    if current:
        with journal.lock:
            if journal.current is seg and seg.size == seg.pos:
                os.ftruncate(seg.fd, 0)
                seg.size = seg.pos = seg.synced = 0
                return total, True
        if total:
            _mark(journal, seg)
        return total, True
    _release(seg, delete=True)  # (bytes after the last newline: a line torn by its writer's death)
    return total, True


_MARK = b'{"_journal":"consumed","to":'


def _mark(journal: _Journal, seg: _Segment) -> None:
    """Append a mark "consumed up to ``pos``" to a journal that cannot be truncated yet (events were appended
    while it was published): whoever adopts it after this process dies resumes there instead of publishing
    everything again. (A crash between a publish and its mark re-publishes one batch: stored once anyway.)"""
    line = _MARK + b"%d}\n" % seg.pos
    with journal.lock:
        try:
            n = os.write(seg.fd, line)
            seg.size += n
        except OSError:
            pass


def _resume_point(seg: _Segment) -> int:
    """Where an adopted journal's last mark says its owner had got to (0 without one). A mark's text cannot
    occur inside an event line (JSON escapes the quotes of a string), so any occurrence is a mark."""
    size = os.fstat(seg.fd).st_size
    end = size
    while end > 0:  # backwards, a chunk at a time (marks are near the end)
        start = max(0, end - READ_CHUNK)
        data = os.pread(seg.fd, end - start + len(_MARK) + 24, start)
        i = data.rfind(_MARK)
        if i >= 0:
            stop = data.find(b"}", i)
            try:
                pos = int(data[i + len(_MARK) : stop]) if stop > 0 else 0
            except ValueError:
                pos = 0
            return pos if 0 <= pos <= size else 0
        end = start
    return 0


def _sync(seg: _Segment) -> None:
    """Unpublished events go to disk (once per new stretch): the fsync half of the durability policy."""
    try:
        size = os.fstat(seg.fd).st_size
        if size > seg.synced:
            os.fdatasync(seg.fd)
            seg.synced = size
    except OSError:
        logger.warning("fdatasync of %s failed", seg.path, exc_info=True)


def _release(seg: _Segment, *, delete: bool) -> None:
    if delete:
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()
    with contextlib.suppress(OSError):
        os.close(seg.fd)  # releases the lock


def flush(*, force: bool = True) -> int:
    """Publish what the journals hold (this process's, and those of processes that are gone); returns how
    many events were published. Thread-safe. ``force=False`` is the background flusher's call: it respects
    the back-off while the broker is down and looks for orphaned journals only every ``ADOPT_INTERVAL``."""
    with _flush_lock:
        _flushing.active = True
        try:
            return _flush(force)
        finally:
            _flushing.active = False


def _flush(force: bool) -> int:
    global _retry_at, _backoff, _next_adopt, _next_pending
    now = time.monotonic()
    _follow_directory()
    if force or now >= _next_adopt:
        _next_adopt = now + ADOPT_INTERVAL
        _adopt(_events)
        _adopt(_pending)
    ok = True
    published = 0
    if _memory:
        batch = _memory[:]
        done = _publish_events(batch)
        del _memory[:done]
        published += done
        ok = done == len(batch)
    if ok:
        seen = _events.appended
        for seg in [s for s in [_events.current] if s is not None] + list(_events.backlog):
            n, complete = _drain(_events, seg, _publish_events)
            published += n
            if seg in _events.backlog and complete:
                _events.backlog.remove(seg)
            if not complete:
                ok = False
                break
        else:
            _events.seen = seen
    if force or now >= _next_pending:
        _next_pending = now + PENDING_INTERVAL
        _resolve_pending()
    if ok:
        _backoff, _retry_at = 0.0, 0.0
    else:
        _backoff = min(MAX_BACKOFF, max(FLUSH_INTERVAL, _backoff * 2))
        _retry_at = time.monotonic() + _backoff
    return published


def _follow_directory() -> None:
    """``LOG_SPOOL_DIR`` changed (tests): the current journals are retired to the backlog, new ones open there."""
    directory = _spool_dir()
    for journal in (_events, _pending):
        with journal.lock:
            seg = journal.current
            if seg is not None and seg.path.parent != directory:
                journal.current = None
                if seg.pos >= seg.size:
                    _release(seg, delete=True)
                else:
                    journal.backlog.append(seg)


_LEGACY = re.compile(r"^events-(\d+)\.jsonl$|^events-\d+\.claimed-(\d+)-[0-9a-f]+$")


def _adopt(journal: _Journal) -> None:
    """Take the journals of processes that are gone: the ones whose lock can be taken."""
    directory = _spool_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    mine = {s.path.name for s in journal.backlog} | (
        {journal.current.path.name} if journal.current else set()
    )
    for name in names:
        if name.startswith(f".{journal.stem}-") and name.endswith(".tmp"):
            _remove_if_unlocked(directory / name)  # a process died between creating and naming a journal
            continue
        if not name.startswith(f"{journal.stem}-") or name in mine:
            continue
        legacy = _LEGACY.match(name) if journal.stem == "events" else None
        if legacy:  # a spool file of the previous version: its writer is gone once its pid is
            pid = int(legacy.group(1) or legacy.group(2))
            if pid != os.getpid() and _pid_alive(pid):
                continue
        elif not name.endswith(".jsonl"):
            continue
        seg = _lock_existing(directory / name)
        if seg is not None:
            journal.backlog.append(seg)


def _lock_existing(path: Path) -> _Segment | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)  # (writes: marks only)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        st = os.fstat(fd)
        if os.stat(path).st_ino != st.st_ino:  # deleted (and maybe re-created) after we opened it
            raise FileNotFoundError(path)
    except OSError:  # locked: its owner is alive (or another process adopted it); or it is gone
        os.close(fd)
        return None
    seg = _Segment(path, fd, size=st.st_size, synced=st.st_size)
    seg.pos = _resume_point(seg)
    return seg


def _remove_if_unlocked(path: Path) -> None:
    seg = _lock_existing(path)
    if seg is not None:
        _release(seg, delete=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------ requests refused with the database down


def _resolve_pending() -> None:
    """Resolve the requests refused while the database was down to their keys (one query), and log them."""
    segments = [s for s in [_pending.current] if s is not None] + list(_pending.backlog)
    if not any(os.fstat(s.fd).st_size > s.pos for s in segments):
        _pending.seen = _pending.appended
        return
    seen = _pending.appended
    for seg in segments:
        _, complete = _drain(_pending, seg, _resolve_records)
        if seg in _pending.backlog and complete:
            _pending.backlog.remove(seg)
        if not complete:
            return
    _pending.seen = seen


def _resolve_records(records: list[dict]) -> int:
    import hmac

    from apikeys.models import ApiKey

    prefixes = {r.get("key_prefix") for r in records if isinstance(r.get("key_prefix"), str)}
    _fresh_connection()
    try:
        keys = {
            row["prefix"]: row
            for row in ApiKey.objects.filter(prefix__in=prefixes).values(
                "id", "prefix", "secret_hash", "revoked_at"
            )
        }
    except Exception:  # noqa: BLE001 - the database is still away: try again later
        _drop_connection()
        logger.info("database still unavailable; %d refused requests wait to be logged", len(records))
        return 0
    for rec in records:
        row = keys.get(rec.get("key_prefix"))
        if (
            row is None
            or row["revoked_at"] is not None
            or not hmac.compare_digest(str(row["secret_hash"]), str(rec.get("key_hash")))
        ):
            continue  # not a key (the request would have been a 401): nothing to log
        event = {k: v for k, v in rec.items() if k not in ("key_prefix", "key_hash")}
        event["key_id"] = row["id"]
        _append(_events, event)  # same event id: resolving twice (a crash in between) logs it once
    return len(records)


# -------------------------------------------------------------------------------------- tests, shutdown


def _take() -> list[dict]:
    """Remove and return what this process has emitted and not published yet (tests)."""
    with _flush_lock:
        out = _memory[:]
        _memory.clear()

        def take(events):
            out.extend(events)
            return len(events)

        seg = _events.current
        if seg is not None:
            _drain(_events, seg, take)
        _events.seen = _events.appended
        return out


def _final_flush() -> None:
    """At shutdown: a last publish (bounded in time), then this process's journals are closed: deleted when
    empty, otherwise left (unlocked) for the next flusher of any process."""
    done = threading.Event()

    def run():
        try:
            flush()
        except Exception:  # noqa: BLE001
            logger.exception("final log flush failed")
        finally:
            done.set()

    threading.Thread(target=run, name="log-final-flush", daemon=True).start()
    if not done.wait(FINAL_FLUSH_SECONDS):
        logger.warning(
            "final log flush still running after %.0f s; the journal keeps the rest", FINAL_FLUSH_SECONDS
        )
        return
    with _flush_lock:
        for journal in (_events, _pending):
            with journal.lock:
                seg, journal.current = journal.current, None
                if seg is not None:
                    _release(seg, delete=os.fstat(seg.fd).st_size <= seg.pos)
                for seg in journal.backlog:
                    _release(seg, delete=False)
                journal.backlog.clear()


def _close_at_exit() -> None:
    """Any process: its empty journals go (what is left unpublished stays for the next flusher; a server
    publishes first, ``_final_flush``)."""
    for journal in (_events, _pending):
        seg = journal.current
        if seg is None:
            continue
        try:
            if os.fstat(seg.fd).st_size <= seg.pos:
                _release(seg, delete=True)
                journal.current = None
                os.rmdir(seg.path.parent)  # (only if nothing else is in it)
        except OSError:
            pass


def install_shutdown_hooks() -> None:
    """In a server process (uvicorn): a last flush when it stops. Idempotent; a no-op elsewhere.

    uvicorn stops gracefully on SIGTERM/SIGINT (in-flight requests finish and emit), then re-raises the
    signal with the default handler, which ends the process at once: no ``atexit``. So the final flush is
    chained after the server's own ``shutdown`` (the server is the owner of the signal handler in place while
    the app is imported); ``atexit`` covers the other ways a process ends. Events emitted after it (tasks
    cancelled at the graceful timeout) are in the journal all the same and published by the next flusher."""
    global _hooks_installed
    if _hooks_installed or "uvicorn" not in sys.modules:
        return
    _hooks_installed = True
    atexit.register(_final_flush)
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    shutdown = getattr(server, "shutdown", None)
    if server is None or not asyncio.iscoroutinefunction(shutdown):
        return

    async def shutdown_then_flush(*args, **kwargs):
        try:
            await shutdown(*args, **kwargs)
        finally:
            for _ in range(3):
                await asyncio.sleep(0)  # let cancelled requests run their clean-up (and emit) first
            await asyncio.get_running_loop().run_in_executor(None, _final_flush)

    server.shutdown = shutdown_then_flush


def _after_fork_in_child() -> None:
    """A forked child starts its own journals; the parent's stay the parent's (their locks too, once the
    child closes its copies of the descriptors)."""
    global _events, _pending, _start_id, _flush_lock, _thread, _executor, _flusher_tasks, _hooks_installed
    for journal in (_events, _pending):
        for seg in [journal.current, *journal.backlog]:
            if seg is not None:
                with contextlib.suppress(OSError):
                    os.close(seg.fd)
    _events, _pending = _Journal("events"), _Journal("pending")
    _memory.clear()
    _start_id = uuid.uuid4().hex[:8]
    _flush_lock = threading.Lock()
    _thread, _executor, _flusher_tasks, _hooks_installed = None, None, {}, False
    # (the parent's ``atexit`` hooks run in a child only if it exits through ``sys.exit``: harmless, they
    # see this child's journals)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _start_with_server() -> None:
    """Imported while uvicorn loads the app (its loop running): install the shutdown hook and start the
    flusher now, so journals left by a process that died are published without waiting for a request."""
    if "uvicorn" not in sys.modules:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    install_shutdown_hooks()
    _ensure_flusher()


_start_with_server()
