"""The session's security policy: the configured SQRT policy plus what programs added with ``set_policy``.

The compiled engines come from ``relay.toolcalls.policy`` (one per distinct policy, shared by both
architectures; ``PolicyEngine`` keeps no per-session state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.sqrt import PolicyCompileError, PolicyEngine
from relay.toolcalls.policy import policy_engine

from .state import DualState
from .types import DualError


class SessionPolicy:
    """The policy engine one engine instance uses, compiled on first use."""

    def __init__(self, policy_config: Mapping[str, Any]) -> None:
        self.policy_config = policy_config
        self._engine: PolicyEngine | None = None

    def engine(self, session: DualState) -> PolicyEngine:
        """Raises ``DualError(400)`` with the compiler's detail when the stored policy does not compile."""
        if self._engine is None:
            try:
                self._engine = policy_engine(
                    self.policy_config, dual_llm=True, extra_code=session.added_policy
                )
            except PolicyCompileError as e:
                raise DualError(400, e.as_detail()) from None
        return self._engine

    def add(self, session: DualState, code: str) -> None:
        """``set_policy``: add ``code`` to the session's policy from now on. Raises ``PolicyCompileError``
        (and changes nothing) when the result does not compile."""
        extra = (session.added_policy + "\n" + code).strip()
        engine = policy_engine(self.policy_config, dual_llm=True, extra_code=extra)
        session.added_policy = extra
        self._engine = engine
