"""Anthropic Messages (``…/v1/messages``): decode, encode, single-LLM pass-through.

``FORMAT`` is this API's :class:`~relay.formats.protocol.ApiFormat`; the functions are importable here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import FormatBundle
from . import answers, decode, encode
from .answers import *  # noqa: F403
from .decode import *  # noqa: F403
from .decode import API
from .encode import *  # noqa: F403
from .stream import *  # noqa: F403
from .stream import MessagesStreamRelay


@dataclass(frozen=True, kw_only=True)
class MessagesFormat(FormatBundle):
    MessagesStreamRelay: type[MessagesStreamRelay] = MessagesStreamRelay


FORMAT = MessagesFormat.of(API, decode, encode, answers, MessagesStreamRelay)
