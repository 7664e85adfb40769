"""API formats (framework-free): Chat Completions, Anthropic Messages, OpenAI Responses.

Each API module (``chat``, ``messages``, ``responses``) offers the same functions, so callers can pick one by
name through ``FORMATS[api]``:

    decode_request(body) -> DecodedRequest                      (RequestError names the bad field)
    upstream_body(body, *, stream=None) -> dict                 (client body -> provider body, pass-through)
    text_answer / tool_call_answer(...) -> dict                 (our own JSON answers)
    stream_text_answer / stream_tool_call_answer(...) -> list[bytes]   (our own SSE answers, §12)
    extract_usage / extract_text / extract_tool_calls(answer)   (upstream JSON answers)
    filter_tool_calls(answer, allowed_ids, denial_text)         (drop denied upstream calls)
    rewrite_answer_ids(answer, new_id) / rewrite_ids_in_request(body, mapping)
    rewrite_tool_results(body, fn) / rewrite_answer_arguments(answer, fn)   (guardrails, manual wrapper)
    rewrite_call_arguments(body, fn)                            (guardrails on the history's tool calls)
    <Api>StreamRelay(new_id, ...)                               (upstream stream -> client stream, sse.pump;
                                                                 ``done`` once the final events are out,
                                                                 ``pump(..., on_done=)`` meters before them)
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
from .sse import DONE, SSEEvent, SSEParser, StreamRelay, pump

FORMATS = {"chat": chat, "messages": messages, "responses": responses}

__all__ = [
    "FORMATS", "chat", "messages", "responses", "DecodedRequest", "NewId", "RequestError", "ToolCall",
    "ToolDef", "ToolResult", "Turn", "Usage", "error_body", "parse_json_body", "DONE", "SSEEvent", "SSEParser",
    "StreamRelay", "pump",
]
