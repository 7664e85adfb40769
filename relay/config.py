"""Session-config resolution: built-in presets, key documents, header overrides.

Framework-free. The resolved config is a plain JSON-serialisable dict, stored with the session and immutable
for its life:

    {"arch", "endpoint_type", "features": {"classifiers", "blockers"},
     "policy": {"mode", "codes": {"code", "language"}, "auto_gen", "fail_fast", "presets": {...}},
     "fsm": {...every field...}, "prompt": {...}, "response_format": {...}, "llm": {...}}

Model names and provider credentials are resolved separately (``parse_model_string``) because they come from
the body and the server's credential store.
"""

from __future__ import annotations

import copy
from typing import Any

from .header_documents import (
    ConfigHeader,
    FeaturesHeader,
    PolicyHeader,
    PolicyPresets,
    dump_document,
)

ARCHS = ("single-llm", "dual-llm")
ENDPOINT_TYPES = ("chat", "code", "agent", "lang-graph")

# The built-in presets equal the official client's helpers: FeaturesHeader.single_llm()/dual_llm(),
# SecurityPolicyHeader.single_llm()/dual_llm() and FineGrainedConfigHeader.single_llm()/dual_llm().
_POLICY_COMMON: dict[str, Any] = {
    "mode": "standard",
    "codes": {"code": "", "language": "sqrt"},
    "auto_gen": False,
    "presets": {
        "default_allow": True,
        "default_allow_enforcement_level": "soft",
        "enable_non_executable_memory": True,
        "branching_meta_policy": {"mode": "deny", "producers": [], "tags": [], "consumers": []},
        "enable_llm_blocked_tag": True,
        "llm_blocked_tag_enforcement_level": "hard",
    },
}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "single-llm": {
        "features": {"agent_arch": "single-llm"},
        "policy": {
            **copy.deepcopy(_POLICY_COMMON),
            "presets": {**_POLICY_COMMON["presets"], "enable_non_executable_memory": False},
        },
        "config": {
            "fsm": {"min_num_tools_for_filtering": 10, "clear_session_meta": "never", "max_n_turns": 50}
        },
    },
    "dual-llm": {
        "features": {"agent_arch": "dual-llm"},
        "policy": copy.deepcopy(_POLICY_COMMON),
        "config": {
            "fsm": {
                "min_num_tools_for_filtering": 10,
                "clear_session_meta": "never",
                "max_n_turns": 5,
                "disable_rllm": True,
            },
        },
    },
}

# Defaults for every fsm field still unset after the overlay.
FSM_DEFAULTS: dict[str, Any] = {
    "min_num_tools_for_filtering": 10,
    "clear_session_meta": "never",
    "max_n_turns": 1,
    "history_mismatch_policy": "continue",
    "clear_history_every_n_attempts": None,
    "disable_rllm": True,
    "enable_multistep_planning": False,
    "enabled_internal_tools": ["parse_with_ai", "verify_hypothesis"],
    "prune_failed_steps": True,
    "force_to_cache": [],
    "max_pllm_steps": 5,
    "max_pllm_failed_steps": 3,
    "max_tool_calls_per_step": None,
    "reduced_grammar_for_rllm_review": "text",
    "retry_on_policy_violation": False,
    "wrap_tool_result": False,
    "detect_tool_errors": "none",
    "detect_tool_error_regex_pattern": None,
    "detect_tool_error_max_result_length": None,
    "strict_tool_result_parsing": False,
    "tool_result_transform": "none",
    "n_pllm_plans": 1,
    "pllm_candidate_models": None,
    "pllm_context_pruning": True,
}
# Endpoint-dependent defaults: code sessions are longer, iterative
# and get the code-flavoured planner prompt.
ENDPOINT_DEFAULTS: dict[str, dict[str, Any]] = {
    "chat": {
        "fsm": {"max_n_turns": 1, "enabled_internal_tools": ["parse_with_ai", "verify_hypothesis"]},
        "prompt_flavor": "universal",
    },
    "agent": {
        "fsm": {"max_n_turns": 1, "enabled_internal_tools": ["parse_with_ai", "verify_hypothesis"]},
        "prompt_flavor": "universal",
    },
    "lang-graph": {
        "fsm": {"max_n_turns": 1, "enabled_internal_tools": ["parse_with_ai"]},
        "prompt_flavor": "universal",
    },
    "code": {
        "fsm": {
            "max_n_turns": 20,
            "enabled_internal_tools": ["parse_with_ai", "verify_hypothesis", "complete_turn"],
        },
        "prompt_flavor": "code",
    },
}
RESPONSE_FORMAT_DEFAULTS = {
    "strip_response_content": False,
    "stream_thoughts": False,
    "include_program": False,
    "include_policy_check_history": False,
    "include_namespace_snapshot": False,
}


