"""Counters in this process's memory: tests and a single-process server (limits multiply by the processes)."""

from __future__ import annotations

import threading
import time

from .counters import _CODES, OK, Counter


class MemoryStore:
    """This process only: limits are per process (tests, a single-process server)."""

    name = "memory"

    def __init__(self, seed=None):
        self._counters: dict[tuple, list] = {}
        self._lock = threading.Lock()
        self._seed = seed or (lambda key_id, start: 0)

    def _get(self, k, now):
        v = self._counters.get(k)
        if v is not None and v[1] <= now:
            del self._counters[k]
            return None
        return v

    def reserve_sync(
        self, key_id: int, counters: list[Counter], now: float, seed_start: float | None
    ) -> tuple[int, int]:
        with self._lock:
            for c in counters:
                k = (key_id, c.kind, c.window)
                if self._get(k, now) is None:
                    initial = self._seed(key_id, seed_start) if c.kind == "b" else 0
                    self._counters[k] = [initial, now + c.ttl]
                if self._counters[k][0] >= c.limit:
                    return _CODES[c.kind], self._counters[k][0]
            for c in counters:
                entry = self._counters[(key_id, c.kind, c.window)]
                entry[0] += c.inc
                if c.kind != "b":
                    entry[1] = now + c.ttl
        return OK, 0

    async def reserve(self, key_id, counters, now, seed_start):
        if counters and counters[-1].kind == "b" and self.read(key_id, "b", counters[-1].window, now) is None:
            from sequrity_site.aio import run_sync

            initial = await run_sync(self._seed, key_id, seed_start)  # the log is in the database
            with self._lock:
                self._counters.setdefault(
                    (key_id, "b", counters[-1].window), [initial, now + counters[-1].ttl]
                )
        return self.reserve_sync(key_id, counters, now, seed_start)

    def settle_sync(self, key_id: int, deltas, now: float) -> None:
        with self._lock:
            for kind, window, delta, ttl in deltas:
                if not delta:
                    continue
                k = (key_id, kind, window)
                entry = self._get(k, now)
                if entry is not None:
                    entry[0] += delta
                elif ttl:
                    self._counters[k] = [delta, now + ttl]

    async def settle(self, key_id, deltas, now):
        self.settle_sync(key_id, deltas, now)

    def settle_nowait(self, key_id, deltas, now) -> bool:
        self.settle_sync(key_id, deltas, now)
        return True

    def read(self, key_id: int, kind: str, window: int, now: float | None = None) -> int | None:
        with self._lock:
            entry = self._get((key_id, kind, window), time.time() if now is None else now)
            return None if entry is None else entry[0]

    def read_many(
        self, wanted: list[tuple[int, str, int]], now: float | None = None
    ) -> dict[tuple[int, str, int], int | None]:
        return {w: self.read(*w, now=now) for w in wanted}
