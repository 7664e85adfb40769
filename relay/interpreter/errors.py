"""Exceptions crossing the interpreter boundary (framework-free)."""

from __future__ import annotations

from typing import Any

from relay.meta import DEFAULT_META, Meta

# Kinds of InterpreterError. The first four are the program's fault and worth showing to the PLLM.
ERROR_KINDS = (
    "syntax",  # the source does not parse (or uses break/continue outside a loop)
    "refused",  # a construct outside the supported subset (import, def, lambda, while, dunder access, ...)
    "runtime",  # an uncaught program exception, or a bad tool call signature
    "limit",  # a resource limit (steps, loop iterations, value size, wall time, nesting)
    "control_flow_violation",  # host.check_branch refused a branching condition
    "policy_denied",  # the host denied a tool call (RunResult.denial holds the PolicyDenied)
    "replay",  # a recorded tool call does not match the call the program makes on replay
    "internal",  # a bug in the interpreter or the host (exception attached as .cause)
)


class InterpreterError(Exception):
    """Why a run did not succeed. ``message`` already names the line (``... (line N)``) when known.

    ``meta`` is the merged metadata of the data that shaped the message (e.g. an exception raised with a
    tool-derived string): the orchestrator may redact the message before showing it to the PLLM.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        lineno: int | None = None,
        meta: Meta = DEFAULT_META,
        cause: BaseException | None = None,
    ) -> None:
        if lineno is not None and f"(line {lineno})" not in message:
            message = f"{message} (line {lineno})"
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.lineno = lineno
        self.meta = meta
        self.cause = cause

    def __repr__(self) -> str:
        return f"InterpreterError(kind={self.kind!r}, message={self.message!r})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "lineno": self.lineno}


class ReplayMismatch(InterpreterError):
    """Raised by ReplayHost when a recorded call's tool name differs from the call being replayed."""

    def __init__(self, message: str) -> None:
        super().__init__("replay", message)


class Suspend(Exception):
    """Raised by a Host to stop the program at a tool call (the orchestrator returns the call to the client).

    The interpreter fills in ``tool_name``, ``kwargs`` and ``call_index`` when the host left them None;
    ``payload`` is free for the orchestrator.
    """

    def __init__(
        self,
        tool_name: str | None = None,
        kwargs: dict[str, Any] | None = None,
        call_index: int | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(tool_name)
        self.tool_name = tool_name
        self.kwargs = kwargs
        self.call_index = call_index
        self.payload = payload
        # The implicit-flow context of the call (the interpreter sets it): which tool is called, and
        # whether, may depend on data with this meta even when the call has no arguments.
        self.context_meta: Meta = DEFAULT_META

    def __repr__(self) -> str:
        return f"Suspend(tool_name={self.tool_name!r}, call_index={self.call_index!r})"


class PolicyDenied(Exception):
    """Raised by a Host when the policy engine denies a tool call; ends the run (status "policy_denied")."""

    def __init__(self, message: str, record: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.record = record


class ToolError(Exception):
    """Raised by a Host when a tool failed. The program sees it as an exception of class ``ToolError``
    (a subclass of ``Exception``) and may catch it. ``meta`` is the metadata of the message (e.g. the
    initial result meta of §6.10 step 5); when None the interpreter uses the merged argument metas."""

    def __init__(self, message: str, meta: Meta | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.meta = meta
