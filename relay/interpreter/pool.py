"""Running programs off the event loop, with hard bounds enforced from outside the interpreter.

The interpreter checks its own limits (steps, value sizes, ``Limits.wall_time_seconds``) between operations;
one slow builtin, or a bug, can still run past them, and a run on the relay's event loop freezes every
request of that worker meanwhile. So the relay runs programs in a pool of worker processes
(``pebble.ProcessPool``, start method ``forkserver``: the workers are forked from a small clean server process
that has the interpreter imported, never from the relay process with its threads and sockets):

* every run has a hard wall-clock bound (``Limits.wall_time_seconds`` + a margin, or a fixed timeout); the
  worker of a run that exceeds it is killed (SIGTERM with its default action: at once, even inside a long C
  call) and replaced;
* every worker has an address-space limit (``RLIMIT_AS``: its size when it started + the memory budget): an
  allocation beyond it raises MemoryError in the worker, or the worker dies;
* a run stopped either way, or whose worker died, ends as ``InterpreterError("limit", "Limit exceeded: ...")``
  (status "error"), as if the interpreter had stopped it, with the merged metadata of the run's inputs
  (recorded tool results, context variables: whether it ran that long may depend on them); a failure of the
  pool itself is an "internal" error.

What crosses the process boundary: a :class:`ProgramJob` (the source, the tool specs, the recorded tool
results, the context variables, the limits and the branching meta-policy) goes to the worker; a
:class:`ProgramOutcome` comes back: a RunResult without the raw interpreter values (``status``, ``error``,
``suspended``, ``denial``, ``steps``, ``tool_calls``, ``output``, ``final_return_value``, ``namespace``,
``limits`` and any other public field or property of RunResult, serialised in the worker). A worker keeps
nothing of a run: everything a run builds is local to it (the parse cache is keyed by the source text).

::

    from relay.interpreter.pool import ProgramJob, get_runner

    outcome = await get_runner().run(ProgramJob(source, tools, recorded, context_vars, limits, branch=engine))

``branch`` is any object with ``check_branch(meta)`` (the session's ``PolicyEngine``), a callable, or None.
The pool sends a copy of it without its unpicklable attributes (a PolicyEngine's compiled policy stays
behind; ``check_branch`` reads only the mode and the presets).

The default runner (:class:`ThreadRunner`: framework-free use, unit tests) runs the program in a thread of
this process: off the event loop, but without a hard bound. The Django app installs a :class:`PoolRunner`
at startup (``relay.apps``, settings ``RELAY_PROGRAM_WORKERS``, ``RELAY_PROGRAM_TIMEOUT``,
``RELAY_PROGRAM_MEMORY_MB``) and pre-warms it in the server process, so the first request does not pay
for starting processes.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import multiprocessing
import os
import pickle
import signal
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import Any

from relay.meta import DEFAULT_META, Meta, merge_all

from .api import RunResult, run_program
from .errors import InterpreterError
from .limits import DEFAULT_LIMITS, Limits
from .replay import ReplayHost

DEFAULT_WORKERS = 2
DEFAULT_MARGIN_SECONDS = 1.0
DEFAULT_MEMORY_MB = 1024
WORKER_NICENESS = 10  # workers run at a lower CPU priority than the relay process
PRELOAD = ("relay.interpreter.pool", "relay.sqrt.engine")  # imported once in the forkserver


# ----------------------------------------------------------------------------------------------- job


@dataclass(slots=True)
class ProgramJob:
    """One run (or replay) of a program. Everything in it is picklable (ValueWithMeta, Meta, ToolSpec,
    RecordedCall, ToolError, Limits), except perhaps ``branch``, which the pool makes portable."""

    source: str
    tools: dict[str, Any]
    recorded: list[Any] = field(
        default_factory=list
    )  # RecordedCall | ValueWithMeta | ToolError, in call order
    context_vars: dict[str, Any] | None = None  # {name: ValueWithMeta}
    limits: Limits | None = None
    branch: Any = None  # an object with check_branch(meta), a callable(meta), or None


def execute(job: ProgramJob) -> ProgramOutcome:
    """Run ``job`` here (in a pool worker, or a thread) and return its picklable outcome."""
    branch = job.branch
    check = None if branch is None else getattr(branch, "check_branch", branch)
    host = ReplayHost(job.recorded, None, check_branch=check)
    res = run_program(
        job.source, tools=job.tools, host=host, context_vars=job.context_vars, limits=job.limits
    )
    return ProgramOutcome.from_result(res)


# ------------------------------------------------------------------------------------------- outcome


class ProgramOutcome:
    """What the orchestrator reads of a RunResult, without the raw interpreter values; picklable.

    Has RunResult's attributes (``status``, ``error``, ``suspended``, ``denial``, ``steps``, ``tool_calls``,
    ``output``, ``limits``, ``final_return_value``, ``namespace``, and whatever public field or property
    RunResult gains), but not ``variables``."""

    pc: Meta  # RunResult's control context, copied with the other fields in __init__

    def __init__(self, status: str, **attrs: Any) -> None:
        self.status = status
        self.error: InterpreterError | None = None
        self.suspended = None
        self.denial = None
        self.steps = 0
        self.tool_calls = 0
        self.output: list[str] = []
        self.final_return_value = None
        self.namespace: dict[str, Any] = {}
        self.limits: Limits = DEFAULT_LIMITS
        for f in fields(RunResult):  # whatever else RunResult has, at its defaults
            if f.name not in self.__dict__ and f.name != "variables":
                if f.default is not MISSING:
                    setattr(self, f.name, f.default)
                elif f.default_factory is not MISSING:
                    setattr(self, f.name, f.default_factory())
        self.__dict__.update(attrs)

    @classmethod
    def from_result(cls, res: RunResult) -> ProgramOutcome:
        attrs: dict[str, Any] = {}
        for f in fields(res):
            if f.name != "variables":
                attrs[f.name] = getattr(res, f.name)
        try:
            for name in dir(type(res)):
                if not name.startswith("_") and isinstance(
                    getattr(type(res), name, None), (property, cached_property)
                ):
                    attrs[name] = getattr(res, name)  # serialised here, where the raw values live
        except Exception as e:  # noqa: BLE001 - a value that cannot be serialised: a program error
            return cls.failed(
                "internal",
                f"internal error: the program's result cannot be serialised: {type(e).__name__}",
                res.limits,
            )
        return cls(attrs.pop("status"), **attrs)

    @classmethod
    def failed(
        cls, kind: str, message: str, limits: Limits | None = None, meta: Meta = DEFAULT_META
    ) -> ProgramOutcome:
        out = cls("error", error=InterpreterError(kind, message, meta=meta), limits=limits or DEFAULT_LIMITS)
        if "pc" in out.__dict__:
            out.pc = meta  # the run's control context is unknown: everything it read
        return out

    def __repr__(self) -> str:
        return f"ProgramOutcome(status={self.status!r}, error={self.error!r}, suspended={self.suspended!r})"

    # Exceptions (error, suspended, denial) cross as (class, args, attributes): their constructors need not
    # accept their own args, and whatever attribute the interpreter adds to them comes along.
    def __getstate__(self) -> dict[str, Any]:
        return {k: _ExcState.of(v) if isinstance(v, BaseException) else v for k, v in self.__dict__.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v.rebuild() if isinstance(v, _ExcState) else v for k, v in state.items()})


class _ExcState:
    __slots__ = ("cls", "args", "attrs")

    def __init__(self, cls: type[BaseException], args: tuple[Any, ...], attrs: dict[str, Any]) -> None:
        self.cls, self.args, self.attrs = cls, args, attrs

    def __getstate__(self) -> tuple[type[BaseException], tuple[Any, ...], dict[str, Any]]:
        return self.cls, self.args, self.attrs

    def __setstate__(self, state: tuple[type[BaseException], tuple[Any, ...], dict[str, Any]]) -> None:
        self.cls, self.args, self.attrs = state

    @classmethod
    def of(cls, e: BaseException) -> _ExcState:
        attrs = {}
        for k, v in getattr(e, "__dict__", {}).items():
            # A nested exception (InterpreterError.cause) is informative only: its text crosses.
            attrs[k] = RuntimeError(f"{type(v).__name__}: {v}") if isinstance(v, BaseException) else v
        return cls(type(e), e.args, attrs)

    def rebuild(self) -> BaseException:
        e = self.cls.__new__(self.cls)
        e.args = self.args
        e.__dict__.update(self.attrs)
        return e


# ------------------------------------------------------------------------------------------- runners


class ThreadRunner:
    """Runs programs in a thread of this process: off the event loop, but without a hard bound (a thread
    cannot be killed). For framework-free use and unit tests; the relay uses a :class:`PoolRunner`."""

    kind = "thread"

    async def run(
        self, job: ProgramJob, *, fn: Callable[[ProgramJob], ProgramOutcome] = execute
    ) -> ProgramOutcome:
        try:
            return await asyncio.to_thread(fn, job)
        except MemoryError:
            return ProgramOutcome.failed(
                "limit", "Limit exceeded: out of memory", job.limits, input_meta(job)
            )

    def run_sync(
        self, job: ProgramJob, *, fn: Callable[[ProgramJob], ProgramOutcome] = execute
    ) -> ProgramOutcome:
        return fn(job)

    def prewarm(self, wait: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


class PoolRunner:
    """Runs programs in a pool of worker processes with a hard wall-clock bound and a memory bound.

    ``workers``: pool size; ``timeout``: the hard bound of one run in seconds (None: the job's
    ``Limits.wall_time_seconds`` + ``margin``); ``memory_mb``: how much a worker's address space may grow
    beyond its size at start (None or 0: no limit); ``start_method``: ``forkserver`` (default) or ``spawn``.
    """

    kind = "pool"

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        *,
        timeout: float | None = None,
        margin: float = DEFAULT_MARGIN_SECONDS,
        memory_mb: float | None = DEFAULT_MEMORY_MB,
        start_method: str = "forkserver",
        preload: tuple[str, ...] = PRELOAD,
    ) -> None:
        self.workers = max(1, int(workers))
        self.timeout = float(timeout) if timeout else None
        self.margin = float(margin)
        self.memory_bytes = int(memory_mb * 2**20) if memory_mb else None
        self.start_method = start_method
        self.preload = tuple(preload)
        self._pool: Any = None
        self._ready = False
        self._lock = threading.Lock()
        self._atexit = False

    def hard_timeout(self, limits: Limits | None) -> float:
        if self.timeout is not None:
            return self.timeout
        return (limits or DEFAULT_LIMITS).wall_time_seconds + self.margin

    # ------------------------------------------------------------------------------ lifecycle
    def _ensure(self) -> Any:
        """The running pool, started (and warmed: every worker imported the interpreter and ran a program)
        if needed. Blocks: call it from a thread, never on the event loop."""
        with self._lock:
            pool = self._pool
            if pool is not None and self._ready and pool.active:
                return pool
            self._ready = False
            if pool is not None:
                self._pool = None
                _discard(pool)
            from pebble import ProcessPool

            if self.start_method == "forkserver":
                _forkserver_preload(self.preload)
            ctx = multiprocessing.get_context(self.start_method)
            pool = ProcessPool(
                self.workers, initializer=_init_worker, initargs=(self.memory_bytes,), context=ctx
            )
            try:
                warm = [pool.schedule(_warm, timeout=120) for _ in range(self.workers)]
                for f in warm:
                    f.result()
            except BaseException:
                _discard(pool)
                raise
            self._pool = pool
            self._ready = True
            if not self._atexit:
                atexit.register(self.close)  # stop the workers and release the pool's semaphores on exit
                self._atexit = True
            return pool

    def prewarm(self, wait: bool = False) -> None:
        """Start the pool (in a background thread unless ``wait``)."""
        if wait:
            self._ensure()
            return

        def warm() -> None:
            with contextlib.suppress(Exception):  # the first run retries and reports
                self._ensure()

        threading.Thread(target=warm, name="program-pool-prewarm", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            pool, self._pool, self._ready = self._pool, None, False
        if pool is not None:
            try:
                pool.stop()
                pool.join(timeout=10)
            except Exception:  # noqa: BLE001 - best effort (interpreter shutdown)
                pass

    def worker_pids(self) -> list[int]:
        """The current workers' process ids (tests, diagnostics)."""
        pool = self._pool
        if pool is None:
            return []
        return sorted(pool._pool_manager.worker_manager.workers)  # noqa: SLF001 - no public accessor

    # ----------------------------------------------------------------------------------- runs
    def _submit(self, fn: Callable[..., Any], job: ProgramJob, timeout: float) -> Future[ProgramOutcome]:
        future: Future[ProgramOutcome] = self._pool.schedule(fn, args=(job,), timeout=timeout)
        return future

    async def run(
        self, job: ProgramJob, *, fn: Callable[[ProgramJob], ProgramOutcome] = execute
    ) -> ProgramOutcome:
        """Run ``job`` in a worker; never raises (except CancelledError, which kills the run's worker)."""
        limits = job.limits or DEFAULT_LIMITS
        timeout = self.hard_timeout(limits)
        job = portable_job(job)
        error: BaseException | None = None
        for _ in range(2):  # a second try only when the pool itself broke
            try:
                if not self._ready:
                    await asyncio.to_thread(self._ensure)
                fut = self._submit(fn, job, timeout)
            except (RuntimeError, BrokenProcessPool) as e:  # the pool broke (e.g. an idle worker died)
                self._ready, error = False, e
                continue
            except Exception as e:  # noqa: BLE001 - cannot start processes
                return _infrastructure_failure(e, limits)
            try:
                return await asyncio.wrap_future(fut)
            except BrokenProcessPool as e:
                self._ready, error = False, e
                continue
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001
                return _run_failure(e, timeout, job)
        return _infrastructure_failure(error, limits)

    def run_sync(
        self, job: ProgramJob, *, fn: Callable[[ProgramJob], ProgramOutcome] = execute
    ) -> ProgramOutcome:
        """Blocking variant of :meth:`run` (benchmarks, scripts)."""
        limits = job.limits or DEFAULT_LIMITS
        timeout = self.hard_timeout(limits)
        job = portable_job(job)
        error: BaseException | None = None
        for _ in range(2):
            try:
                self._ensure()
                fut = self._submit(fn, job, timeout)
            except (RuntimeError, BrokenProcessPool) as e:
                self._ready, error = False, e
                continue
            try:
                return fut.result()
            except BrokenProcessPool as e:
                self._ready, error = False, e
                continue
            except BaseException as e:  # noqa: BLE001
                return _run_failure(e, timeout, job)
        return _infrastructure_failure(error, limits)