def preset_documents(arch: str) -> dict[str, dict[str, Any]]:
    """A deep copy of the built-in documents of one architecture (what a new key stores)."""
    if arch not in PRESETS:
        raise ValueError(f"unknown preset {arch!r}; expected one of: {', '.join(ARCHS)}")
    return copy.deepcopy(PRESETS[arch])


def _overlay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Field-by-field overlay of ``over`` onto ``base`` (nested dicts recursively; others replace)."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _policy_from(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "mode": doc.get("mode") or "standard",
        "codes": {"code": "", "language": "sqrt", **(doc.get("codes") or {})},
        "auto_gen": bool(doc.get("auto_gen") or False),
        "fail_fast": doc.get("fail_fast"),
        "presets": PolicyPresets.model_validate(doc.get("presets") or {}).model_dump(mode="json"),
    }


def resolve_config(
    *,
    arch: str,
    documents: dict[str, dict[str, Any]] | None,
    endpoint_type: str,
    features: FeaturesHeader | None = None,
    policy: PolicyHeader | None = None,
    config: ConfigHeader | None = None,
) -> dict[str, Any]:
    """Resolve one session's config: key documents (or preset) -> headers -> endpoint fix-ups (§5.2)."""
    docs = copy.deepcopy(documents) if documents else preset_documents(arch)
    base_arch = (docs.get("features") or {}).get("agent_arch") or arch

    # X-Features: switching the architecture rebuilds from that architecture's built-in preset.
    if features is not None and features.agent_arch and features.agent_arch != base_arch:
        base_arch = features.agent_arch
        docs = preset_documents(base_arch)
    feat = docs.get("features") or {}
    classifiers = feat.get("content_classifiers") or []
    blockers = feat.get("content_blockers") or []
    if features is not None:
        if features.content_classifiers is not None:
            classifiers = [c.model_dump(mode="json") for c in features.content_classifiers]
        if features.content_blockers is not None:
            blockers = [b.model_dump(mode="json") for b in features.content_blockers]

    # X-Policy: each present top-level field replaces the base one (presets completed with defaults).
    policy_doc = dict(docs.get("policy") or {})
    if policy is not None:
        policy_doc.update({k: v for k, v in dump_document(policy).items()})
        if policy.presets is not None:
            policy_doc["presets"] = policy.presets.model_dump(mode="json")

    # X-Config: field-by-field overlay.
    cfg = copy.deepcopy(docs.get("config") or {})
    if config is not None:
        _overlay(cfg, dump_document(config))

    if endpoint_type == "lang-graph":
        base_arch = "dual-llm"
    endpoint = ENDPOINT_DEFAULTS.get(endpoint_type, ENDPOINT_DEFAULTS["chat"])
    fsm = {**FSM_DEFAULTS, **endpoint["fsm"], **(cfg.get("fsm") or {})}
    prompt = copy.deepcopy(cfg.get("prompt") or {})
    prompt.setdefault("pllm", {})
    prompt["pllm"] = {"flavor": endpoint["prompt_flavor"], **{k: v for k, v in prompt["pllm"].items()}}
    return {
        "arch": base_arch,
        "endpoint_type": endpoint_type,
        "features": {"classifiers": classifiers, "blockers": blockers},
        "policy": _policy_from(policy_doc),
        "fsm": fsm,
        "prompt": prompt,
        "response_format": {**RESPONSE_FORMAT_DEFAULTS, **(cfg.get("response_format") or {})},
        "llm": copy.deepcopy(cfg.get("llm") or {}),
    }


class ModelStringError(ValueError):
    pass


def parse_model_string(model: Any) -> tuple[str, str]:
    """``"pllm"`` or ``"pllm,qllm"`` -> (pllm, qllm). More than two names or an empty one is an error."""
    if not isinstance(model, str):
        raise ModelStringError("model: must be a string")
    names = [part.strip() for part in model.split(",")]
    if len(names) > 2 or any(not n for n in names):
        raise ModelStringError('model: expected "pllm" or "pllm,qllm" with non-empty names')
    return names[0], names[-1]


def enabled_defences(documents: dict[str, dict[str, Any]] | None) -> list[str]:
    """Names of the classifiers and blockers a key's stored features enable (for lists and pricing)."""
    feat = (documents or {}).get("features") or {}
    return [c["name"] for c in feat.get("content_classifiers") or []] + [
        b["name"] for b in feat.get("content_blockers") or []
    ]
