"""OpenAI Chat Completions (``…/v1/chat/completions``): decode, encode, single-LLM pass-through.

``FORMAT`` is this API's :class:`~relay.formats.protocol.ApiFormat`; the functions are importable here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import FormatBundle
from . import answers, decode, encode
from .answers import *  # noqa: F403
from .answers import normalise_finish
from .decode import *  # noqa: F403
from .decode import API
from .encode import *  # noqa: F403
from .stream import *  # noqa: F403
from .stream import ChatStreamRelay

_normalise_finish = normalise_finish  # the name the tests knew


@dataclass(frozen=True, kw_only=True)
class ChatFormat(FormatBundle):
    ChatStreamRelay: type[ChatStreamRelay] = ChatStreamRelay


FORMAT = ChatFormat.of(API, decode, encode, answers, ChatStreamRelay)
