"""Key governance, without the relay: rules, windows, and the three counter stores' check-and-increment."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apikeys import governance as g


def gov(**kw) -> g.Governance:
    return g.Governance(key_id=kw.pop("key_id", 1), **kw)


T0 = datetime(2026, 3, 31, 23, 59, 30, tzinfo=UTC).timestamp()


# --- rules --------------------------------------------------------------------------------------------------------


def test_from_values_none_without_settings():
    assert g.from_values(key_id=1) is None
    assert g.from_values(key_id=1, allowed_models=["", "  "]) is None
    got = g.from_values(key_id=1, allowed_models=["gpt-5-mini", "openai/*"], rpm_limit=3)
    assert got.models == {"gpt-5-mini"} and got.model_patterns == ("openai/*",) and got.metered


def test_expiry_401_says_expired():
    r = g.check_access(gov(expires_at=T0), "openai", "m", T0 + 1)
    assert r.status == 401 and "expired on 2026-03-31 23:59 UTC" in r.message and r.kind == "limit_expired"
    assert g.check_access(gov(expires_at=T0), "openai", "m", T0 - 1) is None


def test_provider_and_model_lists_403_naming_them():
    G = gov(
        providers=frozenset({"openai"}), models=frozenset({"gpt-5-mini"}), model_patterns=("anthropic/*",)
    )
    r = g.check_access(G, "anthropic", "gpt-5-mini", T0)
    assert r.status == 403 and "Provider 'anthropic'" in r.message
    r = g.check_access(G, "openai", "gpt-4o", T0)
    assert r.status == 403 and "Model 'gpt-4o'" in r.message and r.kind == "limit_model"
    assert g.check_access(G, "openai", "gpt-5-mini", T0) is None
    assert g.check_access(G, "openai", "anthropic/claude-x", T0) is None
    r = g.check_access(G, "openai", "gpt-5-mini,gpt-4o", T0)  # dual-LLM "pllm,qllm": both must be allowed
    assert r.status == 403 and "'gpt-4o'" in r.message


def test_periods_and_minutes():
    day = g.budget_period("day", T0)
    month = g.budget_period("month", T0)
    assert (
        day.id == 20260331
        and day.end == datetime(2026, 4, 1, tzinfo=UTC).timestamp()
        and day.label == "daily"
    )
    assert month.id == 202603 and month.start == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert (
        g.budget_period("month", datetime(2026, 12, 5, tzinfo=UTC).timestamp()).end
        == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    )
    assert g.retry_after_minute(T0) == 30
    r = g.refusal_for(g.BUDGET, 5 * 10**9, gov(budget_nano=5 * 10**9, budget_period="month"), T0)
    assert r.status == 402 and "monthly budget" in r.message and "$5.00" in r.message
    assert "resets at 2026-04-01 00:00 UTC" in r.message and r.retry_after == 30


# --- stores -------------------------------------------------------------------------------------------------------


def _redis_url() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()
    except OSError:
        return None
    return "redis://127.0.0.1:6379/9"


@pytest.fixture(params=["memory", "database", "redis"])
def store(request, transactional_db):
    from tests.factories import UserFactory, make_key

    if request.param == "redis":
        url = _redis_url()
        if url is None:
            pytest.skip("no Redis on 127.0.0.1:6379")
        import redis

        redis.Redis.from_url(url).flushdb()
        s = g.RedisStore(url, seed=lambda key_id, start: 0)
    elif request.param == "database":
        s = g.DatabaseStore(seed=lambda key_id, start: 0)
    else:
        s = g.MemoryStore()
    key, _ = make_key(UserFactory(), arch="single-llm")
    s.test_key_id = key.pk
    return s


def run(coro):
    return asyncio.run(coro)


def test_requests_per_minute_exact_then_next_minute(store):
    G = gov(key_id=store.test_key_id, rpm=3)
    codes = [run(store.reserve(G.key_id, g.plan(G, T0, 0, 0), T0, None))[0] for _ in range(5)]
    assert codes == [0, 0, 0, g.RPM, g.RPM]
    assert run(store.reserve(G.key_id, g.plan(G, T0 + 30, 0, 0), T0 + 30, None))[0] == g.OK  # a new minute


def test_all_or_nothing(store):
    """A refusal by one counter grows none of them."""
    G = gov(key_id=store.test_key_id, rpm=10, tpm=100)
    assert run(store.reserve(G.key_id, g.plan(G, T0, 100, 0), T0, None)) == (g.OK, 0)
    assert run(store.reserve(G.key_id, g.plan(G, T0, 5, 0), T0, None)) == (g.TPM, 100)
    m = g.minute(T0)
    assert store.read_many([(G.key_id, "r", m)], T0)[(G.key_id, "r", m)] == 1


def test_budget_reserve_settle(store):
    G = gov(key_id=store.test_key_id, budget_nano=1000, budget_period="day")
    p = g.budget_period("day", T0)
    res = []
    for _ in range(3):
        code, _ = run(store.reserve(G.key_id, g.plan(G, T0, 10, 300), T0, p.start))
        assert code == g.OK
        res.append(g.Reservation(G, g.minute(T0), p, 10, 300))
    assert run(store.reserve(G.key_id, g.plan(G, T0, 10, 300), T0, p.start))[0] == g.OK  # 900 < 1000
    assert run(store.reserve(G.key_id, g.plan(G, T0, 10, 300), T0, p.start)) == (g.BUDGET, 1200)
    for r in res:  # each actually cost 100: 3 x (100 - 300) back
        run(store.settle(G.key_id, g.settle_deltas(r, 10, 100, T0), T0))
    assert store.read_many([(G.key_id, "b", p.id)], T0)[(G.key_id, "b", p.id)] == 600
    assert run(store.reserve(G.key_id, g.plan(G, T0, 10, 300), T0, p.start))[0] == g.OK


def test_tokens_settled_in_the_minute_the_request_ends(store):
    G = gov(key_id=store.test_key_id, tpm=1000)
    assert run(store.reserve(G.key_id, g.plan(G, T0, 50, 0), T0, None))[0] == g.OK
    r = g.Reservation(G, g.minute(T0), None, 50, 0)
    later = T0 + 45  # the next minute
    run(store.settle(G.key_id, g.settle_deltas(r, 400, 0, later), later))
    got = store.read_many([(G.key_id, "t", g.minute(T0)), (G.key_id, "t", g.minute(later))], later)
    assert got == {(G.key_id, "t", g.minute(T0)): 50, (G.key_id, "t", g.minute(later)): 400}


def test_budget_counter_is_seeded_from_the_log(transactional_db):
    """A period without a counter (its first request, or Redis lost it) starts from the usage log's spend."""
    from sessions.models import Granularity, UsageRollup
    from tests.factories import UserFactory, make_key

    key, _ = make_key(UserFactory(), arch="single-llm")
    p = g.budget_period("month", T0)
    for day, cost in (
        (datetime(2026, 2, 28, tzinfo=UTC), 999),
        (datetime(2026, 3, 2, tzinfo=UTC), 700),
        (datetime(2026, 3, 30, tzinfo=UTC), 200),
    ):
        UsageRollup.objects.create(
            api_key=key, granularity=Granularity.DAY, bucket=day, model="m", requests=1, cost_nano=cost
        )
    assert g.seed_budget_from_log(key.pk, p.start) == 900
    s = g.DatabaseStore(seed=g.seed_budget_from_log)
    G = gov(key_id=key.pk, budget_nano=1000)
    assert s.reserve_sync(key.pk, g.plan(G, T0, 0, 100), T0, p.start) == (g.OK, 0)
    assert s.reserve_sync(key.pk, g.plan(G, T0, 0, 100), T0, p.start) == (g.BUDGET, 1000)


