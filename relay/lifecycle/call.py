"""The request being served (``Call``) and the refusal any stage may raise (``RelayError``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..formats.model import DecodedRequest, Usage
from ..routes import Route
from .state import SessionState

if TYPE_CHECKING:  # annotations only: the key's principal comes from the apikeys app
    from apikeys.selectors import KeyPrincipal

    from .documents import HeaderDocuments

CANCELLED_MESSAGE = "The client closed the connection before the answer was complete"


class RelayError(Exception):
    """A refusal before anything was sent: HTTP status, message, and an error kind for the usage log."""

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


@dataclass
class Call:
    """Everything known about the request being served, filled in stage by stage."""

    route: Route
    principal: KeyPrincipal
    started: float
    body: dict[str, Any] = field(default_factory=dict)
    documents: HeaderDocuments | None = None
    decoded: DecodedRequest | None = None
    session_id: str | None = None
    state: SessionState | None = None
    is_new_session: bool = False
    api_key: str | None = None
    models: tuple[str, str] = ("", "")
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_kind: str = ""
    error_message: str = ""
    streamed: bool = False
    locked: AbstractAsyncContextManager[Any] | None = None  # the session lock, held until finished
    events: list[dict[str, Any]] = field(default_factory=list)
    reservation: Any = None  # apikeys.governance: this request's share of the key's limits, settled in finish

    @property
    def arch(self) -> str:
        """The session's architecture ("" before the session is known, and for policy generation)."""
        return self.state.arch if self.state is not None else ""

    def fail(self, status: int, kind: str, message: str) -> None:
        """Record the outcome of a request that did not end well (logged and metered as such)."""
        self.status, self.error_kind, self.error_message = status, kind, message

    def cancelled(self, usage: Usage | None = None) -> None:
        """The client went away before the answer was complete: logged as cancelled (HTTP 499, the usual
        "client closed request"), with the usage the upstream reported until then when given."""
        if usage is not None:
            self.usage = usage
        self.fail(499, "cancelled", CANCELLED_MESSAGE)

    def log_step(self, step_type: str, /, **data: Any) -> None:
        """Append one step to the session log (sent when the request finishes)."""
        state = self.state
        assert state is not None
        state.seq += 1
        if (
            step_type == "tool_call"
        ):  # which saved key version decided it (None: the request's X-Policy replaced it)
            data.setdefault("policy_version", state.policy_version)
        self.events.append(
            {
                "session_id": self.session_id,
                "key_id": self.principal.id,
                "turn": state.turns + 1,
                "seq": state.seq,
                "type": step_type,
                "data": data,
            }
        )
