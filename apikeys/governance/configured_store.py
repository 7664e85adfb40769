"""Which store holds the counters (``RELAY_GOVERNANCE_STORE``, else Redis when the cache is Redis), one per
process, and the switch tests use (:func:`set_store`)."""

from __future__ import annotations

import os

from .database_store import DatabaseStore, seed_budget_from_log
from .memory_store import MemoryStore
from .redis_store import RedisStore


def store_setting() -> str:
    from django.conf import settings

    return (
        getattr(settings, "RELAY_GOVERNANCE_STORE", None) or os.environ.get("RELAY_GOVERNANCE_STORE") or ""
    ).strip()


def make_store(spec: str = ""):
    """A store from a spec: ``redis://...``, ``database``, ``memory``, or "" (Redis when the cache is Redis)."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec, seed=seed_budget_from_log)
    if spec == "memory":
        return MemoryStore(seed=seed_budget_from_log)
    if spec in ("", "auto"):
        from django.conf import settings

        for alias in ("default", "relay_sessions"):
            conf = settings.CACHES.get(alias) or {}
            if conf.get("BACKEND") == "django.core.cache.backends.redis.RedisCache":
                location = conf["LOCATION"]
                return RedisStore(
                    location[0] if isinstance(location, (list, tuple)) else location,
                    seed=seed_budget_from_log,
                )
    return DatabaseStore(seed=seed_budget_from_log)


_store = None


def store():
    global _store
    if _store is None:
        _store = make_store(store_setting())
    return _store


def set_store(new) -> None:
    """Tests: use another store (None: the configured one again)."""
    global _store
    _store = new
