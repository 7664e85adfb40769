"""One Control API request, start to finish (the Django side of the relay).

    authenticate -> parse body and headers -> resolve the session (and its config) under a lock
    -> run the architecture (single: relay.single + providers; dual: relay.dual) -> encode the answer
    -> save the session state -> emit usage and session events (non-blocking)

Every step that can refuse the request does so before a byte is sent, with the API's own error shape.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from apikeys import crypto, governance
from apikeys.selectors import KeyPrincipal, aauthenticate, aget_server_credential
from sessions.emit import emit

from . import session_store
from .config import ModelStringError, parse_model_string, resolve_config
from .formats import FORMATS, RequestError, error_body, parse_json_body
from .formats.model import DecodedRequest, Usage
from .guardrails.memo import bind_session_state
from .headers import DocumentError, parse_document
from .meta import DEFAULT_META, Meta
from .providers import UpstreamError
from .routes import Route

logger = logging.getLogger(__name__)

TC_ID = re.compile(r"^tc-([0-9a-f-]{36})-")
HEADER_DOCS = (("features", "HTTP_X_FEATURES"), ("policy", "HTTP_X_POLICY"), ("config", "HTTP_X_CONFIG"))


class RelayError(Exception):
    """A refusal before anything was sent: HTTP status, message, and an error kind for the usage log."""

    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


@dataclass
class Call:
    """Everything known about the request being served."""

    route: Route
    principal: KeyPrincipal
    started: float
    body: dict = field(default_factory=dict)
    decoded: DecodedRequest | None = None
    session_id: str | None = None
    state: dict | None = None
    is_new_session: bool = False
    api_key: str | None = None
    models: tuple[str, str] = ("", "")
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_kind: str = ""
    error_message: str = ""
    streamed: bool = False
    locked: Any = None
    events: list[dict] = field(default_factory=list)
    reservation: Any = None  # apikeys.governance: this request's share of the key's limits, settled in finish


def error_response(status: int, message: str, api: str, headers: dict | None = None) -> JsonResponse:
    resp = JsonResponse(error_body(status, message, api), status=status)
    for k, v in (headers or {}).items():
        resp[k] = v
    return resp


# ------------------------------------------------------------------------------------------------ steps


async def authenticate(request, api: str) -> KeyPrincipal:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise RelayError(401, "Missing Authorization header; expected 'Bearer <Sequrity API key>'", "auth")
    if scheme.lower() != "bearer" or not token.strip():
        raise RelayError(401, "Authorization header must be 'Bearer <Sequrity API key>'", "auth")
    principal = await aauthenticate(token.strip())
    if principal is None:
        raise RelayError(401, "Invalid or revoked Sequrity API key", "auth")
    return principal


def parse_header_documents(request) -> dict[str, Any]:
    """Parse X-Features / X-Policy / X-Config (400 naming the header and field; SQRT compile errors too)."""
    docs: dict[str, Any] = {"raw": tuple(request.META.get(k) for _, k in HEADER_DOCS)}
    for kind, meta_key in HEADER_DOCS:
        raw = request.META.get(meta_key)
        if raw is None:
            docs[kind] = None
            continue
        try:
            docs[kind] = parse_document(kind, raw)
        except DocumentError as exc:
            raise RelayError(400, str(exc), "bad_request") from None
    policy = docs["policy"]
    if policy is not None and policy.codes is not None and policy.codes.code.strip():
        from .sqrt import PolicyCompileError, compile_policy

        try:
            compile_policy(policy.codes.code, policy.codes.language)
        except PolicyCompileError as exc:
            raise RelayError(400, f"Invalid X-Policy header: codes.code: {exc}", "bad_request") from None
    return docs


def _session_candidates(decoded: DecodedRequest, header_id: str | None) -> list[str]:
    """Session ids to try, most specific first (control-api.md §7.3, with the §7.3 tie-break)."""
    out: list[str] = []
    for result in reversed(decoded.trailing_tool_results):
        m = TC_ID.match(result.call_id)
        if m:
            out.append(m.group(1))
            break
    if header_id:
        out.append(header_id)
    for call_id in reversed(decoded.tool_result_ids() + decoded.tool_call_ids()):
        m = TC_ID.match(call_id)
        if m:
            out.append(m.group(1))
            break
    return [c for c in dict.fromkeys(out) if session_store.is_session_id(c)]


async def find_session(call: Call, request) -> None:
    """Continue a live session of this key, or leave ``call.state`` None for a new one."""
    header_id = (request.META.get("HTTP_X_SESSION_ID") or "").strip() or None
    candidates = _session_candidates(call.decoded, header_id)
    if call.decoded.previous_response_id:
        mapped = await session_store.alookup_response(call.decoded.previous_response_id)
        if mapped:
            candidates.append(mapped)
    for sid in candidates:
        state = await session_store.aload(sid)
        if state is None or state.get("key_id") != call.principal.id:
            continue  # unknown, expired, or another key's: treated as unknown (§7.3)
        lock = session_store.alocked(sid)
        try:
            await lock.__aenter__()
        except session_store.SessionBusy as exc:
            raise RelayError(409, "Another request of this session is still running", "busy",
                             {"Retry-After": str(exc.retry_after)}) from None
        state = await session_store.aload(sid)  # re-read under the lock
        if state is None:
            await lock.__aexit__(None, None, None)
            continue
        call.session_id, call.state, call.locked = sid, state, lock
        return


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
    client retries from the last saved state; ``handle``), a stream already sent stays as it is; the session
    is logged as failed either way."""
    from sequrity_site.logs import current_request_id

    logger.error("session %s could not be saved: %s", call.session_id, exc, exc_info=exc)
    if call.status < 400:
        call.state.update(status="error", error_reason="session store unavailable")
    if call.is_new_session:
        call.state["closed"] = True
    if not call.streamed and call.status < 400:
        call.status, call.error_kind = 503, "session_store"
        call.error_message = f"{exc.public_message} (request id {current_request_id()})"


