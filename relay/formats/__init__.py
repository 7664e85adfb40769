"""API formats (framework-free): Chat Completions, Anthropic Messages, OpenAI Responses.

One conversation model (``model``: DecodedRequest, Turn, ToolCall …) that the three APIs decode into and
encode from. Each API is a small package (``chat``, ``messages``, ``responses``: ``decode``, ``encode``,
``answers``, ``stream``) on shared parts: ``validation`` (request checks), ``wire`` (tool-call shapes,
copy-on-write rewrites), ``holdback`` (the streaming base: hold back, decide, release, abort) and ``sse``.
``FORMATS[api]`` is the API's :class:`~relay.formats.protocol.ApiFormat`.
"""

from . import chat, messages, responses
from .model import (
    DecodedRequest,
    NewId,
    RequestError,
    ToolCall,
    ToolDef,
    ToolResult,
    Turn,
    Usage,
    error_body,
    parse_json_body,
)
from .protocol import ApiFormat
from .sse import DONE, SSEEvent, SSEParser, StreamRelay, pump

FORMATS: dict[str, ApiFormat] = {
    "chat": chat.FORMAT,
    "messages": messages.FORMAT,
    "responses": responses.FORMAT,
}

__all__ = [
    "FORMATS",
    "ApiFormat",
    "chat",
    "messages",
    "responses",
    "DecodedRequest",
    "NewId",
    "RequestError",
    "ToolCall",
    "ToolDef",
    "ToolResult",
    "Turn",
    "Usage",
    "error_body",
    "parse_json_body",
    "DONE",
    "SSEEvent",
    "SSEParser",
    "StreamRelay",
    "pump",
]
