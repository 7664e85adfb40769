"""What every API format offers the relay (:class:`ApiFormat`), and the bundle that implements it.

``FORMATS[api]`` is an :class:`ApiFormat`: the relay decodes, encodes and rewrites through it without knowing
which of the three APIs it serves. The callables' shapes are spelled out as small protocols so that a
format whose function drifts from the others fails the type check, not a request.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypedDict, Unpack

from .model import DecodedRequest, JsonObject, NewId, ToolCall, Usage
from .sse import StreamRelay

ResultFn = Callable[[str, str], str | None]
"""``fn(call_id, text)`` -> the text a tool result should carry, or None to keep it."""
HistoryArgumentsFn = Callable[[str, Any], Any]
"""``fn(call_id, wire_arguments)`` -> new wire arguments for a call in the history, or None to keep them."""
AnswerArgumentsFn = Callable[[str, str, JsonObject], JsonObject | None]
"""``fn(call_id, name, arguments)`` -> new arguments for a proposed call, or None to keep them."""


class DecodeRequest(Protocol):
    def __call__(self, body: Any) -> DecodedRequest: ...


class UpstreamBody(Protocol):
    def __call__(self, body: Mapping[str, Any], *, stream: bool | None = None) -> JsonObject: ...


class AnswerOptions(TypedDict, total=False):
    """What our own answers may carry; each API reads the keys it has and ignores the others."""

    id: str | None
    usage: Usage | None
    created: float | None
    extra: JsonObject | None
    """Fields added to the answer object (Responses: the request's echo)."""
    failed: bool
    """Responses: status ``failed`` (with ``error``); the other APIs have no status."""
    error: JsonObject | None
    finish_reason: str
    """Chat; Messages calls it ``stop_reason``."""
    stop_reason: str


class CallOptions(AnswerOptions, total=False):
    text: str | None
    """Text shown before the tool calls."""


class TextAnswer(Protocol):
    def __call__(self, text: str, *, model: str, **options: Unpack[AnswerOptions]) -> JsonObject: ...


class ToolCallAnswer(Protocol):
    def __call__(
        self, calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]
    ) -> JsonObject: ...


class StreamTextAnswer(Protocol):
    def __call__(self, text: str, *, model: str, **options: Unpack[AnswerOptions]) -> list[bytes]: ...


class StreamToolCallAnswer(Protocol):
    def __call__(
        self, calls: list[ToolCall], *, model: str, **options: Unpack[CallOptions]
    ) -> list[bytes]: ...


class FilterToolCalls(Protocol):
    def __call__(
        self, answer: JsonObject, allowed_ids: Collection[str], denial_text: str | None = None
    ) -> JsonObject: ...


class SanitizeAnswer(Protocol):
    def __call__(self, answer: JsonObject, **options: Any) -> JsonObject: ...


class StreamRelayFactory(Protocol):
    def __call__(self, new_id: NewId, *, model: str | None = None) -> StreamRelay: ...


class Decoding(Protocol):
    """Reading a client's request (an API package's ``decode`` module)."""

    @property
    def decode_request(self) -> DecodeRequest:
        """body -> DecodedRequest; RequestError names the bad field."""

    @property
    def upstream_body(self) -> UpstreamBody:
        """Client body -> provider body (single-LLM pass-through)."""


class Encoding(Protocol):
    """The answers the relay writes itself, as JSON and as SSE events (an API package's ``encode`` module)."""

    @property
    def text_answer(self) -> TextAnswer: ...
    @property
    def tool_call_answer(self) -> ToolCallAnswer: ...
    @property
    def stream_text_answer(self) -> StreamTextAnswer: ...
    @property
    def stream_tool_call_answer(self) -> StreamToolCallAnswer: ...


