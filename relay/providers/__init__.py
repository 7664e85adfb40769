"""Upstream LLM providers (framework-free): pooled HTTP clients, SSE streaming, the server's own LLM calls.

    configure(UpstreamSettings(...))                       # once at startup (Django: from settings)
    await post_json(provider, path_kind, body, api_key)    # -> dict, raises UpstreamError
    async for ev in stream_events(provider, path_kind, body, api_key): ...   # SSEEvent(event, data)
    stream = await open_stream(...)                        # same, but the status is checked up front
    await complete(provider, model, api_key, system=..., messages=[...], json_schema=...)  # -> Completion

``provider`` ∈ openai | openrouter | anthropic | sequrity_azure; ``path_kind`` ∈ chat | messages | responses.
"""

from ..formats.model import Usage
from ..formats.sse import SSEEvent
from .client import (
    UpstreamStream,
    aclose_clients,
    auth_headers,
    call_from_sync_code,
    get_client,
    open_stream,
    openrouter_model,
    post_json,
    stream_events,
)
from .complete import Completion, complete, generation_params
from .errors import UpstreamError
from .settings import PATH_KINDS, PROVIDERS, UpstreamSettings, configure, get_settings

__all__ = [
    "UpstreamSettings",
    "configure",
    "get_settings",
    "PROVIDERS",
    "PATH_KINDS",
    "UpstreamError",
    "SSEEvent",
    "Usage",
    "post_json",
    "stream_events",
    "open_stream",
    "UpstreamStream",
    "complete",
    "Completion",
    "generation_params",
    "openrouter_model",
    "auth_headers",
    "get_client",
    "aclose_clients",
    "call_from_sync_code",
]