def input_meta(job: ProgramJob) -> Meta:
    """The merged metadata of everything a run could depend on (its recorded tool results and context
    variables). A run stopped from outside fails at a point the pool cannot see, and whether (and when) it
    fails may depend on any of that data: its error carries this meta, as the interpreter's own limit errors
    carry their control context."""
    metas = []
    for entry in job.recorded or ():
        result = getattr(entry, "result", entry)
        metas.append(getattr(result, "meta", None) or DEFAULT_META)
        metas.extend((getattr(entry, "arg_meta", None) or {}).values())
    for v in (job.context_vars or {}).values():
        metas.append(getattr(v, "meta", None) or DEFAULT_META)
    return merge_all(metas)


def _run_failure(e: BaseException, timeout: float, job: ProgramJob) -> ProgramOutcome:
    from pebble import ProcessExpired

    limits = job.limits or DEFAULT_LIMITS
    meta = input_meta(job)

    if isinstance(e, TimeoutError):
        return ProgramOutcome.failed(
            "limit",
            f"Limit exceeded: the program ran longer than {timeout:g} s and was stopped",
            limits,
            meta,
        )
    if isinstance(e, ProcessExpired):
        return ProgramOutcome.failed(
            "limit",
            "Limit exceeded: the program's worker process was stopped (out of memory or crashed, "
            f"exit code {e.exitcode})",
            limits,
            meta,
        )
    if isinstance(e, MemoryError):
        return ProgramOutcome.failed("limit", "Limit exceeded: out of memory", limits, meta)
    if isinstance(e, RecursionError):
        return ProgramOutcome.failed(
            "limit", "Limit exceeded: expression or value nested too deeply", limits, meta
        )
    return ProgramOutcome.failed(
        "internal", f"internal error: the program runner failed: {type(e).__name__}: {e}", limits
    )


