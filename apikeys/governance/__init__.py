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

**Modules**, in the order a request meets them (this package re-exports their names, so callers import
``apikeys.governance`` only):

* ``rules``: a key's :class:`Governance` and the checks without I/O (expiry, providers, models);
* ``windows``: the minute and the budget day or month a request counts in;
* ``counters``: the counters a reservation grows, how it is settled, the refusal for a limit reached;
* ``pricing``: a request's cost against the budget (the cached price table);
* ``memory_store``, ``database_store``, ``redis_store`` (over ``resp``, a pipelined Redis connection): where
  counters live; ``configured_store`` picks one;
* ``hooks``: :func:`admit`, :func:`admitted`, :func:`settle`, called by the relay's lifecycle;
  ``background`` keeps the settlements under way;
* ``dashboard``: budget use for the key pages.
"""

from __future__ import annotations

from .background import _background, _settled, _spawn, drain
from .configured_store import make_store, set_store, store, store_setting
from .counters import (
    _CODES,
    BUDGET,
    OK,
    RPM,
    SEED,
    TPM,
    Counter,
    Reservation,
    StoreUnavailable,
    plan,
    refusal_for,
    settle_deltas,
)
from .dashboard import BudgetStatus, budget_statuses, nano_to_usd, usd_to_nano
from .database_store import DatabaseStore, seed_budget_from_log
from .hooks import (
    _UNAVAILABLE,
    _decrypt,
    _raise,
    _reserve_or_refuse,
    _settle_now,
    _start_reservation,
    admit,
    admitted,
    reserve,
    settle,
    settle_reservation,
    stored_credential,
)
from .memory_store import MemoryStore
from .pricing import (
    PRICE_CACHE_SECONDS,
    _cached_price,
    _micro_per_million,
    _price_table,
    _prices,
    cost_of,
    estimate_tokens,
    price,
)
from .redis_store import _RESERVE_LUA, _SETTLE_LUA, RedisStore, _RedisPyCommands, redis_key
from .resp import RedisError, RespConnection, _pack, _parse, _RespProtocol
from .rules import (
    _WILDCARDS,
    ERROR_KINDS,
    ROW_FIELDS,
    Governance,
    Refusal,
    _usd,
    _utc,
    check_access,
    from_key,
    from_row,
    from_values,
)
from .windows import RATE_TTL, RATE_WINDOW, Period, _period, budget_period, minute, retry_after_minute

__all__ = [
    "BUDGET",
    "BudgetStatus",
    "Counter",
    "DatabaseStore",
    "ERROR_KINDS",
    "Governance",
    "MemoryStore",
    "OK",
    "PRICE_CACHE_SECONDS",
    "Period",
    "RATE_TTL",
    "RATE_WINDOW",
    "ROW_FIELDS",
    "RPM",
    "RedisError",
    "RedisStore",
    "Refusal",
    "Reservation",
    "RespConnection",
    "SEED",
    "StoreUnavailable",
    "TPM",
    "_CODES",
    "_RESERVE_LUA",
    "_RedisPyCommands",
    "_RespProtocol",
    "_SETTLE_LUA",
    "_UNAVAILABLE",
    "_WILDCARDS",
    "_background",
    "_cached_price",
    "_decrypt",
    "_micro_per_million",
    "_pack",
    "_parse",
    "_period",
    "_price_table",
    "_prices",
    "_raise",
    "_reserve_or_refuse",
    "_settle_now",
    "_settled",
    "_spawn",
    "_start_reservation",
    "_usd",
    "_utc",
    "admit",
    "admitted",
    "budget_period",
    "budget_statuses",
    "check_access",
    "cost_of",
    "drain",
    "estimate_tokens",
    "from_key",
    "from_row",
    "from_values",
    "make_store",
    "minute",
    "nano_to_usd",
    "plan",
    "price",
    "redis_key",
    "refusal_for",
    "reserve",
    "retry_after_minute",
    "seed_budget_from_log",
    "set_store",
    "settle",
    "settle_deltas",
    "settle_reservation",
    "store",
    "store_setting",
    "stored_credential",
    "usd_to_nano",
]
