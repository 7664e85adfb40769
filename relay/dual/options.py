"""The engine's settings, read once from the resolved config (``relay.config.resolve_config``).

The options several parts use get a name here; an option read in one place only is read there from
``fsm`` (the ``X-Config`` FSM options), so the rule it drives stays next to its use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.regex import ClientPattern, try_client_pattern

from . import prompts as P

DEFAULT_INTERNAL_TOOLS = ("parse_with_ai", "verify_hypothesis")


def optional_int(value: Any) -> int | None:
    """``value`` when it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def int_option(value: Any, default: int) -> int:
    """``value`` when it is an integer (not a bool), else ``default``."""
    given = optional_int(value)
    return default if given is None else given


def _client_patterns(patterns: Any) -> tuple[ClientPattern, ...]:
    """``force_to_cache`` patterns compiled by ``relay.regex`` (RE2: linear time; ``fullmatch`` of a tool
    name); an entry that is not a string or is refused is left out (X-Config validation refuses it first)."""
    compiled = (try_client_pattern(p) for p in patterns or [])
    return tuple(rx for rx in compiled if rx is not None)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """One engine's view of the config (the sections as given, and the options parsed)."""

    fsm: Mapping[str, Any]
    response_format: Mapping[str, Any]
    prompt: Mapping[str, Any]  # per role: pllm, tllm, ...
    policy: Mapping[str, Any]
    endpoint: str  # chat | code | lang-graph ...
    internal_tools: tuple[str, ...]  # the enabled internal tools, in the planner prompt's order
    max_steps: int  # max_pllm_steps
    max_failed_steps: int  # max_pllm_failed_steps
    max_tool_calls: int | None  # max_tool_calls_per_step (internal calls count too)
    max_turns: int | None  # max_n_turns
    multistep: bool  # enable_multistep_planning
    retry_on_policy_violation: bool
    clear_session_meta: str  # never | every_turn | every_attempt
    force_to_cache: tuple[ClientPattern, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EngineSettings:
        fsm: Mapping[str, Any] = config.get("fsm") or {}
        internal = fsm.get("enabled_internal_tools")
        if internal is None:
            internal = list(DEFAULT_INTERNAL_TOOLS)
        return cls(
            fsm=fsm,
            response_format=config.get("response_format") or {},
            prompt=config.get("prompt") or {},
            policy=config.get("policy") or {},
            endpoint=config.get("endpoint_type") or "chat",
            internal_tools=tuple(t for t in P.INTERNAL_TOOLS if t in internal),
            max_steps=max(1, int_option(fsm.get("max_pllm_steps"), 5)),
            max_failed_steps=max(1, int_option(fsm.get("max_pllm_failed_steps"), 3)),
            max_tool_calls=optional_int(fsm.get("max_tool_calls_per_step")),
            max_turns=optional_int(fsm.get("max_n_turns")),
            multistep=bool(fsm.get("enable_multistep_planning")),
            retry_on_policy_violation=bool(fsm.get("retry_on_policy_violation")),
            clear_session_meta=fsm.get("clear_session_meta") or "never",
            force_to_cache=_client_patterns(fsm.get("force_to_cache")),
        )

    @property
    def planner_prompt(self) -> Mapping[str, Any]:
        return self.prompt.get("pllm") or {}

    @property
    def steps_until_complete_turn(self) -> bool:
        """Multistep planning with ``complete_turn``: a turn ends only when a program calls it."""
        return self.multistep and "complete_turn" in self.internal_tools
