"""Types of the dual-LLM orchestrator: the LLM caller protocol, the outcome of one request, errors (public);
what one request records as it goes, and how a turn or an LLM call fails (internal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from relay.formats.model import ToolCall, Usage


class CompletionLike(Protocol):
    """What an :class:`LLMCaller` returns (``relay.providers.Completion`` fits)."""

    text: str
    parsed: Any | None
    usage: Usage


class LLMCaller(Protocol):
    """Supplied by the shell. ``role`` is one of ``pllm``, ``qllm``, ``tllm``,
    ``tool_result_error_detector_llm`` (the shell picks model and generation config per role).

    Raises on provider failures (``relay.providers.UpstreamError``); the engine turns any exception into an
    ``llm_error`` failure answer. ``options`` are ``model=`` and ``seed=``, passed only for the candidate
    plans of ``n_pllm_plans``.
    """

    async def __call__(
        self,
        role: str,
        *,
        system: str,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None = None,
        **options: Any,
    ) -> CompletionLike: ...


class DualError(Exception):
    """A request-level error the shell turns into an HTTP error ``{"detail": detail}``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return f"DualError({self.status}, {self.detail!r})"


class TurnFailure(Exception):
    """Internal: ends the turn with a failure answer (``policy``: a policy decided it, so the answer carries the
    policy-check history)."""

    def __init__(self, code: str, message: str, *, policy: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.policy = policy


class LLMFailure(Exception):
    """Internal: an LLM call raised; ends the turn with an ``llm_error`` failure answer."""

    def __init__(self, role: str, exc: BaseException) -> None:
        super().__init__(f"{role}: {exc}")
        self.role = role
        self.exc = exc


@dataclass
class TurnOutcome:
    """What :meth:`DualEngine.advance` produced for one request."""

    kind: str  # "tool_calls" | "final"
    tool_calls: list[ToolCall] = field(default_factory=list)
    content: str = ""  # final answer text (result JSON, or the plain value with strip_response_content)
    failed: bool = False
    error_code: str | None = None
    error_message: str | None = None
    usage: Usage = field(default_factory=Usage)
    session_closed: bool = False
    llm_calls: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    mismatch_detected: bool = False
    result: dict[str, Any] | None = (
        None  # the §11 result document (final answers; also when content is stripped)
    )


@dataclass
class RequestLog:
    """Internal: what one request records besides its answer, shared by the engine's parts and handed over
    in the :class:`TurnOutcome`: the inspector's events, the LLM calls and their usage, a history mismatch."""

    events: list[dict[str, Any]] = field(default_factory=list)
    llm_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    mismatch: bool = False

    def reset(self) -> None:
        """Start the next request (fresh lists: an earlier outcome keeps its own)."""
        self.events = []
        self.llm_calls = []
        self.usage = Usage()
        self.mismatch = False
