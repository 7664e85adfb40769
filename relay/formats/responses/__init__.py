"""OpenAI Responses (``…/v1/responses``): decode, encode, pass-through, and translation to/from Chat
Completions for chat-only providers (``sequrity_azure``, in ``via_chat``).

``FORMAT`` is this API's :class:`~relay.formats.protocol.ApiFormat`; the functions are importable here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import FormatBundle
from ..validation import JsonObject
from . import answers, decode, encode
from .answers import (
    CALL,
    STATUSES,
    extract_text,
    extract_tool_calls,
    extract_usage,
    filter_tool_calls,
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
    MESSAGE_ROLES,
    SEQURITY_FIELDS,
    TEXT_PART_TYPES,
    ResponsesParams,
    decode_input,
    decode_request,
    decode_tools,
    item_kind,
    parts_text,
    response_echo,
    upstream_body,
)
from .encode import (
    ResponsesEmitter,
    function_call_item,
    message_item,
    response_object,
    stream_text_answer,
    stream_tool_call_answer,
    text_answer,
    tool_call_answer,
    usage_dict,
)
from .stream import FINAL_TYPES, STREAM_TYPES, ResponsesStreamRelay
from .via_chat import ChatToResponsesRelay, from_chat_answer, to_chat_request


@dataclass(frozen=True, kw_only=True)
class ResponsesFormat(FormatBundle):
    ResponsesStreamRelay: type[ResponsesStreamRelay] = ResponsesStreamRelay
    ChatToResponsesRelay: type[ChatToResponsesRelay] = ChatToResponsesRelay
    response_echo: Callable[[Mapping[str, Any]], JsonObject] = response_echo
    to_chat_request: Callable[..., JsonObject] = to_chat_request
    from_chat_answer: Callable[..., JsonObject] = from_chat_answer


FORMAT = ResponsesFormat.of(API, decode, encode, answers, ResponsesStreamRelay)

__all__ = [
    "API", "CALL", "FINAL_TYPES", "FORMAT", "MESSAGE_ROLES", "SEQURITY_FIELDS", "STATUSES", "STREAM_TYPES",
    "TEXT_PART_TYPES", "ChatToResponsesRelay", "ResponsesEmitter", "ResponsesFormat", "ResponsesParams",
    "ResponsesStreamRelay", "decode_input", "decode_request", "decode_tools", "extract_text",
    "extract_tool_calls", "extract_usage", "filter_tool_calls", "from_chat_answer", "function_call_item",
    "item_kind", "message_item", "parts_text", "response_echo", "response_object", "rewrite_answer_arguments",
    "rewrite_answer_ids", "rewrite_call_arguments", "rewrite_ids_in_request", "rewrite_tool_results",
    "sanitize_answer", "stream_text_answer", "stream_tool_call_answer", "text_answer", "to_chat_request",
    "tool_call_answer", "upstream_body", "usage_dict", "usage_from",
]
