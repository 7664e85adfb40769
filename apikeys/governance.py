"""Key governance: expiry, allowed providers and models, rate limits, budgets and the key's stored provider
credential ("virtual key"), enforced on the relay's request path.

Per key (``ApiKey`` fields, set on the dashboard's "Configure defences" page and in the admin):

* **expiry**: past ``expires_at`` the key is refused with 401 ("... expired on ...");
* **allowed providers / models**: anything else is refused with 403 naming the provider or model
  (``*`` and ``?`` wildcards in model names);
* **rate limits**: requests per minute and tokens per minute (fixed UTC minutes), 429 with ``Retry-After``;
* **budget**: a spend limit per UTC day or calendar month in nano-dollars, priced exactly like credits
  (``sessions.credits``: tokens / 1M x (base + architecture + the key's enabled defences)); 402 naming the
  budget and when it resets, with ``Retry-After``. A soft threshold (a share of it) is shown in the dashboard.

**Reserve, then settle.** Before a request is served, :func:`admit` reserves it in one atomic
check-and-increment over every counter the key has (requests and tokens of this minute, spend of this
period): it is refused when a counter is already at its limit, otherwise each counter grows by the request's
estimate (one request; ~bytes/4 tokens for the prompt; their cost). When the request ends (answered, failed,
a stream ended or its client went away: the pipeline's ``finish``), :func:`settle` corrects the token and
spend counters by actual minus estimate. So a request is admitted only while the usage *already settled
plus the estimates of requests in flight* is below the limit: at most ``limit + in-flight`` is ever served,
and the requests-per-minute limit is exact.

**Where counters live** (``RELAY_GOVERNANCE_STORE``):

* Redis (the default whenever ``CACHE_URL`` or ``RELAY_SESSION_CACHE_URL`` is a Redis URL, or a
  ``redis://`` URL here): one Lua script per reservation and one per settlement (atomic on the server, one
  round trip each), keys ``gov:{<key id>}:<r|t|b>:<window>`` expiring with their window;
* ``database`` (the embedded default): the ``LimitCounter`` table, a transaction of conditional
  ``UPDATE ... SET used = used + n WHERE ... AND used < limit``: race-free on PostgreSQL (row locks, the
  condition re-checked after a wait) and SQLite (one writer at a time), about a millisecond per request;
* ``memory``: this process only (tests, a single-process server); limits multiply by the number of processes.

A budget counter that does not exist yet (first request of a period, or Redis lost its data) is seeded from
the usage log (the key's daily rollups since the period began). Keys without rate limits or budget cost
nothing here beyond attribute checks; a store that cannot be reached refuses the request (503) rather than
letting it through unmetered.

Framework-light: the rules, windows and stores are plain Python; Django appears at the edges (the ORM store,
the price table, and :func:`admit` / :func:`settle`, which take the pipeline's ``Call``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from relay.lifecycle.call import RelayError

logger = logging.getLogger(__name__)

RATE_WINDOW = 60  # seconds: requests and tokens per minute are counted in fixed UTC minutes
RATE_TTL = 2 * RATE_WINDOW
PRICE_CACHE_SECONDS = 10.0
ERROR_KINDS = ("limit_expired", "limit_provider", "limit_model", "limit_rpm", "limit_tpm", "limit_budget")
"""``error_kind`` of the usage events of refused requests (the overview counts them)."""

OK, RPM, TPM, BUDGET, SEED = 0, 1, 2, 3, -1


# ------------------------------------------------------------------------------------------------ the rules


@dataclass(frozen=True, slots=True)
class Governance:
    """A key's governance settings, as the relay needs them (part of the cached ``KeyPrincipal``)."""

    key_id: int
    key_name: str = ""
    expires_at: float | None = None  # epoch seconds
    providers: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()  # exact names
    model_patterns: tuple[str, ...] = ()  # names with * ? [
    rpm: int | None = None
    tpm: int | None = None
    budget_nano: int | None = None
    budget_period: str = "month"
    arch: str = ""
    defences: tuple[str, ...] = ()
    provider_key: str = ""  # Fernet token of the key's own provider credential
    provider_key_provider: str = ""  # "" = for every provider

    @property
    def metered(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.budget_nano is not None

    def model_allowed(self, name: str) -> bool:
        if not self.models and not self.model_patterns:
            return True
        return name in self.models or any(fnmatchcase(name, p) for p in self.model_patterns)


_WILDCARDS = frozenset("*?[")


def from_values(
    *,
    key_id: int,
    name: str = "",
    expires_at: datetime | None = None,
    allowed_providers=None,
    allowed_models=None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    budget_nano: int | None = None,
    budget_period: str = "month",
    arch: str = "",
    features: dict | None = None,
    encrypted_provider_key: str = "",
    provider_key_provider: str = "",
) -> Governance | None:
    """The key's :class:`Governance`, or None when it has no setting at all (the relay then skips it)."""
    providers = frozenset(p for p in (allowed_providers or ()) if isinstance(p, str) and p)
    names = [m.strip() for m in (allowed_models or ()) if isinstance(m, str) and m.strip()]
    if not (
        expires_at
        or providers
        or names
        or rpm_limit is not None
        or tpm_limit is not None
        or budget_nano is not None
        or encrypted_provider_key
    ):
        return None
    defences: tuple[str, ...] = ()
    if budget_nano is not None:
        from relay.config import enabled_defences

        try:
            defences = tuple(dict.fromkeys(enabled_defences({"features": features or {}})))
        except (TypeError, AttributeError, KeyError):
            defences = ()
    return Governance(
        key_id=key_id,
        key_name=name,
        expires_at=expires_at.timestamp() if expires_at else None,
        providers=providers,
        models=frozenset(n for n in names if not _WILDCARDS & set(n)),
        model_patterns=tuple(n for n in names if _WILDCARDS & set(n)),
        rpm=rpm_limit,
        tpm=tpm_limit,
        budget_nano=budget_nano,
        budget_period=budget_period or "month",
        arch=arch,
        defences=defences,
        provider_key=encrypted_provider_key or "",
        provider_key_provider=provider_key_provider or "",
    )


ROW_FIELDS = (
    "expires_at",
    "allowed_providers",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "budget_nano",
    "budget_period",
    "encrypted_provider_key",
    "provider_key_provider",
)
"""The ``ApiKey`` columns :func:`from_row` reads (with id, name, arch, features)."""


def from_row(row: dict) -> Governance | None:
    return from_values(
        key_id=row["id"],
        name=row.get("name", ""),
        arch=row.get("arch", ""),
        features=row.get("features"),
        **{f: row.get(f) for f in ROW_FIELDS},
    )


def from_key(key) -> Governance | None:
    return from_values(
        key_id=key.pk,
        name=key.name,
        arch=key.arch,
        features=key.features,
        **{f: getattr(key, f) for f in ROW_FIELDS},
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    kind: str
    retry_after: int | None = None


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_access(gov: Governance, provider: str, model: Any, now: float) -> Refusal | None:
    """Expiry, provider and model lists (no I/O). ``model`` is the request's ``model`` field."""
    if gov.expires_at is not None and now >= gov.expires_at:
        return Refusal(
            401,
            f"This Sequrity API key expired on {_utc(gov.expires_at)}; ask its owner to extend "
            "it or create a new key",
            "limit_expired",
        )
    if gov.providers and provider not in gov.providers:
        return Refusal(
            403,
            f"Provider '{provider}' is not allowed for this Sequrity API key (allowed: "
            f"{', '.join(sorted(gov.providers))})",
            "limit_provider",
        )
    if (gov.models or gov.model_patterns) and isinstance(model, str):
        for name in dict.fromkeys(part.strip() for part in model.split(",")):
            if name and not gov.model_allowed(name):
                allowed = ", ".join(sorted(gov.models) + list(gov.model_patterns))
                return Refusal(
                    403,
                    f"Model '{name}' is not allowed for this Sequrity API key (allowed: {allowed})",
                    "limit_model",
                )
    return None


# ------------------------------------------------------------------------------------------------ windows


@dataclass(frozen=True, slots=True)
class Period:
    id: int  # YYYYMMDD or YYYYMM
    start: float
    end: float

    @property
    def label(self) -> str:
        return "daily" if self.id >= 10**7 else "monthly"


@functools.lru_cache(maxsize=64)
def _period(kind: str, day: int) -> Period:
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
    if kind == "day":
        return Period(d.year * 10000 + d.month * 100 + d.day, d.timestamp(), d.timestamp() + 86400)
    start = d.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return Period(start.year * 100 + start.month, start.timestamp(), end.timestamp())


def budget_period(kind: str, now: float) -> Period:
    """The UTC day or calendar month ``now`` is in."""
    return _period("day" if kind == "day" else "month", int(now // 86400))


def minute(now: float) -> int:
    return int(now // RATE_WINDOW)


def retry_after_minute(now: float) -> int:
    return max(1, math.ceil((minute(now) + 1) * RATE_WINDOW - now))


# ------------------------------------------------------------------------------------------------ counters


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter of a reservation: kind (r, t, b), window, limit, increment, seconds to live."""

    kind: str
    window: int
    limit: int
    inc: int
    ttl: int


@dataclass(slots=True)
class Reservation:
    gov: Governance
    minute: int
    period: Period | None
    tokens_est: int
    cost_est: int
    settled: bool = False


def plan(gov: Governance, now: float, tokens_est: int, cost_est: int) -> list[Counter]:
    """The counters a reservation checks and grows, always in the order r, t, b (lock order)."""
    out = []
    m = minute(now)
    if gov.rpm is not None:
        out.append(Counter("r", m, gov.rpm, 1, RATE_TTL))
    if gov.tpm is not None:
        out.append(Counter("t", m, gov.tpm, tokens_est, RATE_TTL))
    if gov.budget_nano is not None:
        p = budget_period(gov.budget_period, now)
        out.append(Counter("b", p.id, gov.budget_nano, cost_est, int(p.end - now) + 86400))
    return out


_CODES = {"r": RPM, "t": TPM, "b": BUDGET}


def redis_key(key_id: int, kind: str, window: int) -> str:
    return f"gov:{{{key_id}}}:{kind}:{window}"  # one hash slot per key (Redis Cluster)


_RESERVE_LUA = """
-- KEYS: the counters (r, t, b order); ARGV: for each, limit, increment, ttl, then a flag: 1 = budget (last)
local n = #KEYS
local budget = tonumber(ARGV[3 * n + 1])
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if not v then
    if budget == 1 and i == n then return {-1, 0, i} end
    v = 0
  end
  v = tonumber(v)
  if v >= tonumber(ARGV[3 * i - 2]) then return {1, v, i} end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])
  if not (budget == 1 and i == n) then redis.call('EXPIRE', KEYS[i], ARGV[3 * i]) end
end
return {0, 0, 0}
"""

_SETTLE_LUA = """
-- KEYS: counters; ARGV: for each, delta and ttl (ttl 0: only if the counter still exists)
for i = 1, #KEYS do
  local d = tonumber(ARGV[2 * i - 1])
  if d ~= 0 then
    if redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('INCRBY', KEYS[i], d)
    elseif tonumber(ARGV[2 * i]) > 0 then
      redis.call('SET', KEYS[i], d, 'EX', ARGV[2 * i])
    end
  end
end
return 0
"""


def settle_deltas(res: Reservation, tokens: int, cost: int, now: float) -> list[tuple[str, int, int, int]]:
    """``[(kind, window, delta, ttl)]`` that settle a reservation (ttl 0: only an existing counter).

    Tokens are counted in the minute the request ends in: its own minute (actual - estimate), or, when it
    ended in a later minute, the estimate stays in the old one and the actual tokens go to the current one."""
    gov = res.gov
    out = []
    if gov.tpm is not None:
        m = minute(now)
        if m == res.minute:
            out.append(("t", m, tokens - res.tokens_est, 0))
        else:
            out.append(("t", m, tokens, RATE_TTL))
    if gov.budget_nano is not None and res.period is not None:
        out.append(("b", res.period.id, cost - res.cost_est, 0))
    return out


class StoreUnavailable(Exception):
    pass


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


class RedisError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``)."""


def _pack(args) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join([b"$%d\r\n%b\r\n" % (len(b), b) for b in parts])


def _parse(buf: bytes | bytearray, i: int):
    """One RESP2 reply at ``buf[i:]``: (value, next index), or None when it is not complete yet."""
    j = buf.find(b"\r\n", i)
    if j < 0:
        return None
    kind, line = buf[i : i + 1], bytes(buf[i + 1 : j])
    if kind == b":":
        return int(line), j + 2
    if kind == b"+":
        return line.decode(), j + 2
    if kind == b"-":
        return RedisError(line.decode(errors="replace")), j + 2
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, j + 2
        if len(buf) < j + 4 + n:
            return None
        return bytes(buf[j + 2 : j + 2 + n]), j + 4 + n
    if kind == b"*":
        items, pos = [], j + 2
        for _ in range(max(0, int(line))):
            got = _parse(buf, pos)
            if got is None:
                return None
            items.append(got[0])
            pos = got[1]
        return items, pos
    raise RedisError(f"unexpected reply type {kind!r}")


class _RespProtocol(asyncio.Protocol):
    """Replies arrive in the order commands were written: each resolves the oldest waiting future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.buf = bytearray()
        self.lost = False
        self.out: list[bytes] = []  # deferred commands, written with the next urgent one (or by flush_handle)
        self.flush_handle: asyncio.TimerHandle | None = None

    def flush(self) -> None:
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.out and not self.lost:
            data = b"".join(self.out)
            self.out.clear()
            self.transport.write(data)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        pos = 0
        while self.waiters:
            got = _parse(self.buf, pos)
            if got is None:
                break
            value, pos = got
            fut = self.waiters.popleft()
            if not fut.done():  # (a future whose caller timed out is done already)
                fut.set_result(value)
        del self.buf[:pos]

    def connection_lost(self, exc) -> None:
        self.lost = True
        self.out.clear()
        if self.flush_handle is not None:
            self.flush_handle.cancel()
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection to Redis lost: {exc}"))


class RespConnection:
    """A minimal pipelined Redis connection for one event loop (the relay's hot path): about 10 µs of CPU per
    command where ``redis.asyncio`` takes 70+. Commands from concurrent requests share the connection;
    a reply that does not come within ``timeout`` fails its command and the connection is dropped.

    A command sent with :meth:`send_nowait` (a settlement: nobody waits for it) is written together with the
    next command of the connection (the next reservation), or after ``DEFER_SECONDS``, whichever is first:
    one socket write instead of two, each of which costs a wake-up of Redis (tens of µs on a busy machine)."""

    DEFER_SECONDS = 0.01

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        from urllib.parse import unquote, urlsplit

        u = urlsplit(url)
        self.unix = u.path if u.scheme == "unix" else None
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 6379
        db = (
            u.path.strip("/")
            if u.scheme != "unix"
            else dict(part.split("=", 1) for part in u.query.split("&") if "=" in part).get("db", "0")
        )
        self.db = int(db or 0)
        self.username = unquote(u.username) if u.username else None
        self.password = unquote(u.password) if u.password else None
        self.timeout = timeout
        self._proto: _RespProtocol | None = None
        self._connecting: asyncio.Future | None = None

    async def _connect(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        if self.unix:
            _, proto = await loop.create_unix_connection(_RespProtocol, self.unix)
        else:
            _, proto = await loop.create_connection(_RespProtocol, self.host, self.port)
        setup = []
        if self.password is not None:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        for args in setup:
            reply = await self._send(proto, args)
            if isinstance(reply, RedisError):
                proto.transport.close()
                raise reply
        return proto

    def _send(self, proto: _RespProtocol, args, *, defer: bool = False) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        proto.waiters.append(fut)  # (the order of the waiters is the order of the bytes written)
        proto.out.append(_pack(args))
        if not defer:
            proto.flush()
        elif proto.flush_handle is None:
            proto.flush_handle = loop.call_later(self.DEFER_SECONDS, proto.flush)
        return fut

    async def command(self, *args):
        proto = self._proto
        if proto is None or proto.lost:
            if self._connecting is None or self._connecting.done():
                self._connecting = asyncio.ensure_future(asyncio.wait_for(self._connect(), self.timeout))
            try:
                proto = self._proto = await asyncio.shield(self._connecting)
            except TimeoutError as exc:
                raise ConnectionError("connecting to Redis timed out") from exc
        fut = self._send(proto, args)
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, proto, fut)
        try:
            reply = await fut
        finally:
            timer.cancel()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def send_nowait(self, *args) -> asyncio.Future | None:
        """Queue a command on the open connection, written with the next one or within ``DEFER_SECONDS``; its
        reply resolves the future returned (an error reply is its result, not an exception). None when there
        is no open connection."""
        proto = self._proto
        if proto is None or proto.lost:
            return None
        return self._send(proto, args, defer=True)

    def _expire(self, proto: _RespProtocol, fut: asyncio.Future) -> None:
        if not fut.done():
            fut.set_exception(ConnectionError("Redis did not answer in time"))
            proto.lost = True
            if proto.transport is not None:
                proto.transport.close()


class RedisStore:
    """Counters in Redis: one Lua script per reservation and per settlement (atomic, one round trip each),
    through a :class:`RespConnection` per event loop (``rediss://`` TLS URLs through ``redis.asyncio``)."""

    name = "redis"

    def __init__(self, url: str, seed=None):
        self.url = url
        self._conns: dict[int, tuple[Any, Any]] = {}
        self._sync = None
        self._seed = seed
        self._sha = {lua: hashlib.sha1(lua.encode()).hexdigest() for lua in (_RESERVE_LUA, _SETTLE_LUA)}

    def _conn(self):
        loop = asyncio.get_running_loop()
        hit = self._conns.get(id(loop))
        if hit is None or hit[1] is not loop:
            if self.url.startswith("rediss://"):
                import redis.asyncio as aioredis

                client = aioredis.Redis.from_url(self.url, max_connections=256)
                conn = _RedisPyCommands(client)
            else:
                conn = RespConnection(self.url)
            hit = self._conns[id(loop)] = (conn, loop)
        return hit[0]

    async def _script(self, lua: str, keys: list[str], args: list) -> Any:
        conn = self._conn()
        try:
            return await conn.command("EVALSHA", self._sha[lua], len(keys), *keys, *args)
        except RedisError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await conn.command("EVAL", lua, len(keys), *keys, *args)  # loads it for the next EVALSHA

    def sync_client(self):
        if self._sync is None:
            import redis

            self._sync = redis.Redis.from_url(self.url)
        return self._sync

    @staticmethod
    def _args(key_id, counters):
        keys = [redis_key(key_id, c.kind, c.window) for c in counters]
        args = [x for c in counters for x in (c.limit, c.inc, c.ttl)]
        args.append(1 if counters and counters[-1].kind == "b" else 0)
        return keys, args

    async def reserve(
        self, key_id: int, counters: list[Counter], now: float, seed_start: float | None
    ) -> tuple[int, int]:
        keys, args = self._args(key_id, counters)
        try:
            code, used, index = await self._script(_RESERVE_LUA, keys, args)
            if code == SEED:
                seeded = await self._seed_budget(key_id, seed_start)
                await self._conn().command("SET", keys[-1], seeded, "EX", counters[-1].ttl, "NX")
                code, used, index = await self._script(_RESERVE_LUA, keys, args)
        except (OSError, ConnectionError, RedisError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("redis"):
                raise StoreUnavailable(str(exc)) from exc
            raise
        if code == OK:
            return OK, 0
        return _CODES[counters[index - 1].kind], int(used)

    async def _seed_budget(self, key_id: int, start: float | None) -> int:
        if self._seed is None or start is None:
            return 0
        from sequrity_site.aio import run_sync

        return await run_sync(self._seed, key_id, start)

    async def settle(self, key_id: int, deltas, now: float) -> None:
        live = [d for d in deltas if d[2]]
        if not live:
            return
        await self._script(
            _SETTLE_LUA,
            [redis_key(key_id, k, w) for k, w, _, _ in live],
            [x for _, _, d, ttl in live for x in (d, ttl)],
        )

    def reserve_nowait(self, key_id: int, counters: list[Counter]) -> asyncio.Future | None:
        """Write the reservation script at once (with any deferred settlement) and return the future of its raw
        reply, failed with ``ConnectionError`` if Redis does not answer in time. None when not connected."""
        conn = self._conn()
        proto = getattr(conn, "_proto", None)
        if proto is None or proto.lost:
            return None
        keys, args = self._args(key_id, counters)
        fut = conn._send(proto, ("EVALSHA", self._sha[_RESERVE_LUA], len(keys), *keys, *args))
        timer = asyncio.get_running_loop().call_later(conn.timeout, conn._expire, proto, fut)
        fut.add_done_callback(lambda _: timer.cancel())
        return fut

    def settle_nowait(self, key_id: int, deltas, now: float) -> bool:
        """Write the settlement script without waiting for its reply (False: not connected; use :meth:`settle`)."""
        live = [d for d in deltas if d[2]]
        if not live:
            return True
        conn = self._conn()
        send = getattr(conn, "send_nowait", None)
        if send is None:
            return False
        keys = [redis_key(key_id, k, w) for k, w, _, _ in live]
        args = [x for _, _, d, ttl in live for x in (d, ttl)]
        fut = send("EVALSHA", self._sha[_SETTLE_LUA], len(keys), *keys, *args)
        if fut is None:
            return False

        def done(f: asyncio.Future) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is None and isinstance(f.result(), RedisError):
                exc = f.result()
            if exc is None:
                return
            if str(exc).startswith("NOSCRIPT"):
                _spawn(asyncio.get_running_loop(), conn.command("EVAL", _SETTLE_LUA, len(keys), *keys, *args))
            else:
                logger.error("could not settle a reservation of key %s: %s", key_id, exc)

        fut.add_done_callback(done)
        return True

    def read_many(
        self, wanted: list[tuple[int, str, int]], now: float | None = None
    ) -> dict[tuple[int, str, int], int | None]:
        if not wanted:
            return {}
        values = self.sync_client().mget([redis_key(*w) for w in wanted])
        return {w: (None if v is None else int(v)) for w, v in zip(wanted, values, strict=True)}


class _RedisPyCommands:
    """``RespConnection``'s interface over ``redis.asyncio`` (TLS)."""

    def __init__(self, client) -> None:
        self.client = client

    async def command(self, *args):
        import redis

        try:
            return await self.client.execute_command(*args)
        except redis.ResponseError as exc:
            raise RedisError(str(exc)) from exc


class DatabaseStore:
    """Counters in the ``LimitCounter`` table (the embedded default): conditional updates in a transaction."""

    name = "database"

    def __init__(self, seed=None):
        self._seed = seed

    def reserve_sync(
        self, key_id: int, counters: list[Counter], now: float, seed_start: float | None
    ) -> tuple[int, int]:
        from django.db import IntegrityError, transaction
        from django.db.models import F

        from .models import LimitCounter

        expires = datetime.fromtimestamp(now, UTC)
        with transaction.atomic():
            for c in counters:
                rows = LimitCounter.objects.filter(api_key_id=key_id, kind=c.kind, window=c.window)
                if rows.filter(used__lt=c.limit).update(used=F("used") + c.inc):
                    continue
                used = rows.values_list("used", flat=True).first()
                if used is None:
                    initial = self._seed(key_id, seed_start) if (c.kind == "b" and self._seed) else 0
                    try:
                        with transaction.atomic():
                            LimitCounter.objects.create(
                                api_key_id=key_id,
                                kind=c.kind,
                                window=c.window,
                                used=initial,
                                expires_at=expires + timedelta(seconds=c.ttl),
                            )
                    except (
                        IntegrityError
                    ):  # created meanwhile by a concurrent reservation: it is committed now
                        pass
                    else:
                        LimitCounter.objects.filter(api_key_id=key_id, expires_at__lt=expires).delete()
                    if rows.filter(used__lt=c.limit).update(used=F("used") + c.inc):
                        continue
                    used = rows.values_list("used", flat=True).first() or 0
                transaction.set_rollback(True)
                return _CODES[c.kind], int(used)
        return OK, 0

    async def reserve(self, key_id, counters, now, seed_start):
        from sequrity_site.aio import run_sync

        return await run_sync(self.reserve_sync, key_id, counters, now, seed_start)

    def settle_sync(self, key_id: int, deltas, now: float) -> None:
        from django.db import IntegrityError, transaction
        from django.db.models import F

        from .models import LimitCounter

        with transaction.atomic():
            for kind, window, delta, ttl in deltas:
                if not delta:
                    continue
                rows = LimitCounter.objects.filter(api_key_id=key_id, kind=kind, window=window)
                if rows.update(used=F("used") + delta) or not ttl:
                    continue
                try:
                    with transaction.atomic():
                        LimitCounter.objects.create(
                            api_key_id=key_id,
                            kind=kind,
                            window=window,
                            used=delta,
                            expires_at=datetime.fromtimestamp(now + ttl, UTC),
                        )
                except IntegrityError:
                    rows.update(used=F("used") + delta)

    async def settle(self, key_id, deltas, now):
        from sequrity_site.aio import run_sync

        await run_sync(self.settle_sync, key_id, deltas, now)

    def read_many(
        self, wanted: list[tuple[int, str, int]], now: float | None = None
    ) -> dict[tuple[int, str, int], int | None]:
        from django.db.models import Q

        from .models import LimitCounter

        out: dict[tuple[int, str, int], int | None] = dict.fromkeys(wanted)
        if not wanted:
            return out
        q = Q()
        for key_id, kind, window in wanted:
            q |= Q(api_key_id=key_id, kind=kind, window=window)
        for key_id, kind, window, used in LimitCounter.objects.filter(q).values_list(
            "api_key_id", "kind", "window", "used"
        ):
            out[(key_id, kind, window)] = used
        return out


# ------------------------------------------------------------------------------------------------ Django edges


def seed_budget_from_log(key_id: int, start: float) -> int:
    """Spend of a key since ``start`` (a UTC day boundary) according to the usage log's daily rollups."""
    from django.db.models import Sum

    from sessions.models import Granularity, UsageRollup

    total = UsageRollup.objects.filter(
        api_key_id=key_id,
        granularity=Granularity.DAY,
        bucket__gte=datetime.fromtimestamp(start, UTC),
    ).aggregate(s=Sum("cost_nano"))["s"]
    return int(total or 0)


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


# prices: (expires monotonic, PriceTable); per (arch, defences): micro-dollars per million tokens, an integer
# (prices have at most 6 decimals), so a cost is integer arithmetic equal to ``sessions.credits.cost_nano``.
_prices: list = [0.0, None]
_micro_per_million: dict[tuple, int] = {}


async def _price_table():
    if _prices[1] is None or _prices[0] < time.monotonic():
        from sequrity_site.aio import run_sync
        from sessions.credits import price_table

        table = await run_sync(price_table)
        _micro_per_million.clear()
        _prices[:] = [time.monotonic() + PRICE_CACHE_SECONDS, table]
    return _prices[1]


def _cached_price(gov: Governance, arch: str) -> int | None:
    if _prices[1] is None or _prices[0] < time.monotonic():
        return None
    k = (arch or gov.arch, gov.defences)
    hit = _micro_per_million.get(k)
    if hit is None:
        usd = _prices[1].per_million(k[0], list(gov.defences))
        hit = _micro_per_million[k] = int((usd * 10**6).to_integral_value())
    return hit


async def price(gov: Governance, arch: str) -> int:
    """The key's price for an architecture in micro-dollars per million tokens (as the usage task debits it)."""
    hit = _cached_price(gov, arch)
    if hit is None:
        await _price_table()
        hit = _cached_price(gov, arch)
    return hit


def cost_of(tokens: int, micro_per_million: int) -> int:
    """Nano-dollars, rounded half up: ``tokens x USD/1M x 1000`` (``sessions.credits.cost_nano``)."""
    if tokens <= 0 or micro_per_million <= 0:
        return 0
    return (tokens * micro_per_million + 500) // 1000


def estimate_tokens(body: bytes | None) -> int:
    """What a request will cost at least, before it is served: its prompt, at ~4 bytes a token."""
    return len(body or b"") // 4


def refusal_for(code: int, used: int, gov: Governance, now: float) -> Refusal:
    if code == RPM:
        wait = retry_after_minute(now)
        return Refusal(
            429,
            f"Rate limit: this Sequrity API key allows {gov.rpm} requests per minute; retry in {wait} s",
            "limit_rpm",
            wait,
        )
    if code == TPM:
        wait = retry_after_minute(now)
        return Refusal(
            429,
            f"Rate limit: this Sequrity API key allows {gov.tpm} tokens per minute and {used} "
            f"were used this minute; retry in {wait} s",
            "limit_tpm",
            wait,
        )
    p = budget_period(gov.budget_period, now)
    return Refusal(
        402,
        f"Budget exhausted: the {p.label} budget of this Sequrity API key (${_usd(gov.budget_nano)}) is used "
        f"up (${_usd(used)} spent since {_utc(p.start)}); it resets at {_utc(p.end)}",
        "limit_budget",
        max(1, math.ceil(p.end - now)),
    )


def _usd(nano: int | None) -> str:
    """Dollars with cents, and up to 6 decimals where they matter: 0.50, 12.00, 0.000380."""
    text = f"{Decimal(nano or 0) / 10**9:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


async def reserve(
    gov: Governance, *, tokens_est: int, now: float | None = None, arch: str = ""
) -> tuple[Reservation | None, Refusal | None]:
    """Atomically check every limit of the key and reserve this request: (reservation, None) or (None, refusal)."""
    now = time.time() if now is None else now
    cost_est = 0
    period = None
    if gov.budget_nano is not None:
        period = budget_period(gov.budget_period, now)
        cost_est = cost_of(tokens_est, await price(gov, arch))
    counters = plan(gov, now, tokens_est, cost_est)
    code, used = await store().reserve(gov.key_id, counters, now, period.start if period else None)
    if code != OK:
        return None, refusal_for(code, used, gov, now)
    return Reservation(gov, minute(now), period, tokens_est, cost_est), None


async def settle_reservation(
    res: Reservation, *, tokens: int, arch: str = "", now: float | None = None
) -> None:
    """Settle a reservation and wait until the store has it."""
    if res.settled:
        return
    cost = cost_of(tokens, await price(res.gov, arch)) if res.gov.budget_nano is not None else 0
    if res.settled:
        return
    res.settled = True
    now = time.time() if now is None else now
    await store().settle(res.gov.key_id, settle_deltas(res, tokens, cost, now), now)


def _settle_now(res: Reservation, tokens: int, arch: str, now: float | None = None) -> None:
    """Send the settlement of a reservation without waiting for it (no task on Redis and in memory)."""
    if res.settled:
        return
    cost_price = None
    if res.gov.budget_nano is not None:
        cost_price = _cached_price(res.gov, arch)
        if cost_price is None:  # the price table is being reloaded: settle once it is there
            _spawn(asyncio.get_running_loop(), settle_reservation(res, tokens=tokens, arch=arch, now=now))
            return
    res.settled = True
    now = time.time() if now is None else now
    cost = cost_of(tokens, cost_price) if res.gov.budget_nano is not None else 0
    deltas = settle_deltas(res, tokens, cost, now)
    target = store()
    nowait = getattr(target, "settle_nowait", None)
    if nowait is None or not nowait(res.gov.key_id, deltas, now):
        _spawn(asyncio.get_running_loop(), target.settle(res.gov.key_id, deltas, now))


# --- the pipeline's hooks ---------------------------------------------------------------------------------------
#
# ``admit`` (after the body is parsed) refuses at once what needs no I/O (expiry, lists) and starts the
# reservation; ``admitted`` (``relay.lifecycle.stages.resolve_credentials``, before any provider is called) waits for it
# and refuses the request when a limit is reached. In between, the relay parses headers and resolves the session
# (its own store round trips), so the reservation's round trip costs the request next to nothing. ``settle``
# (``finish``) corrects the counters in the background: the answer does not wait for it.

_background: set[asyncio.Task] = set()


_UNAVAILABLE = Refusal(
    503, "The relay cannot check this key's limits right now; retry later", "limits_unavailable", 1
)


async def _reserve_or_refuse(
    gov: Governance, tokens_est: int, now: float
) -> tuple[Reservation | None, Refusal | None]:
    try:
        return await reserve(gov, tokens_est=tokens_est, now=now)
    except StoreUnavailable:
        logger.exception("governance store unavailable")
        return None, _UNAVAILABLE


def _raise(refusal: Refusal):
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
    raise RelayError(refusal.status, refusal.message, refusal.kind, headers)


async def admit(call, request) -> None:
    """Refuse the request (``RelayError``) if the key expired or may not use its provider or model; start the
    reservation of its limits (``call.reservation``; :func:`admitted` waits for it)."""
    gov = call.principal.governance
    if gov is None:
        return
    now = time.time()
    refusal = check_access(
        gov, call.route.provider, call.body.get("model") if isinstance(call.body, dict) else None, now
    )
    if refusal is not None:
        _raise(refusal)
    if gov.metered:
        call.reservation = _start_reservation(gov, estimate_tokens(request.body), now)


def _start_reservation(gov: Governance, tokens_est: int, now: float) -> asyncio.Future:
    """A future of (reservation, refusal). With Redis connected and the price known, the script is written at
    once, before the request goes on (no task, one socket write); otherwise :func:`reserve` runs as a task."""
    target = store()
    fast = getattr(target, "reserve_nowait", None)
    cost_price = _cached_price(gov, gov.arch) if gov.budget_nano is not None else 0
    if fast is None or cost_price is None:
        return asyncio.ensure_future(_reserve_or_refuse(gov, tokens_est, now))
    period = budget_period(gov.budget_period, now) if gov.budget_nano is not None else None
    cost_est = cost_of(tokens_est, cost_price) if period is not None else 0
    counters = plan(gov, now, tokens_est, cost_est)
    raw = fast(gov.key_id, counters)
    if raw is None:
        return asyncio.ensure_future(_reserve_or_refuse(gov, tokens_est, now))
    result = asyncio.get_running_loop().create_future()

    def reply(f: asyncio.Future) -> None:
        if result.done():
            return
        value = None if f.cancelled() or f.exception() is not None else f.result()
        if value is None:
            logger.error("governance store unavailable: %s", "cancelled" if f.cancelled() else f.exception())
            result.set_result((None, _UNAVAILABLE))
        elif isinstance(value, RedisError) or value[0] == SEED:  # script not loaded, budget not seeded yet
            task = asyncio.ensure_future(_reserve_or_refuse(gov, tokens_est, now))
            task.add_done_callback(
                lambda t: (
                    result.done()
                    or result.set_result(
                        t.result() if not t.cancelled() and t.exception() is None else (None, _UNAVAILABLE)
                    )
                )
            )
        elif value[0] == OK:
            result.set_result((Reservation(gov, minute(now), period, tokens_est, cost_est), None))
        else:
            result.set_result(
                (None, refusal_for(_CODES[counters[value[2] - 1].kind], int(value[1]), gov, now))
            )

    raw.add_done_callback(reply)
    return result


async def admitted(call) -> None:
    """Wait for the reservation :func:`admit` started; refuse the request (429, 402, 503) if it was refused."""
    pending = getattr(call, "reservation", None)
    if not isinstance(pending, asyncio.Future):
        return
    res, refusal = await asyncio.shield(pending)  # a cancelled request leaves it to settle (done callback)
    call.reservation = res
    if refusal is not None:
        _raise(refusal)


async def settle(call) -> None:
    """Settle ``call.reservation`` with the request's actual tokens and cost, without waiting for the store
    (idempotent; never raises). A reservation still under way is settled when it completes."""
    pending = getattr(call, "reservation", None)
    if pending is None:
        return
    call.reservation = None
    tokens = call.usage.prompt_tokens + call.usage.completion_tokens
    arch = call.state.arch if call.state is not None else ""
    try:
        if isinstance(pending, asyncio.Future):

            def reserved(fut: asyncio.Future) -> None:
                if fut.cancelled() or fut.exception() is not None or fut.result()[0] is None:
                    return
                try:
                    _settle_now(fut.result()[0], tokens, arch)
                except Exception:  # noqa: BLE001
                    logger.exception("could not settle a reservation")

            pending.add_done_callback(reserved)
        else:
            _settle_now(pending, tokens, arch)
    except Exception:  # noqa: BLE001 - the request is served; a lost correction must not fail it
        logger.exception("could not settle a reservation")


def _spawn(loop, coro) -> None:
    task = loop.create_task(coro)
    _background.add(task)
    task.add_done_callback(_settled)


def _settled(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not settle a reservation", exc_info=task.exception())


async def drain() -> None:
    """Wait for the settlements under way (tests, shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


def stored_credential(gov: Governance | None, provider: str) -> str | None:
    """The key's own provider credential for ``provider`` (decrypted), if it has one."""
    if gov is None or not gov.provider_key:
        return None
    if gov.provider_key_provider and gov.provider_key_provider != provider:
        return None
    return _decrypt(gov.provider_key)


@functools.lru_cache(maxsize=1024)
def _decrypt(token: str) -> str:
    from . import crypto

    return crypto.decrypt(token)


# --- the dashboard ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    limit_nano: int
    used_nano: int
    soft_percent: int
    period: Period

    @property
    def percent(self) -> float:
        return 100.0 * self.used_nano / self.limit_nano if self.limit_nano else 100.0

    @property
    def bar_percent(self) -> float:
        return min(100.0, max(0.0, self.percent))

    @property
    def over_soft(self) -> bool:
        return self.percent >= self.soft_percent

    @property
    def exhausted(self) -> bool:
        return self.used_nano >= self.limit_nano

    @property
    def resets_at(self) -> datetime:
        return datetime.fromtimestamp(self.period.end, UTC)

    @property
    def used_usd(self) -> str:
        return _usd(max(0, self.used_nano))

    @property
    def limit_usd(self) -> str:
        return _usd(self.limit_nano)


def budget_statuses(keys, now: float | None = None) -> dict[int, BudgetStatus]:
    """Budget use of keys (``ApiKey`` objects) in their current period: the live counter, or the usage log
    when the period has no counter yet. One read of the store for all keys."""
    now = time.time() if now is None else now
    with_budget = [k for k in keys if k.budget_nano is not None]
    if not with_budget:
        return {}
    periods = {k.pk: budget_period(k.budget_period, now) for k in with_budget}
    try:
        live = store().read_many([(k.pk, "b", periods[k.pk].id) for k in with_budget], now)
    except Exception:  # noqa: BLE001 - the page still shows the logged spend
        logger.exception("governance store unavailable for the dashboard")
        live = {}
    out = {}
    for k in with_budget:
        p = periods[k.pk]
        used = live.get((k.pk, "b", p.id))
        if used is None:
            used = seed_budget_from_log(k.pk, p.start)
        out[k.pk] = BudgetStatus(k.budget_nano, int(used), k.budget_soft_percent, p)
    return out


def usd_to_nano(usd: Decimal) -> int:
    return int((Decimal(usd) * 10**9).to_integral_value())


def nano_to_usd(nano: int | None) -> Decimal | None:
    return None if nano is None else (Decimal(nano) / 10**9).normalize()