# --- the Redis connection -------------------------------------------------------------------------------------------


def test_resp_replies_parsed_only_when_complete():
    reply = b"*3\r\n:0\r\n:-5\r\n$2\r\nab\r\n"
    assert g._parse(reply, 0) == ([0, -5, b"ab"], len(reply))
    assert all(g._parse(reply[:n], 0) is None for n in range(len(reply)))
    assert isinstance(g._parse(b"-NOSCRIPT No matching script\r\n", 0)[0], g.RedisError)
    assert g._pack(["SET", "k", 5]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"
    conn = g.RespConnection("redis://user:p%40ss@example.com:6380/3")
    assert (conn.host, conn.port, conn.db, conn.username, conn.password) == (
        "example.com",
        6380,
        3,
        "user",
        "p@ss",
    )


def test_redis_store_reloads_flushed_scripts_and_reconnects():
    url = _redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(url).flushdb()
    store = g.RedisStore(url)
    G = gov(key_id=10**9, rpm=2)

    async def scenario():
        now = T0
        assert (await store.reserve(G.key_id, g.plan(G, now, 0, 0), now, None))[0] == g.OK
        redis.Redis.from_url(url).script_flush()  # NOSCRIPT: the script is sent again
        assert (await store.reserve(G.key_id, g.plan(G, now, 0, 0), now, None))[0] == g.OK
        store._conn()._proto.transport.close()  # the connection drops: the next command reconnects
        await asyncio.sleep(0.01)
        assert (await store.reserve(G.key_id, g.plan(G, now, 0, 0), now, None))[0] == g.RPM

    asyncio.run(scenario())


def test_unreachable_or_silent_redis_refuses_with_503():
    """No Redis, or one that does not answer: the request is refused (503), never let through unmetered."""
    from types import SimpleNamespace

    from relay.lifecycle.call import RelayError

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    G = gov(rpm=5)
    try:
        for url in (f"redis://127.0.0.1:{closed_port}/0", f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            store = g.RedisStore(url)
            g.set_store(store)

            async def scenario(store=store):
                store._conns.clear()
                conn = store._conn()
                conn.timeout = 0.3
                call = SimpleNamespace(
                    principal=SimpleNamespace(governance=G),
                    body={"model": "m"},
                    reservation=None,
                    route=SimpleNamespace(provider="openai"),
                )
                await g.admit(call, SimpleNamespace(body=b"{}"))
                with pytest.raises(RelayError) as info:
                    await g.admitted(call)
                return info.value

            err = asyncio.run(scenario())
            assert err.status == 503 and err.headers == {"Retry-After": "1"}
    finally:
        g.set_store(None)
        silent.close()


def test_integer_cost_equals_the_usage_tasks_cost():
    from decimal import Decimal

    from sessions.credits import cost_nano

    for usd in ("0.10", "0.20", "0.41", "0.123456", "3.000001", "12"):
        micro = int(Decimal(usd) * 10**6)
        for tokens in (0, 1, 2, 3, 7, 19, 999, 10**6, 123_456_789):
            assert g.cost_of(tokens, micro) == cost_nano(tokens, Decimal(usd)), (usd, tokens)


def test_pipeline_hooks_on_redis_fast_path():
    """admit / admitted / settle as the pipeline calls them, through Redis: the first request connects (a task),
    later ones write their script at once; NOSCRIPT and a missing budget counter fall back to the full path."""
    from types import SimpleNamespace

    from relay.formats.model import Usage
    from relay.lifecycle.call import RelayError

    url = _redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    sync = redis.Redis.from_url(url)
    sync.flushdb()
    store = g.RedisStore(url)
    g.set_store(store)
    G = gov(key_id=10**9 + 1, rpm=3, tpm=10**6, budget_nano=10**12, arch="single-llm")
    g._prices[:] = [
        time.monotonic() + 60,
        type("T", (), {"per_million": lambda self, a, d: Decimal("0.2")})(),
    ]
    g._micro_per_million.clear()

    def call():
        return SimpleNamespace(
            principal=SimpleNamespace(governance=G),
            body={"model": "m"},
            reservation=None,
            route=SimpleNamespace(provider="openai"),
            usage=Usage(30, 10),
            state=None,
        )

    async def one(c):
        await g.admit(c, SimpleNamespace(body=b"x" * 40))  # 10 tokens estimated
        fast = not isinstance(c.reservation, asyncio.Task)
        await g.admitted(c)
        await g.settle(c)
        return fast

    async def scenario():
        assert await one(call()) is False  # not connected yet: the full path
        sync.script_flush()
        assert await one(call()) is True  # written at once; NOSCRIPT -> the full path loads it
        assert await one(call()) is True
        c = call()
        with pytest.raises(RelayError) as info:
            await one(c)
        assert info.value.status == 429 and info.value.headers["Retry-After"]
        await asyncio.sleep(0.05)  # deferred settlements are written within 10 ms

    try:
        asyncio.run(scenario())
        m, p = g.minute(time.time()), g.budget_period("month", time.time())
        got = store.read_many([(G.key_id, "r", m), (G.key_id, "t", m), (G.key_id, "b", p.id)])
        assert got[(G.key_id, "r", m)] == 3
        assert (
            got[(G.key_id, "t", m)] == 120 and got[(G.key_id, "b", p.id)] == 120 * 200
        )  # 3 x 40 tokens, $0.20/1M
    finally:
        g.set_store(None)
        g._prices[:] = [0.0, None]