def _infrastructure_failure(e: BaseException | None, limits: Limits) -> ProgramOutcome:
    return ProgramOutcome.failed(
        "internal", f"internal error: the program pool is unavailable: {type(e).__name__}: {e}", limits
    )


def _discard(pool: Any) -> None:
    """Stop a pool without waiting for it."""
    try:
        pool.stop()
    except Exception:  # noqa: BLE001
        return
    threading.Thread(target=_join_quietly, args=(pool,), name="program-pool-discard", daemon=True).start()


def _join_quietly(pool: Any) -> None:
    with contextlib.suppress(Exception):
        pool.join(timeout=10)


# ------------------------------------------------------------------------------------ portability

_portable: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def portable(obj: Any) -> Any:
    """``obj`` if it pickles, else a shallow copy of it without its unpicklable attributes (cached per
    object). Reading a dropped attribute in the worker raises: an "internal" error, never a silent change."""
    if obj is None:
        return None
    try:
        return _portable[obj]
    except (KeyError, TypeError):
        pass
    try:
        pickle.dumps(obj)
        out = obj
    except Exception:  # noqa: BLE001
        out = copy.copy(obj)
        attrs = getattr(out, "__dict__", None)
        if attrs is None:
            raise
        for k, v in list(attrs.items()):
            try:
                pickle.dumps(v)
            except Exception:  # noqa: BLE001
                del attrs[k]
    with contextlib.suppress(TypeError):
        _portable[obj] = out
    return out


