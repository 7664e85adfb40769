"""The end of every request, whatever happened: persist the session, log it, release it, meter the request.

Run once per request: by the chain for an answer sent whole, by the stream itself once its end is known
(``relay.lifecycle.answers``). Never raises past the persisting step (a failed store is recorded on the call).
"""

from __future__ import annotations

import logging
import time

from apikeys import governance
from sequrity_site.logs import current_request_id
from sequrity_site.metrics import observe_call
from sessions.emit import emit_many

from .. import session_store
from ..session_log import redact
from .call import Call

logger = logging.getLogger(__name__)


async def finish(call: Call) -> None:
    """Persist the session (or drop it when closed), emit the log events, release the lock, meter.

    A failed request (HTTP error) marks its session "error" with the reason, and logs an ``error`` step; a
    new session whose first request failed is logged (closed) but not kept. Steps are logged as the key's
    ``content_logging`` allows (``relay.session_log``)."""
    events: list[tuple[str, dict]] = []  # journalled together at the end: one write (``emit_many``)
    try:
        state = call.state
        if state is not None and call.session_id:
            if call.status >= 400:
                state.record_error((call.error_message or call.error_kind)[:500])
                call.log_step(
                    "error", status=call.status, kind=call.error_kind, message=call.error_message[:2000]
                )
                if call.is_new_session:
                    state.closed = True
            try:
                if state.closed:
                    if not call.is_new_session:
                        await session_store.adelete(call.session_id)
                elif isinstance(call.locked, session_store.SessionLock):
                    # one store round trip saves and releases (``release`` below finds it released, unless
                    # the store failed: then it tries on its own, as it always did)
                    await call.locked.save_then_release(state.to_json())
                else:
                    await session_store.asave(call.session_id, state.to_json())
            except session_store.StoreUnavailable as exc:
                store_failed(call, exc)
            level = call.principal.content_logging
            events.extend(("session_event", redact(event, level)) for event in call.events)
            events.append(("session", session_row(call)))
    finally:
        try:
            await release(call)
            await governance.settle(call)  # actual tokens and cost into the key's limits (never raises)
        finally:
            events.append(("usage", usage_fields(call)))
            emit_many(events)
            observe_call(call)


async def release(call: Call) -> None:
    """Release the session lock; never raises (a lock left behind lapses with its lease, session_store)."""
    if call.locked is not None:
        lock, call.locked = call.locked, None
        try:
            await lock.__aexit__(None, None, None)
        except Exception:  # noqa: BLE001 - the usage event after it must not be skipped
            logger.exception("releasing the lock of session %s failed", call.session_id)


def store_failed(call: Call, exc: session_store.StoreUnavailable) -> None:
    """The session store did not take the session's new state: a non-streamed answer becomes a 503 (the
    client retries from the last saved state; ``relay.lifecycle.chain``), a stream already sent stays as it
    is; the session is logged as failed either way."""
    state = call.state
    assert state is not None
    logger.error("session %s could not be saved: %s", call.session_id, exc, exc_info=exc)
    if call.status < 400:
        state.record_error("session store unavailable")
    if call.is_new_session:
        state.closed = True
    if not call.streamed and call.status < 400:
        call.status, call.error_kind = 503, "session_store"
        call.error_message = f"{exc.public_message} (request id {current_request_id()})"


def usage_fields(call: Call) -> dict:
    """The request's row of the usage log (the ``usage`` event)."""
    return {
        "key_id": call.principal.id,
        "session_id": call.session_id,
        "endpoint_type": call.route.endpoint_type,
        "api": call.route.api,
        "provider": call.route.provider,
        "arch": call.arch,
        "models": list(dict.fromkeys(call.models)),
        "prompt_tokens": call.usage.prompt_tokens,
        "completion_tokens": call.usage.completion_tokens,
        "latency_ms": round((time.perf_counter() - call.started) * 1000, 3),
        "status_code": call.status,
        "error_kind": call.error_kind,
        "streamed": call.streamed,
    }


def session_row(call: Call) -> dict:
    """The session's row of the session log (the ``session`` event)."""
    state = call.state
    assert state is not None
    return {
        "session_id": call.session_id,
        "key_id": call.principal.id,
        "arch": state.arch,
        "endpoint_type": state.endpoint_type,
        "api": state.api,
        "provider": state.provider,
        "status": state.status,
        "turns": state.turns,
        "closed": state.closed,
        "models": list(dict.fromkeys(call.models)),
        "reason": (state.error_reason or "") if state.status == "error" else "",
    }