_CONFIG_CACHE: dict[tuple, tuple[KeyPrincipal, dict]] = {}


def session_config(call: Call, docs: dict[str, Any], raw_headers: tuple) -> dict:
    """The resolved config; memoised per (key snapshot, endpoint type, raw header values).

    Resolution is pure, and the cached principal object changes whenever the key is re-read, so an entry
    is reused only for the very same key documents. The caller stores a deep copy in the session state.
    """
    cache_key = (call.principal.id, call.route.endpoint_type, raw_headers)
    hit = _CONFIG_CACHE.get(cache_key)
    if hit is not None and hit[0] is call.principal:
        return copy.deepcopy(hit[1])
    config = resolve_config(
        arch=call.principal.arch, documents=call.principal.documents, endpoint_type=call.route.endpoint_type,
        features=docs["features"], policy=docs["policy"], config=docs["config"],
    )
    if len(_CONFIG_CACHE) > 2048:
        _CONFIG_CACHE.clear()
    _CONFIG_CACHE[cache_key] = (call.principal, config)
    return copy.deepcopy(config)


def new_state(call: Call, docs: dict[str, Any]) -> dict:
    config = session_config(call, docs, docs["raw"])
    return {
        "key_id": call.principal.id, "user_id": call.principal.user_id, "config": config,
        "api": call.route.api, "provider": call.route.provider, "endpoint_type": call.route.endpoint_type,
        "created": time.time(), "turns": 0, "seq": 0, "closed": False, "status": "open",
        "session_meta": DEFAULT_META.to_json(), "id_map": {}, "pending": {}, "byok": None,
        "awaiting_tool_results": False,
        "policy_version": None if docs.get("policy") is not None else call.principal.version_id,
    }


async def resolve_credentials(call: Call, request) -> None:
    """BYOK from X-Api-Key (remembered, encrypted, for the session), else the key's stored credential, else the
    server's. Before any provider is called: the key's limits must have admitted the request (429/402)."""
    await governance.admitted(call)
    try:
        pllm, qllm = parse_model_string(call.body.get("model"))
    except ModelStringError as exc:
        raise RelayError(400, str(exc), "bad_request") from None
    call.models = (pllm, qllm)
    provider = call.route.provider
    from .providers import get_settings

    if not get_settings().base_url(provider):
        raise RelayError(503, f"Provider '{provider}' is not configured on this server", "not_configured")
    byok = (request.META.get("HTTP_X_API_KEY") or "").strip()
    if byok:
        call.api_key = byok
        call.state["byok"] = _encrypted(byok)
        return
    if call.state.get("byok"):
        call.api_key = crypto.decrypt(call.state["byok"])
        return
    stored = governance.stored_credential(call.principal.governance, provider)  # the key's own credential
    if stored:
        call.api_key = stored
        return
    cred = await aget_server_credential(provider)
    if cred is None:
        raise RelayError(
            403, f"No server-managed credential is configured for provider '{provider}'; "
                 "send your provider key in the X-Api-Key header", "no_credential")
    for name in dict.fromkeys((pllm, qllm)):
        if name not in cred.allowed_models:
            raise RelayError(403, f"Model '{name}' is not allowed without X-Api-Key", "model_not_allowed")
    call.api_key = cred.api_key


