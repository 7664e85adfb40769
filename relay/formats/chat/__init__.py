"""OpenAI Chat Completions (``…/v1/chat/completions``): decode, encode, single-LLM pass-through.

``FORMAT`` is this API's :class:`~relay.formats.protocol.ApiFormat`; the functions are importable here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import FormatBundle
from . import answers, decode, encode
from .answers import (
    CALL,
    extract_text,
    extract_tool_calls,
    extract_usage,
    filter_tool_calls,
    normalise_finish,
    rewrite_answer_arguments,
    rewrite_answer_ids,
    rewrite_call_arguments,
    rewrite_ids_in_request,
    rewrite_tool_results,
    sanitize_answer,
    usage_from,
)
from .decode import (
    API,
    ROLES,
    SEQURITY_FIELDS,
    TOOL_NAME_RE,
    ChatParams,
    content_text,
    decode_messages,
    decode_request,
    decode_tools,
    upstream_body,
)
from .encode import (
    stream_text_answer,
    stream_tool_call_answer,
    text_answer,
    tool_call_answer,
    wire_tool_calls,
)
from .stream import FINISH_REASONS, SERVICE_TIERS, ChatStreamRelay

_normalise_finish = normalise_finish  # the name the tests knew


@dataclass(frozen=True, kw_only=True)
class ChatFormat(FormatBundle):
    ChatStreamRelay: type[ChatStreamRelay] = ChatStreamRelay


FORMAT = ChatFormat.of(API, decode, encode, answers, ChatStreamRelay)

__all__ = [
    "API", "CALL", "FINISH_REASONS", "FORMAT", "ROLES", "SEQURITY_FIELDS", "SERVICE_TIERS", "TOOL_NAME_RE",
    "ChatFormat", "ChatParams", "ChatStreamRelay", "content_text", "decode_messages", "decode_request",
    "decode_tools", "extract_text", "extract_tool_calls", "extract_usage", "filter_tool_calls",
    "normalise_finish", "rewrite_answer_arguments", "rewrite_answer_ids", "rewrite_call_arguments",
    "rewrite_ids_in_request", "rewrite_tool_results", "sanitize_answer", "stream_text_answer",
    "stream_tool_call_answer", "text_answer", "tool_call_answer", "upstream_body", "usage_from",
    "wire_tool_calls",
]
