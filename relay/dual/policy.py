"""The session's security policy: the configured SQRT policy plus what programs added with ``set_policy``.

Compiling a policy costs milliseconds; compiled engines are shared between requests and sessions (an LRU
keyed by the policy text and its settings; ``PolicyEngine`` keeps no per-session state).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from relay.sqrt import PolicyCompileError, PolicyEngine, compile_policy

from .state import SessionState
from .types import DualError

MAX_CACHED_ENGINES = 128

_engines: OrderedDict[tuple[str, str, str, str, Any], PolicyEngine] = OrderedDict()
_engines_lock = threading.Lock()


def compiled_policy_engine(policy_config: Mapping[str, Any], extra: str = "") -> PolicyEngine:
    """The policy engine of ``policy_config`` (``X-Policy``) with the SQRT text ``extra`` appended.
    Raises ``PolicyCompileError``."""
    codes = policy_config.get("codes") or {}
    if isinstance(codes, str):
        codes = {"code": codes, "language": "sqrt"}
    code = codes.get("code") or ""
    language = codes.get("language") or "sqrt"
    if extra:
        code = f"{code}\n{extra}" if code.strip() else extra
    presets = policy_config.get("presets") or {}
    key = (code, language, json.dumps(presets, sort_keys=True), policy_config.get("mode") or "standard",
           policy_config.get("fail_fast"))
    with _engines_lock:
        hit = _engines.get(key)
        if hit is not None:
            _engines.move_to_end(key)
            return hit
    compiled = compile_policy(code, language) if code.strip() else None
    engine = PolicyEngine(compiled, presets=presets, mode=key[3], fail_fast=key[4], dual_llm=True)
    with _engines_lock:
        _engines[key] = engine
        if len(_engines) > MAX_CACHED_ENGINES:
            _engines.popitem(last=False)
    return engine


class SessionPolicy:
    """The policy engine one engine instance uses, compiled on first use."""

    def __init__(self, policy_config: Mapping[str, Any]) -> None:
        self.policy_config = policy_config
        self._engine: PolicyEngine | None = None

    def engine(self, session: SessionState) -> PolicyEngine:
        """Raises ``DualError(400)`` with the compiler's detail when the stored policy does not compile."""
        if self._engine is None:
            try:
                self._engine = compiled_policy_engine(self.policy_config, session.added_policy)
            except PolicyCompileError as e:
                raise DualError(400, e.as_detail()) from None
        return self._engine

    def add(self, session: SessionState, code: str) -> None:
        """``set_policy``: add ``code`` to the session's policy from now on. Raises ``PolicyCompileError``
        (and changes nothing) when the result does not compile."""
        extra = (session.added_policy + "\n" + code).strip()
        engine = compiled_policy_engine(self.policy_config, extra)
        session.added_policy = extra
        self._engine = engine
