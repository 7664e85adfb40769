"""A session's state between requests, typed; JSON only where the session store keeps it.

The JSON shape is the one sessions have always been stored in (sessions live in the store across deploys):
``from_json`` reads any stored state, missing keys taking their defaults and unknown keys kept as they are,
and ``to_json`` writes the same keys back. Two parts are owned by others and stay plain JSON: ``dual``, the
dual-LLM engine's turn state (``relay.dual``), and ``guard_memo``, the guardrails' memo
(``relay.guardrails.memo``), which reaches it through ``memo_holder``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..meta import DEFAULT_META, Meta
from ..toolcalls.policy import CalledTool

_KNOWN = frozenset(
    (
        "key_id",
        "user_id",
        "config",
        "api",
        "provider",
        "endpoint_type",
        "created",
        "turns",
        "seq",
        "closed",
        "status",
        "session_meta",
        "id_map",
        "pending",
        "byok",
        "awaiting_tool_results",
        "policy_version",
        "error_reason",
        "auto_gen",
        "denied_in_turn",
        "tool_filter",
        "dual",
        "guard_memo",
    )
)


@dataclass
class SessionState:
    """Everything a session keeps between its requests."""

    key_id: int
    user_id: int
    config: dict[str, Any]  # the resolved configuration (``relay.config.resolve_config``), fixed at creation
    api: str
    provider: str
    endpoint_type: str
    created: float = field(default_factory=time.time)
    turns: int = 0  # completed turns
    seq: int = 0  # the last session-log step's number
    closed: bool = False
    status: str = "open"  # open | success | denied | failure | error
    session_meta: Meta = DEFAULT_META
    id_map: dict[str, str] = field(default_factory=dict)  # our ``tc-`` id -> the upstream's tool-call id
    pending: dict[str, CalledTool] = field(default_factory=dict)  # calls let through, awaiting their result
    byok: str | None = None  # the client's provider key (X-Api-Key), encrypted
    awaiting_tool_results: bool = False
    policy_version: int | None = None  # the key version whose policy the session runs (None: the request's)
    error_reason: str | None = None
    auto_gen: bool = False  # X-Policy.auto_gen: the policy was generated (or tried) once
    denied_in_turn: bool = False
    tool_filter: list[str] | None = None  # the tools selected for the current turn
    dual: dict[str, Any] | None = None  # the dual-LLM engine's own state
    memo_holder: dict[str, Any] = field(
        default_factory=dict
    )  # {"guard_memo": ...} once the guardrails used it
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they were

    @property
    def arch(self) -> str:
        return str(self.config.get("arch", ""))

    @property
    def fsm(self) -> dict[str, Any]:
        fsm: dict[str, Any] = self.config["fsm"]
        return fsm

    def dual_state(self) -> dict[str, Any]:
        """The dual-LLM engine's state, created empty on first use."""
        if self.dual is None:
            self.dual = {}
        dual: dict[str, Any] = self.dual
        return dual

    def record_error(self, reason: str) -> None:
        self.status, self.error_reason = "error", reason

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionState:
        """A stored state, whatever version of the relay stored it."""
        pending = {
            cid: CalledTool(str(p.get("tool") or ""), p.get("args"))
            for cid, p in (data.get("pending") or {}).items()
            if isinstance(p, dict)
        }
        memo = {"guard_memo": data["guard_memo"]} if isinstance(data.get("guard_memo"), dict) else {}
        return cls(
            key_id=data["key_id"],
            user_id=data["user_id"],
            config=data.get("config") or {},
            api=data.get("api", ""),
            provider=data.get("provider", ""),
            endpoint_type=data.get("endpoint_type", ""),
            created=data.get("created") or 0.0,
            turns=int(data.get("turns") or 0),
            seq=int(data.get("seq") or 0),
            closed=bool(data.get("closed")),
            status=data.get("status") or "open",
            session_meta=Meta.from_json(data.get("session_meta") or {}),
            id_map=dict(data.get("id_map") or {}),
            pending=pending,
            byok=data.get("byok"),
            awaiting_tool_results=bool(data.get("awaiting_tool_results")),
            policy_version=data.get("policy_version"),
            error_reason=data.get("error_reason"),
            auto_gen=bool(data.get("auto_gen")),
            denied_in_turn=bool(data.get("denied_in_turn")),
            tool_filter=data.get("tool_filter"),
            dual=data.get("dual"),
            memo_holder=memo,
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    def to_json(self) -> dict[str, Any]:
        """The stored shape: the keys ``from_json`` reads; optional ones only when set."""
        out: dict[str, Any] = {
            "key_id": self.key_id,
            "user_id": self.user_id,
            "config": self.config,
            "api": self.api,
            "provider": self.provider,
            "endpoint_type": self.endpoint_type,
            "created": self.created,
            "turns": self.turns,
            "seq": self.seq,
            "closed": self.closed,
            "status": self.status,
            "session_meta": self.session_meta.to_json(),
            "id_map": self.id_map,
            "pending": {cid: {"tool": p.tool, "args": p.args} for cid, p in self.pending.items()},
            "byok": self.byok,
            "awaiting_tool_results": self.awaiting_tool_results,
            "policy_version": self.policy_version,
        }
        if self.error_reason is not None:
            out["error_reason"] = self.error_reason
        if self.auto_gen:
            out["auto_gen"] = True
        if self.denied_in_turn:
            out["denied_in_turn"] = True
        if self.tool_filter is not None:
            out["tool_filter"] = self.tool_filter
        if self.dual is not None:
            out["dual"] = self.dual
        if "guard_memo" in self.memo_holder:
            out["guard_memo"] = self.memo_holder["guard_memo"]
        out.update(self.extra)
        return out
