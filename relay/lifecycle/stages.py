"""The stages of a Control API request, in the order ``relay.lifecycle.chain`` runs them.

Each stage reads and fills the ``Call``; a stage that refuses the request raises ``RelayError`` (the API's
own error shape, before a byte is sent). The architectures are stages too (``relay.architectures``).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from typing import Any

from django.http import HttpRequest

from apikeys import crypto, governance
from apikeys.selectors import KeyPrincipal, aauthenticate, aget_server_credential
from sessions.credits import acheck_credit

from .. import session_store
from ..config import ModelStringError, parse_model_string, resolve_config
from ..formats import FORMATS, RequestError, parse_json_body
from ..formats._json import dumps, loads
from ..guardrails.memo import bind_session_state
from ..providers import get_settings
from ..routes import Route
from ..toolcalls.ids import session_id_in
from .call import Call, RelayError
from .documents import HeaderDocuments, parse_header_documents
from .state import SessionState

# ---------------------------------------------------------------------------------------- who is asking


async def authenticate(request: HttpRequest) -> KeyPrincipal:
    """The key of ``Authorization: Bearer <Sequrity API key>`` (401 otherwise)."""
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


async def check_credit(call: Call, request: HttpRequest) -> None:
    """402 when the key's owner has no credit left."""
    message = await acheck_credit(call.principal.user_id)
    if message:
        raise RelayError(402, message, "credit")


# ---------------------------------------------------------------------------------------- what is asked


async def parse_body(call: Call, request: HttpRequest) -> None:
    try:
        call.body = parse_json_body(request.body)
    except RequestError as exc:
        raise RelayError(exc.status, exc.message, "bad_request") from None


async def admit_to_key_limits(call: Call, request: HttpRequest) -> None:
    """The key's governance: expiry, provider/model lists; reserves its rate limits and budget."""
    await governance.admit(call, request)


async def parse_documents(call: Call, request: HttpRequest) -> None:
    call.documents = parse_header_documents(request)


async def decode_request(call: Call, request: HttpRequest) -> None:
    """The body in the API's own format, decoded into the conversation model."""
    try:
        call.decoded = FORMATS[call.route.api].decode_request(call.body)
    except RequestError as exc:
        raise RelayError(exc.status, exc.message, "bad_request") from None


# ---------------------------------------------------------------------------------------- the session


def session_candidates(call: Call, header_id: str | None) -> list[str]:
    """Session ids to try, most specific first (control-api.md §7.3, with the §7.3 tie-break)."""
    decoded = call.decoded
    assert decoded is not None
    out: list[str] = []
    for result in reversed(decoded.trailing_tool_results):
        sid = session_id_in(result.call_id)
        if sid:
            out.append(sid)
            break
    if header_id:
        out.append(header_id)
    for call_id in reversed(decoded.tool_result_ids() + decoded.tool_call_ids()):
        sid = session_id_in(call_id)
        if sid:
            out.append(sid)
            break
    return [c for c in dict.fromkeys(out) if session_store.is_session_id(c)]


async def _continue_session(call: Call, request: HttpRequest) -> None:
    """Continue a live session of this key (locked), or leave ``call.state`` None for a new one."""
    assert call.decoded is not None
    header_id = (request.META.get("HTTP_X_SESSION_ID") or "").strip() or None
    candidates = session_candidates(call, header_id)
    if call.decoded.previous_response_id:
        mapped = await session_store.alookup_response(call.decoded.previous_response_id)
        if mapped:
            candidates.append(mapped)
    for sid in candidates:
        stored = await session_store.aload(sid)
        if stored is None or stored.get("key_id") != call.principal.id:
            continue  # unknown, expired, or another key's: treated as unknown (§7.3)
        lock = session_store.alocked(sid)
        try:
            await lock.__aenter__()
        except session_store.SessionBusy as exc:
            raise RelayError(
                409,
                "Another request of this session is still running",
                "busy",
                {"Retry-After": str(exc.retry_after)},
            ) from None
        stored = await session_store.aload(sid)  # re-read under the lock
        if stored is None:
            await lock.__aexit__(None, None, None)
            continue
        call.session_id, call.state, call.locked = sid, SessionState.from_json(stored), lock
        return


_CONFIG_CACHE: dict[tuple[Any, ...], tuple[KeyPrincipal, dict[str, Any], bytes | None]] = {}


