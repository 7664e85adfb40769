"""OpenAI Responses (``…/v1/responses``): decode, encode, pass-through, and translation to/from Chat
Completions for chat-only providers (``sequrity_azure``, in ``via_chat``).

``FORMAT`` is this API's :class:`~relay.formats.protocol.ApiFormat`; the functions are importable here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import JsonObject
from ..protocol import FormatBundle
from . import answers, decode, encode
from .answers import *  # noqa: F403
from .decode import *  # noqa: F403
from .decode import API, response_echo
from .encode import *  # noqa: F403
from .stream import *  # noqa: F403
from .stream import ResponsesStreamRelay
from .via_chat import *  # noqa: F403
from .via_chat import ChatToResponsesRelay, from_chat_answer, to_chat_request


@dataclass(frozen=True, kw_only=True)
class ResponsesFormat(FormatBundle):
    ResponsesStreamRelay: type[ResponsesStreamRelay] = ResponsesStreamRelay
    ChatToResponsesRelay: type[ChatToResponsesRelay] = ChatToResponsesRelay
    response_echo: Callable[[Mapping[str, Any]], JsonObject] = response_echo
    to_chat_request: Callable[..., JsonObject] = to_chat_request
    from_chat_answer: Callable[..., JsonObject] = from_chat_answer


FORMAT = ResponsesFormat.of(API, decode, encode, answers, ResponsesStreamRelay)