def portable_job(job: ProgramJob) -> ProgramJob:
    if job.branch is None:
        return job
    b = portable(job.branch)
    if b is job.branch:
        return job
    return ProgramJob(job.source, job.tools, job.recorded, job.context_vars, job.limits, b)


# ---------------------------------------------------------------------------------------- workers

_preload_set = False


def _forkserver_preload(modules: tuple[str, ...]) -> None:
    """Import these in the forkserver once (workers forked from it start with them loaded). ``__main__``
    too: otherwise every new worker re-imports the main script (uvicorn's, pytest's)."""
    global _preload_set
    if not _preload_set:
        multiprocessing.set_forkserver_preload(["__main__", *modules])
        _preload_set = True


def _init_worker(memory_bytes: int | None) -> None:
    # pebble installs a Python SIGTERM handler, which would wait for a long C call (a huge pow, round) to
    # return; the default action kills at once. The pool kills a worker only while holding the channel lock,
    # so the worker never dies holding it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Below the relay's own priority: a busy program never takes the CPU from request handling.
    with contextlib.suppress(AttributeError, OSError):  # not POSIX
        os.nice(WORKER_NICENESS)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_bytes:
            limit = _address_space() + memory_bytes
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    import relay.sqrt.engine  # noqa: F401 - unpickling the branch checker needs it (preloaded with forkserver)


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 256 * 2**20


def _warm() -> int:
    from .api import ToolSpec

    execute(
        ProgramJob(
            "x = [i * 2 for i in range(3)]\nfinal_return_value = f(x=x)", {"f": ToolSpec("f", ["x"])}, []
        )
    )
    return os.getpid()


# ----------------------------------------------------------------------------------- the runner

_runner: ThreadRunner | PoolRunner = ThreadRunner()


def get_runner() -> ThreadRunner | PoolRunner:
    """The process-wide program runner (a ThreadRunner unless the app installed a pool)."""
    return _runner


def set_runner(runner: ThreadRunner | PoolRunner) -> ThreadRunner | PoolRunner:
    """Install ``runner``; returns the previous one (the caller closes it if it wants)."""
    global _runner
    previous, _runner = _runner, runner
    return previous
