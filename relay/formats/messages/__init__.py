"""Anthropic Messages (``…/v1/messages``): decode, encode, single-LLM pass-through.

``FORMAT`` is this API's :class:`~relay.formats.protocol.ApiFormat`; the functions are importable here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import FormatBundle
from . import answers, decode, encode
from .answers import (
    BLOCK_TYPES,
    CALL,
    SERVICE_TIERS,
    STOP_REASONS,
    extract_text,
    extract_tool_calls,
    extract_usage,
    filter_tool_calls,
    normalise_stop,
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
    MessagesParams,
    blocks_text,
    decode_messages,
    decode_request,
    decode_tools,
    upstream_body,
)
from .encode import stream_text_answer, stream_tool_call_answer, text_answer, tool_call_answer, wire_tool_use
from .stream import DELTA_TYPES, STREAM_BLOCK_TYPES, STREAM_TYPES, MessagesStreamRelay


@dataclass(frozen=True, kw_only=True)
class MessagesFormat(FormatBundle):
    MessagesStreamRelay: type[MessagesStreamRelay] = MessagesStreamRelay


FORMAT = MessagesFormat.of(API, decode, encode, answers, MessagesStreamRelay)

__all__ = [
    "API", "BLOCK_TYPES", "CALL", "DELTA_TYPES", "FORMAT", "ROLES", "SEQURITY_FIELDS", "SERVICE_TIERS",
    "STOP_REASONS", "STREAM_BLOCK_TYPES", "STREAM_TYPES", "MessagesFormat", "MessagesParams",
    "MessagesStreamRelay", "blocks_text", "decode_messages", "decode_request", "decode_tools", "extract_text",
    "extract_tool_calls", "extract_usage", "filter_tool_calls", "normalise_stop", "rewrite_answer_arguments",
    "rewrite_answer_ids", "rewrite_call_arguments", "rewrite_ids_in_request", "rewrite_tool_results",
    "sanitize_answer", "stream_text_answer", "stream_tool_call_answer", "text_answer", "tool_call_answer",
    "upstream_body", "usage_from", "wire_tool_use",
]