def session_config(call: Call, documents: HeaderDocuments) -> dict[str, Any]:
    """The resolved config; memoised per (key snapshot, endpoint type, raw header values).

    Resolution is pure, and the cached principal object changes whenever the key is re-read, so an entry
    is reused only for the very same key documents. The caller gets a deep copy (stored in the session):
    parsed from the entry's JSON when the config is plain JSON (the usual case, several times faster than
    copying the objects), else copied.
    """
    cache_key = (call.principal.id, call.route.endpoint_type, documents.raw)
    hit = _CONFIG_CACHE.get(cache_key)
    if hit is not None and hit[0] is call.principal:
        return loads(hit[2]) if hit[2] is not None else _copied(hit[1])
    config = resolve_config(
        arch=call.principal.arch,
        documents=call.principal.documents,
        endpoint_type=call.route.endpoint_type,
        features=documents.features,
        policy=documents.policy,
        config=documents.config,
    )
    if len(_CONFIG_CACHE) > 2048:
        _CONFIG_CACHE.clear()
    _CONFIG_CACHE[cache_key] = (call.principal, config, dumps(config) if _plain_json(config) else None)
    return _copied(config)


_IMMUTABLE = (str, int, float, bool, type(None))


def _plain_json(value: Any) -> bool:
    """Only dicts (string keys), lists, strings, numbers, booleans and None: JSON gives it back unchanged."""
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _plain_json(item) for key, item in value.items())
    if kind is list:
        return all(_plain_json(item) for item in value)
    if kind is float:
        return math.isfinite(value)  # (JSON has no NaN or infinity)
    return kind in _IMMUTABLE


def _copied(value: Any) -> Any:
    """``copy.deepcopy`` for the JSON-shaped configuration, without its memo bookkeeping (several times
    faster); anything else goes to ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


def new_session_state(call: Call, documents: HeaderDocuments) -> SessionState:
    route: Route = call.route
    return SessionState(
        key_id=call.principal.id,
        user_id=call.principal.user_id,
        config=session_config(call, documents),
        api=route.api,
        provider=route.provider,
        endpoint_type=route.endpoint_type,
        created=time.time(),
        policy_version=None if documents.policy is not None else call.principal.version_id,
    )


async def open_session(call: Call, request: HttpRequest) -> None:
    """Find the session this request continues, or open a new one; either way it is locked from here on."""
    await _continue_session(call, request)
    if call.state is None:
        assert call.documents is not None
        call.session_id = session_store.new_session_id()
        call.state = new_session_state(call, call.documents)
        call.is_new_session = True
        # Lock the new session: also the check that the store can keep it, before any upstream call.
        lock = session_store.alocked(call.session_id)
        await lock.__aenter__()
        call.locked = lock
    bind_session_state(call.state.memo_holder)  # the guardrails' memo of this session, for both architectures


# ---------------------------------------------------------------------------------------- credentials


async def resolve_credentials(call: Call, request: HttpRequest) -> None:
    """BYOK from X-Api-Key (remembered, encrypted, for the session), else the key's stored credential, else the
    server's. Before any provider is called: the key's limits must have admitted the request (429/402)."""
    await governance.admitted(call)
    try:
        pllm, qllm = parse_model_string(call.body.get("model"))
    except ModelStringError as exc:
        raise RelayError(400, str(exc), "bad_request") from None
    call.models = (pllm, qllm)
    provider = call.route.provider
    if not get_settings().base_url(provider):
        raise RelayError(503, f"Provider '{provider}' is not configured on this server", "not_configured")
    state = call.state  # None for policy generation: nothing to remember
    byok = (request.META.get("HTTP_X_API_KEY") or "").strip()
    if byok:
        call.api_key = byok
        if state is not None:
            state.byok = _encrypted(byok)
        return
    if state is not None and state.byok:
        call.api_key = crypto.decrypt(state.byok)
        return
    stored = governance.stored_credential(call.principal.governance, provider)  # the key's own credential
    if stored:
        call.api_key = stored
        return
    cred = await aget_server_credential(provider)
    if cred is None:
        raise RelayError(
            403,
            f"No server-managed credential is configured for provider '{provider}'; "
            "send your provider key in the X-Api-Key header",
            "no_credential",
        )
    for name in dict.fromkeys((pllm, qllm)):
        if name not in cred.allowed_models:
            raise RelayError(403, f"Model '{name}' is not allowed without X-Api-Key", "model_not_allowed")
    call.api_key = cred.api_key


@functools.lru_cache(maxsize=1024)
def _encrypted(secret: str) -> str:
    """Fernet token of a BYOK key; memoised so a client's every request does not pay for encryption."""
    return crypto.encrypt(secret)