@functools.lru_cache(maxsize=1024)
def _encrypted(secret: str) -> str:
    """Fernet token of a BYOK key; memoised so a client's every request does not pay for encryption."""
    return crypto.encrypt(secret)


def session_event(call: Call, type_: str, **data) -> None:
    call.state["seq"] = call.state.get("seq", 0) + 1
    if type_ == "tool_call":  # which saved key version decided it (None: the request's X-Policy replaced it)
        data.setdefault("policy_version", call.state.get("policy_version"))
    call.events.append({"session_id": call.session_id, "key_id": call.principal.id,
                        "turn": call.state.get("turns", 0) + 1, "seq": call.state["seq"], "type": type_,
                        "data": data})


def emit_session_row(call: Call) -> None:
    st = call.state
    emit("session", session_id=call.session_id, key_id=call.principal.id, arch=st["config"]["arch"],
         endpoint_type=st["endpoint_type"], api=st["api"], provider=st["provider"], status=st["status"],
         turns=st["turns"], closed=st["closed"], models=list(dict.fromkeys(call.models)),
         reason=st.get("error_reason", "") if st["status"] == "error" else "")


async def finish(call: Call) -> None:
    """Persist the session (or drop it when closed), emit the log events, release the lock.

    A failed request (HTTP error) marks its session "error" with the reason, and logs an ``error`` step; a
    new session whose first request failed is logged (closed) but not kept. Steps are logged as the key's
    ``content_logging`` allows (``relay.session_log``)."""
    from .session_log import redact

    try:
        if call.state is not None and call.session_id:
            failed = call.status >= 400
            if failed:
                call.state.update(status="error", error_reason=(call.error_message or call.error_kind)[:500])
                session_event(call, "error", status=call.status, kind=call.error_kind,
                              message=call.error_message[:2000])
                if call.is_new_session:
                    call.state["closed"] = True
            try:
                if call.state.get("closed"):
                    if not call.is_new_session:
                        await session_store.adelete(call.session_id)
                else:
                    await session_store.asave(call.session_id, call.state)
            except session_store.StoreUnavailable as exc:
                store_failed(call, exc)
            level = call.principal.content_logging
            for ev in call.events:
                emit("session_event", **redact(ev, level))
            emit_session_row(call)
    finally:
        await release(call)
        await governance.settle(call)  # actual tokens and cost into the key's limits (never raises)
        emit("usage", key_id=call.principal.id, session_id=call.session_id,
             endpoint_type=call.route.endpoint_type, api=call.route.api, provider=call.route.provider,
             arch=(call.state or {}).get("config", {}).get("arch", ""), models=list(dict.fromkeys(call.models)),
             prompt_tokens=call.usage.prompt_tokens, completion_tokens=call.usage.completion_tokens,
             latency_ms=round((time.perf_counter() - call.started) * 1000, 3), status_code=call.status,
             error_kind=call.error_kind, streamed=call.streamed)
        from sequrity_site.metrics import observe_call

        observe_call(call)


def tool_call_id(session_id: str) -> str:
    return f"tc-{session_id}-{uuid.uuid1()}"


def sse_response(chunks, call: Call) -> StreamingHttpResponse:
    from .streaming import ClosingStreamingResponse  # closes ``chunks`` at once when the client goes away

    resp = ClosingStreamingResponse(chunks, content_type="text/event-stream")
    resp["Cache-Control"] = "no-cache"
    resp["X-Accel-Buffering"] = "no"
    resp["X-Session-ID"] = call.session_id
    return resp


def json_response(data: dict, call: Call) -> HttpResponse:
    from .formats._json import dumps

    resp = HttpResponse(dumps(data), content_type="application/json")
    resp["X-Session-ID"] = call.session_id
    return resp


def _error_kind(exc: UpstreamError) -> str:
    if exc.status == 429:
        return "rate_limited"
    if exc.status == 504:
        return "timeout"
    if exc.status >= 500:
        return "upstream_5xx"
    return "upstream_4xx"


# ------------------------------------------------------------------------------------------------ entry


