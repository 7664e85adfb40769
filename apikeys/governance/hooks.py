"""The relay's entry points: :func:`admit` and :func:`admitted` before a request is served, :func:`settle` when
it ends, and :func:`stored_credential` (the key's own provider credential); also :func:`reserve` and
:func:`settle_reservation`, the same steps awaited end to end (tests, the bench).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from relay.lifecycle.call import RelayError

from .background import _spawn
from .configured_store import store
from .counters import (
    _CODES,
    OK,
    SEED,
    Reservation,
    StoreUnavailable,
    plan,
    refusal_for,
    settle_deltas,
)
from .pricing import _cached_price, cost_of, estimate_tokens, price
from .resp import RedisError
from .rules import Governance, Refusal, check_access
from .windows import budget_period, minute

logger = logging.getLogger(__package__)


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


def stored_credential(gov: Governance | None, provider: str) -> str | None:
    """The key's own provider credential for ``provider`` (decrypted), if it has one."""
    if gov is None or not gov.provider_key:
        return None
    if gov.provider_key_provider and gov.provider_key_provider != provider:
        return None
    return _decrypt(gov.provider_key)


@functools.lru_cache(maxsize=1024)
def _decrypt(token: str) -> str:
    from .. import crypto

    return crypto.decrypt(token)
