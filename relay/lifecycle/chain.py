"""One Control API request, start to finish: a declared chain of stages (``relay.lifecycle.stages``).

    authenticate -> credit -> parse body -> key limits -> header documents -> decode -> find or open the
    session -> credentials -> the architecture (single-LLM or dual-LLM; it encodes the answer)
    -> finish: persist the session, log its steps, meter the request (``relay.lifecycle.finish``)

Each stage reads and fills the ``Call``; the first that answers ends the chain. Every stage that can refuse
the request does so before a byte is sent, with the API's own error shape; whatever happens, the request is
finished exactly once (a stream finishes itself, ``relay.lifecycle.answers``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from sequrity_site.logs import current_request_id
from sequrity_site.metrics import observe_request
from sessions.emit import emit_unauthenticated

from .. import session_store
from ..architectures.dual_llm import run_dual
from ..architectures.single_llm import run_single
from ..policy_generation.endpoint import generate_policy
from ..providers import UpstreamError
from ..routes import Route
from .answers import error_response
from .call import Call, RelayError
from .finish import finish
from .stages import (
    admit_to_key_limits,
    authenticate,
    check_credit,
    decode_request,
    open_session,
    parse_body,
    parse_documents,
    resolve_credentials,
)

logger = logging.getLogger(__name__)

Stage = Callable[[Call, HttpRequest], Awaitable[HttpResponse | None]]
"""Reads and fills the call; returns the answer when it is the one that answers, else None."""

ARCHITECTURES: dict[str, Stage] = {"single-llm": run_single, "dual-llm": run_dual}


async def run_architecture(call: Call, request: HttpRequest) -> HttpResponse | None:
    """The session's architecture answers the request (and encodes the answer in the API's format)."""
    return await ARCHITECTURES.get(call.arch, run_single)(call, request)


SESSION_CHAIN: tuple[Stage, ...] = (
    check_credit,
    parse_body,
    admit_to_key_limits,
    parse_documents,
    decode_request,
    open_session,
    resolve_credentials,
    run_architecture,
)
"""Chat Completions, Messages and Responses: a request of a session."""

POLICY_GENERATION_CHAIN: tuple[Stage, ...] = (
    check_credit,
    parse_body,
    admit_to_key_limits,
    parse_documents,
    generate_policy,
)
"""Policy generation: no session, one LLM call."""

CHAINS: dict[str, tuple[Stage, ...]] = {"generate": POLICY_GENERATION_CHAIN}


async def run_chain(call: Call, request: HttpRequest, chain: tuple[Stage, ...]) -> HttpResponse:
    for stage in chain:
        response = await stage(call, request)
        if response is not None:
            return response
    raise RuntimeError(f"the chain of {call.route.api} ended without an answer")


async def handle(request: HttpRequest, route: Route) -> HttpResponse:
    """Serve one Control API request (``relay.views.api``)."""
    started = time.perf_counter()
    api = route.api
    try:
        principal = await authenticate(request)
    except RelayError as exc:
        observe_request(
            route=f"{route.endpoint_type}:{api}",
            provider=route.provider,
            arch="",
            status=exc.status,
            seconds=time.perf_counter() - started,
        )
        return error_response(exc.status, exc.message, api)
    except Exception as exc:  # the key could not be checked (database down): the view answers 503 / 500
        _log_unauthenticated(request, route, started, exc)
        raise
    call = Call(route=route, principal=principal, started=started)
    answered = False
    try:
        response = await run_chain(call, request, CHAINS.get(api, SESSION_CHAIN))
        answered = True
        if isinstance(response, StreamingHttpResponse):
            return response  # a stream finishes itself
        await finish(call)  # anything else is finished here, before answering
        if call.error_kind == "session_store" and response.status_code < 400:
            return error_response(
                503, call.error_message, api, {"Retry-After": str(session_store.RETRY_AFTER_SECONDS)}
            )
        return response
    except RelayError as exc:
        call.fail(exc.status, exc.kind, exc.message)
        return error_response(exc.status, exc.message, api, exc.headers)
    except UpstreamError as exc:
        call.fail(exc.status, _upstream_error_kind(exc), exc.message)
        return error_response(exc.status, exc.message, api, exc.headers())
    except session_store.StoreUnavailable as exc:
        logger.error("session store unavailable: %s", exc, exc_info=exc)
        call.fail(503, "session_store", f"{exc.public_message} (request id {current_request_id()})")
        return error_response(
            503, call.error_message, api, {"Retry-After": str(session_store.RETRY_AFTER_SECONDS)}
        )
    except Exception as exc:
        logger.exception("relay request failed")
        status = 503 if isinstance(exc, DatabaseError) else 500
        call.fail(
            status,
            "database" if status == 503 else "internal",
            f"{type(exc).__name__} (request id {current_request_id()})",
        )
        message = (
            "The relay's database is unavailable; retry later"
            if status == 503
            else "Internal error in the relay; the request was not completed"
        )
        return error_response(
            status,
            f"{message} (request id {current_request_id()})",
            api,
            {"Retry-After": "5"} if status == 503 else None,
        )
    except asyncio.CancelledError:
        if call.status < 400:  # the client went away before its answer (a stream records its own end)
            call.cancelled()
        raise
    finally:
        if not answered:
            # A refused new session is logged as failed (finish), but not kept: its id continues nothing.
            await finish(call)


def _upstream_error_kind(exc: UpstreamError) -> str:
    if exc.status == 429:
        return "rate_limited"
    if exc.status == 504:
        return "timeout"
    if exc.status >= 500:
        return "upstream_5xx"
    return "upstream_4xx"


def _log_unauthenticated(request: HttpRequest, route: Route, started: float, exc: BaseException) -> None:
    """A request whose key could not be checked because the database was down is logged all the same, with
    the status the view answers (503; 500 for anything else), for the key the secret belongs to: resolved by
    the log flusher once the database is back (``sessions.emit.emit_unauthenticated``)."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return
    status = 503 if isinstance(exc, DatabaseError) else 500
    try:
        emit_unauthenticated(
            token.strip(),
            session_id=None,
            endpoint_type=route.endpoint_type,
            api=route.api,
            provider=route.provider,
            arch="",
            models=[],
            prompt_tokens=0,
            completion_tokens=0,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            status_code=status,
            error_kind="database" if status == 503 else "internal",
            streamed=False,
        )
    except Exception:  # noqa: BLE001 - logging must not change the answer
        logger.exception("could not log a request refused before authentication")