class Answers(Protocol):
    """Reading and rewriting upstream answers and the client's history (an API package's ``answers``)."""

    @property
    def extract_usage(self) -> Callable[[Mapping[str, Any]], Usage]: ...
    @property
    def extract_text(self) -> Callable[[Mapping[str, Any]], str]: ...
    @property
    def extract_tool_calls(self) -> Callable[[Mapping[str, Any]], list[ToolCall]]: ...
    @property
    def filter_tool_calls(self) -> FilterToolCalls:
        """Drop the denied upstream calls, show the denial text."""

    @property
    def sanitize_answer(self) -> SanitizeAnswer: ...
    @property
    def rewrite_answer_ids(self) -> Callable[[JsonObject, NewId], JsonObject]: ...
    @property
    def rewrite_ids_in_request(self) -> Callable[[Mapping[str, Any], Mapping[str, str]], JsonObject]: ...
    @property
    def rewrite_tool_results(self) -> Callable[[JsonObject, ResultFn], JsonObject]:
        """Guardrails and the manual wrapper on the history's tool results."""

    @property
    def rewrite_call_arguments(self) -> Callable[[JsonObject, HistoryArgumentsFn], JsonObject]:
        """Guardrails on the history's tool calls."""

    @property
    def rewrite_answer_arguments(self) -> Callable[[JsonObject, AnswerArgumentsFn], JsonObject]: ...


class ApiFormat(Decoding, Encoding, Answers, Protocol):
    """One API's wire format: what ``FORMATS[api]`` offers."""

    @property
    def api(self) -> str:
        """``chat`` | ``messages`` | ``responses``."""

    @property
    def stream_relay(self) -> StreamRelayFactory:
        """Upstream stream -> client stream (``sse.pump`` drives it)."""


@dataclass(frozen=True, kw_only=True)
class FormatBundle:
    """An :class:`ApiFormat` made of one API package's modules; ``of`` builds it (subclasses add the
    names their callers know, e.g. ``ChatStreamRelay``)."""

    api: str
    decode_request: DecodeRequest
    upstream_body: UpstreamBody
    text_answer: TextAnswer
    tool_call_answer: ToolCallAnswer
    stream_text_answer: StreamTextAnswer
    stream_tool_call_answer: StreamToolCallAnswer
    extract_usage: Callable[[Mapping[str, Any]], Usage]
    extract_text: Callable[[Mapping[str, Any]], str]
    extract_tool_calls: Callable[[Mapping[str, Any]], list[ToolCall]]
    filter_tool_calls: FilterToolCalls
    sanitize_answer: SanitizeAnswer
    rewrite_answer_ids: Callable[[JsonObject, NewId], JsonObject]
    rewrite_ids_in_request: Callable[[Mapping[str, Any], Mapping[str, str]], JsonObject]
    rewrite_tool_results: Callable[[JsonObject, ResultFn], JsonObject]
    rewrite_call_arguments: Callable[[JsonObject, HistoryArgumentsFn], JsonObject]
    rewrite_answer_arguments: Callable[[JsonObject, AnswerArgumentsFn], JsonObject]
    stream_relay: StreamRelayFactory

    @classmethod
    def of(
        cls,
        api: str,
        decoding: Decoding,
        encoding: Encoding,
        answers: Answers,
        stream_relay: StreamRelayFactory,
    ) -> Self:
        return cls(
            api=api,
            decode_request=decoding.decode_request,
            upstream_body=decoding.upstream_body,
            text_answer=encoding.text_answer,
            tool_call_answer=encoding.tool_call_answer,
            stream_text_answer=encoding.stream_text_answer,
            stream_tool_call_answer=encoding.stream_tool_call_answer,
            extract_usage=answers.extract_usage,
            extract_text=answers.extract_text,
            extract_tool_calls=answers.extract_tool_calls,
            filter_tool_calls=answers.filter_tool_calls,
            sanitize_answer=answers.sanitize_answer,
            rewrite_answer_ids=answers.rewrite_answer_ids,
            rewrite_ids_in_request=answers.rewrite_ids_in_request,
            rewrite_tool_results=answers.rewrite_tool_results,
            rewrite_call_arguments=answers.rewrite_call_arguments,
            rewrite_answer_arguments=answers.rewrite_answer_arguments,
            stream_relay=stream_relay,
        )
