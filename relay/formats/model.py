"""The small internal model every API format converts to and from (framework-free).

A decoded request is a :class:`DecodedRequest`: the tools as :class:`ToolDef`, the conversation as a list of
:class:`Turn` (one turn per message; consecutive tool results are merged into one ``tool`` turn), plus the
few request fields the relay itself needs. The original body is kept untouched in ``body`` for pass-through.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._json import dumps_str, loads

JsonObject = dict[str, Any]
"""A JSON object as the wire formats read and write it."""

NewId = Callable[[str], str]
"""Callback ``new_id(upstream_id) -> our_id`` used when rewriting upstream tool-call ids."""


class RequestError(ValueError):
    """A request body that does not validate. ``message`` names the field, e.g. ``"messages: field required"``.

    ``status`` is 422 for schema errors (control-api §16.2) and 400 for a body that is not JSON at all.
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(slots=True)
class ToolDef:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str | None = None
    """The wire text of the arguments when it was not a JSON object (then ``arguments`` is ``{}``)."""

    def arguments_json(self) -> str:
        if self.raw_arguments is not None:
            return self.raw_arguments
        return dumps_str(self.arguments)


@dataclass(slots=True)
class ToolResult:
    call_id: str
    content: str
    is_error: bool = False


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )

    def add(self, other: Usage | None) -> None:
        if other is not None:
            self.prompt_tokens += other.prompt_tokens
            self.completion_tokens += other.completion_tokens

    def as_dict(self) -> dict[str, int]:
        """Chat-Completions / policy-gen shape: prompt_tokens, completion_tokens, total_tokens."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(slots=True)
class Turn:
    role: str
    """``system`` | ``user`` | ``assistant`` | ``tool``."""
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)


@dataclass(slots=True)
class DecodedRequest:
    api: str
    """``chat`` | ``messages`` | ``responses``."""
    model: str
    stream: bool
    tools: list[ToolDef]
    turns: list[Turn]
    body: dict[str, Any]
    response_format: dict[str, Any] | None = None
    """Normalised: ``{"type": "json_object"}`` or ``{"type": "json_schema", "name", "schema", "strict"}``."""
    previous_response_id: str | None = None
    include_usage: bool = False
    """Chat only: the client asked for ``stream_options.include_usage``."""
    user_provided_program: str | None = None
    context_vars: dict[str, Any] | None = None

    @property
    def user_query(self) -> str | None:
        """Text of the newest user turn (None when there is none)."""
        for turn in reversed(self.turns):
            if turn.role == "user":
                return turn.text
        return None

    @property
    def system_text(self) -> str:
        return "\n\n".join(t.text for t in self.turns if t.role == "system" and t.text)

    @property
    def last_role(self) -> str | None:
        return self.turns[-1].role if self.turns else None

    @property
    def trailing_tool_results(self) -> list[ToolResult]:
        """The tool results answering the last assistant tool-call message.

        Empty when the newest assistant turn has no tool calls (it was a final answer). When the conversation
        holds no assistant turn at all (Responses continuation with ``previous_response_id`` that only sends
        ``function_call_output`` items) every tool result counts. A user turn may follow the results (a new
        question sent together with the last results); check ``last_role`` if that matters.
        """
        start = 0
        for i in range(len(self.turns) - 1, -1, -1):
            turn = self.turns[i]
            if turn.role == "assistant":
                if not turn.tool_calls:
                    return []
                start = i + 1
                break
        out: list[ToolResult] = []
        for turn in self.turns[start:]:
            if turn.role == "assistant":
                break
            out.extend(turn.tool_results)
        return out

    def tool_result_ids(self) -> list[str]:
        return [r.call_id for t in self.turns for r in t.tool_results]

    def tool_call_ids(self) -> list[str]:
        return [c.id for t in self.turns for c in t.tool_calls]


# ---------------------------------------------------------------------------------------------- ids, time


def new_hex() -> str:
    return uuid.uuid4().hex


def now() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------------------- argument parsing


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Wire arguments (JSON text or an object) -> (arguments dict, raw text if it was not a JSON object)."""
    if isinstance(raw, dict):
        return raw, None
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, str):
        try:
            value = loads(raw)
        except ValueError:
            return {}, raw
        if isinstance(value, dict):
            return value, None
        return {}, raw
    return {}, dumps_str(raw)


# ------------------------------------------------------------------------------------------------- errors

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    504: "timeout_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_CODES = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    409: "history_mismatch",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "upstream_error",
    504: "upstream_timeout",
}


def error_body(
    status: int, message: str, api: str = "chat", *, code: str | None = None, type: str | None = None
) -> dict[str, Any]:
    """JSON error body for any non-2xx answer (control-api §16.1).

    chat/responses (and anything else): ``{"detail", "error": {"message", "type", "code"}}``.
    messages: Anthropic's ``{"type": "error", "error": {"type", "message"}}`` plus ``detail``.
    """
    if api == "messages":
        etype = type or _ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": message}, "detail": message}
    etype = type or _OPENAI_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "detail": message,
        "error": {"message": message, "type": etype, "code": code or _CODES.get(status, f"http_{status}")},
    }


def parse_json_body(raw: bytes | str) -> dict[str, Any]:
    """Decode a request body; RequestError(400) when it is not JSON, RequestError(422) when not an object."""
    if not raw:
        raise RequestError("Request body is empty; expected a JSON object", 400)
    try:
        value = loads(raw)
    except ValueError as exc:
        raise RequestError(f"Malformed JSON body: {exc}", 400) from None
    if not isinstance(value, dict):
        raise RequestError("Request body must be a JSON object", 400)
    return value
