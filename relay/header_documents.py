"""Pydantic models of the three configuration documents: ``X-Features``, ``X-Policy``, ``X-Config``.

One definition serves the relay's header parsing, ``/control/v1/validate-headers``, the dashboard's key form
and the management commands. Unknown keys are rejected at every level; a field
present with ``null`` means "not set" (except ``fsm.max_n_turns``, where an explicit null means unlimited,
which callers see through ``model_fields_set``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .regex import ClientRegex  # client regular expressions: refused here if RE2 cannot match them

HEADER_NAMES = {"features": "X-Features", "policy": "X-Policy", "config": "X-Config"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- X-Features ---------------------------------------------------------------------------------------

ClassifierName = Literal[
    "toxicity_filter", "pii_redaction", "healthcare_topic_guardrail", "finance_topic_guardrail"
]
BlockerName = Literal["url_blocker", "file_blocker"]
AgentArch = Literal["single-llm", "dual-llm"]


class ContentClassifier(_Strict):
    name: ClassifierName
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    mode: str | None = None


class ContentBlocker(_Strict):
    name: BlockerName


class FeaturesHeader(_Strict):
    agent_arch: AgentArch | None = None
    content_classifiers: list[ContentClassifier] | None = None
    content_blockers: list[ContentBlocker] | None = None


# --- X-Policy -----------------------------------------------------------------------------------------

Level = Literal["hard", "soft"]


class BranchingMetaPolicy(_Strict):
    mode: Literal["allow", "deny"] = "deny"
    producers: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    consumers: list[str] = Field(default_factory=list)

    @field_validator("producers", "tags", "consumers")
    @classmethod
    def _as_set(cls, v: list[str]) -> list[str]:
        return sorted(set(v))


class PolicyPresets(_Strict):
    default_allow: bool = True
    default_allow_enforcement_level: Level = "soft"
    enable_non_executable_memory: bool = True
    enable_llm_blocked_tag: bool = True
    llm_blocked_tag_enforcement_level: Level = "hard"
    branching_meta_policy: BranchingMetaPolicy = Field(default_factory=BranchingMetaPolicy)


class PolicyCode(_Strict):
    code: str = ""
    language: Literal["sqrt", "cedar"] = "sqrt"


class PolicyHeader(_Strict):
    mode: Literal["standard", "strict", "custom"] | None = None
    codes: PolicyCode | None = None
    auto_gen: bool | None = None
    fail_fast: bool | None = None
    presets: PolicyPresets | None = None

    @field_validator("codes", mode="before")
    @classmethod
    def _bare_string_code(cls, v: Any) -> Any:
        # One documentation example sends ``codes`` as a bare string.
        return {"code": v, "language": "sqrt"} if isinstance(v, str) else v


# --- X-Config -----------------------------------------------------------------------------------------

InternalTool = Literal["parse_with_ai", "verify_hypothesis", "set_policy", "complete_turn"]
DebugLevel = Literal["minimal", "normal", "extra"]


class FsmConfig(_Strict):
    min_num_tools_for_filtering: Annotated[int, Field(ge=2)] | None = None
    clear_session_meta: Literal["never", "every_attempt", "every_turn"] | None = None
    max_n_turns: Annotated[int, Field(ge=1)] | None = None
    history_mismatch_policy: Literal["reject", "restart_turn", "continue"] | None = None
    clear_history_every_n_attempts: Annotated[int, Field(ge=1)] | None = None
    disable_rllm: bool | None = None
    enable_multistep_planning: bool | None = None
    enabled_internal_tools: list[InternalTool] | None = None
    prune_failed_steps: bool | None = None
    force_to_cache: list[ClientRegex] | None = None
    max_pllm_steps: Annotated[int, Field(ge=1)] | None = None
    max_pllm_failed_steps: Annotated[int, Field(ge=1)] | None = None
    max_tool_calls_per_step: Annotated[int, Field(ge=1)] | None = None
    reduced_grammar_for_rllm_review: Literal["none", "bool", "text"] | bool | None = None
    retry_on_policy_violation: bool | None = None
    wrap_tool_result: bool | None = None
    detect_tool_errors: Literal["none", "regex", "llm"] | None = None
    detect_tool_error_regex_pattern: ClientRegex | None = None
    detect_tool_error_max_result_length: int | None = None
    strict_tool_result_parsing: bool | None = None
    tool_result_transform: Literal["none", "codex"] | None = None
    n_pllm_plans: Annotated[int, Field(ge=1)] | None = None
    pllm_candidate_models: list[str] | None = None
    pllm_context_pruning: bool | None = None


class PllmPrompt(_Strict):
    flavor: str | None = None
    version: str | None = None
    debug_info_level: DebugLevel | None = None
    clarify_ambiguous_queries: bool | None = None
    context_var_visibility: (
        Literal["none", "basic-notext", "basic-executable", "all-executable", "all"] | None
    ) = None
    query_inline_roles: list[Literal["assistant", "tool", "developer", "system"]] | None = None
    query_role_name_overrides: dict[str, str] | None = None
    query_include_tool_calls: bool | None = None
    query_include_tool_args: bool | None = None
    query_include_tool_results: bool | None = None


class RllmPrompt(_Strict):
    flavor: str | None = None
    version: str | None = None
    debug_info_level: DebugLevel | None = None


class TllmPrompt(_Strict):
    flavor: str | None = None
    version: str | None = None
    add_tool_description: bool | None = None
    add_tool_input_schema: bool | None = None


class LlmPrompt(_Strict):
    flavor: str | None = None
    version: str | None = None


class PromptConfig(_Strict):
    pllm: PllmPrompt | None = None
    rllm: RllmPrompt | None = None
    grllm: LlmPrompt | None = None
    qllm: LlmPrompt | None = None
    tllm: TllmPrompt | None = None
    tagllm: LlmPrompt | None = None
    policy_llm: LlmPrompt | None = None
    error_detector_llm: LlmPrompt | None = None


class ResponseFormatConfig(_Strict):
    strip_response_content: bool | None = None
    stream_thoughts: bool | None = None
    include_program: bool | None = None
    include_policy_check_history: bool | None = None
    include_namespace_snapshot: bool | None = None


class ReasoningConfig(_Strict):
    enabled: bool | None = None
    effort: str | None = None
    budget: Annotated[int, Field(ge=1)] | None = None
    adaptive: bool | None = None


class GenerationConfig(_Strict):
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    seed: int | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    reasoning: ReasoningConfig | None = None


class LlmConfig(_Strict):
    pllm: GenerationConfig | None = None
    rllm: GenerationConfig | None = None
    grllm: GenerationConfig | None = None
    qllm: GenerationConfig | None = None
    tllm: GenerationConfig | None = None
    tagllm: GenerationConfig | None = None
    policy_llm: GenerationConfig | None = None
    tool_result_error_detector_llm: GenerationConfig | None = None


class ConfigHeader(_Strict):
    fsm: FsmConfig | None = None
    prompt: PromptConfig | None = None
    response_format: ResponseFormatConfig | None = None
    llm: LlmConfig | None = None


MODELS: dict[str, type[BaseModel]] = {
    "features": FeaturesHeader,
    "policy": PolicyHeader,
    "config": ConfigHeader,
}


# --- parsing ------------------------------------------------------------------------------------------


class DocumentError(ValueError):
    """A configuration document is not valid. ``str()`` names the document (header) and the field."""

    def __init__(self, document: str, errors: list[str]):
        self.document = document
        self.errors = errors
        super().__init__(f"Invalid {document} header: " + "; ".join(errors))


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif (
            isinstance(item, str)
            and not item.startswith(("function-", "literal[", "constrained-"))
            and item
            not in (
                "int",
                "str",
                "bool",
                "float",
                "list[str]",
                "dict[str,str]",
                "dict[str,int]",
            )
        ):
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(document)"


def describe_validation_error(exc: ValidationError) -> list[str]:
    """Readable one-line messages, each naming the field path (e.g. ``fsm.max_n_turns``)."""
    out: list[str] = []
    for err in exc.errors(include_url=False):
        field = _loc(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(f"{field}: {msg}")
    return list(dict.fromkeys(out))


def parse_document(kind: str, raw: str | bytes | dict[str, Any] | None) -> BaseModel | None:
    """Parse one document (``kind`` in features/policy/config) from header text or a dict.

    Returns ``None`` for an absent document; raises :class:`DocumentError` naming the header and field.
    """
    header = HEADER_NAMES[kind]
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)):
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DocumentError(header, [f"Invalid JSON: {exc}"]) from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise DocumentError(header, ["must be a JSON object"])
    try:
        return MODELS[kind].model_validate(data)
    except ValidationError as exc:
        raise DocumentError(header, describe_validation_error(exc)) from None


def _drop_nulls(data: Any, path: str = "") -> Any:
    if isinstance(data, dict):
        return {
            k: _drop_nulls(v, f"{path}.{k}")
            for k, v in data.items()
            if v is not None or f"{path}.{k}" == ".fsm.max_n_turns"  # explicit null = unlimited turns
        }
    if isinstance(data, list):
        return [_drop_nulls(v, path) for v in data]
    return data


def dump_document(model: BaseModel | None) -> dict[str, Any]:
    """The stored form of a document: the fields that were set, nulls dropped (but see ``max_n_turns``)."""
    if model is None:
        return {}
    dumped: dict[str, Any] = _drop_nulls(model.model_dump(mode="json", exclude_unset=True))
    return dumped