async def handle(request, route: Route) -> HttpResponse:
    started = time.perf_counter()
    api = route.api
    try:
        principal = await authenticate(request, api)
    except RelayError as exc:
        from sequrity_site.metrics import observe_request

        observe_request(route=f"{route.endpoint_type}:{api}", provider=route.provider, arch="", status=exc.status,
                        seconds=time.perf_counter() - started)
        return error_response(exc.status, exc.message, api)
    except Exception as exc:  # the key could not be checked (database down): the view answers 503 / 500
        _log_unauthenticated(request, route, started, exc)
        raise
    call = Call(route=route, principal=principal, started=started)
    streaming_handed_off = False
    try:
        credit_message = await _check_credit(principal)
        if credit_message:
            raise RelayError(402, credit_message, "credit")
        try:
            call.body = parse_json_body(request.body)
        except RequestError as exc:
            raise RelayError(exc.status, exc.message, "bad_request") from None
        await governance.admit(call, request)  # expiry, provider/model lists, reserve rate limits and budget
        docs = parse_header_documents(request)
        if api == "generate":
            from .policy_gen import handle_generate

            return await handle_generate(call, request)
        try:
            call.decoded = FORMATS[api].decode_request(call.body)
        except RequestError as exc:
            raise RelayError(exc.status, exc.message, "bad_request") from None
        await find_session(call, request)
        if call.state is None:
            call.session_id = session_store.new_session_id()
            call.state = new_state(call, docs)
            call.is_new_session = True
            # Lock the new session: also the check that the store can keep it, before any upstream call.
            lock = session_store.alocked(call.session_id)
            await lock.__aenter__()
            call.locked = lock
        bind_session_state(call.state)  # guardrail memo (relay.guardrails.memo) of this session, for both archs
        await resolve_credentials(call, request)
        if call.state["config"]["arch"] == "dual-llm":
            from .dual_view import run_dual

            response = await run_dual(call, request)
        else:
            from .single_view import run_single

            response = await run_single(call, request)
        streaming_handed_off = True  # a stream finishes itself; anything else is finished here, before answering
        if not isinstance(response, StreamingHttpResponse):
            await finish(call)
            if call.error_kind == "session_store" and response.status_code < 400:
                return error_response(503, call.error_message, api,
                                      {"Retry-After": str(session_store.RETRY_AFTER_SECONDS)})
        return response
    except RelayError as exc:
        call.status, call.error_kind, call.error_message = exc.status, exc.kind, exc.message
        return error_response(exc.status, exc.message, api, exc.headers)
    except UpstreamError as exc:
        call.status, call.error_kind, call.error_message = exc.status, _error_kind(exc), exc.message
        return error_response(exc.status, exc.message, api, exc.headers())
    except session_store.StoreUnavailable as exc:
        from sequrity_site.logs import current_request_id

        logger.error("session store unavailable: %s", exc, exc_info=exc)
        call.status, call.error_kind = 503, "session_store"
        call.error_message = f"{exc.public_message} (request id {current_request_id()})"
        return error_response(503, call.error_message, api, {"Retry-After": str(session_store.RETRY_AFTER_SECONDS)})
    except Exception as exc:
        from django.db import DatabaseError

        from sequrity_site.logs import current_request_id

        logger.exception("relay request failed")
        status = 503 if isinstance(exc, DatabaseError) else 500
        call.status, call.error_kind = status, "database" if status == 503 else "internal"
        call.error_message = f"{type(exc).__name__} (request id {current_request_id()})"
        message = "The relay's database is unavailable; retry later" if status == 503 else \
            "Internal error in the relay; the request was not completed"
        return error_response(status, f"{message} (request id {current_request_id()})", api,
                              {"Retry-After": "5"} if status == 503 else None)
    except asyncio.CancelledError:
        if call.status < 400:  # the client went away before its answer (a stream records its own end)
            call.status, call.error_kind = 499, "cancelled"
            call.error_message = "The client closed the connection before the answer was complete"
        raise
    finally:
        if not streaming_handed_off:
            # A refused new session is logged as failed (finish), but not kept: its id continues nothing.
            await finish(call)


def _log_unauthenticated(request, route: Route, started: float, exc: BaseException) -> None:
    """A request whose key could not be checked because the database was down is logged all the same, with
    the status the view answers (503; 500 for anything else), for the key the secret belongs to: resolved by
    the log flusher once the database is back (``sessions.emit.emit_unauthenticated``)."""
    from django.db import DatabaseError

    from sessions.emit import emit_unauthenticated

    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return
    status = 503 if isinstance(exc, DatabaseError) else 500
    try:
        emit_unauthenticated(
            token.strip(), session_id=None, endpoint_type=route.endpoint_type, api=route.api,
            provider=route.provider, arch="", models=[], prompt_tokens=0, completion_tokens=0,
            latency_ms=round((time.perf_counter() - started) * 1000, 3), status_code=status,
            error_kind="database" if status == 503 else "internal", streamed=False)
    except Exception:  # noqa: BLE001 - logging must not change the answer
        logger.exception("could not log a request refused before authentication")


async def _check_credit(principal: KeyPrincipal) -> str | None:
    from sessions.credits import acheck_credit

    return await acheck_credit(principal.user_id)


def meta_of(state: dict) -> Meta:
    return Meta.from_json(state.get("session_meta") or {})

