"""Counters in Redis: one Lua script per reservation and one per settlement, atomic on the server.

The hot path of a metered request: :meth:`RedisStore.reserve_nowait` writes the reservation script straight on
the :class:`~apikeys.governance.resp.RespConnection` of the event loop, with no task in between.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from .background import _spawn
from .counters import _CODES, OK, SEED, Counter, StoreUnavailable
from .resp import RedisError, RespConnection

logger = logging.getLogger(__package__)


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
