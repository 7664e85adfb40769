"""Anthropic Messages pass-through: reading and rewriting upstream messages and the client's history."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ..model import JsonObject, NewId, ToolCall, Usage
from ..protocol import AnswerArgumentsFn, HistoryArgumentsFn, ResultFn
from ..wire import CallShape, for_role, map_field, result_rewriter, typed

CALL = CallShape(id_key="id", args_key="input", args_text=False)
STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")
BLOCK_TYPES = frozenset(
    {"text", "thinking", "redacted_thinking", "tool_use", "server_tool_use", "web_search_tool_result"}
)
SERVICE_TIERS = frozenset({"standard", "priority", "batch"})


def usage_from(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    prompt = (
        int(u.get("input_tokens") or 0)
        + int(u.get("cache_creation_input_tokens") or 0)
        + int(u.get("cache_read_input_tokens") or 0)
    )
    return Usage(prompt, int(u.get("output_tokens") or 0))


def normalise_stop(stop: Any) -> str | None:
    """A stop reason outside the client's vocabulary (§9.2) -> the nearest allowed one."""
    if stop is None or stop in STOP_REASONS:
        return stop  # type: ignore[no-any-return]
    return "max_tokens" if "token" in str(stop) or "window" in str(stop) else "end_turn"


def sanitize_answer(answer: JsonObject, **_: Any) -> JsonObject:
    """Make an upstream Message safe for strict clients (MSG-1…MSG-6), in place: thinking blocks get their
    text in ``text``; block types the client cannot parse are dropped; ``stop_reason`` and
    ``usage.service_tier`` are kept inside the client's vocabulary."""
    content = answer.get("content")
    if isinstance(content, list):
        kept = []
        for b in content:
            if not isinstance(b, dict) or b.get("type") not in BLOCK_TYPES:
                continue
            if b["type"] == "thinking" and not isinstance(b.get("text"), str):
                b = {**b, "text": b.get("thinking") or ""}
            kept.append(b)
        answer["content"] = kept
    answer["stop_reason"] = normalise_stop(answer.get("stop_reason"))
    usage = answer.get("usage")
    if (
        isinstance(usage, dict)
        and usage.get("service_tier") is not None
        and usage["service_tier"] not in SERVICE_TIERS
    ):
        usage.pop("service_tier")
    return answer


def extract_usage(answer: Mapping[str, Any]) -> Usage:
    return usage_from(answer.get("usage"))


def extract_text(answer: Mapping[str, Any]) -> str:
    return "".join(b.get("text") or "" for b in typed(answer.get("content"), "text"))


def extract_tool_calls(answer: Mapping[str, Any]) -> list[ToolCall]:
    return [CALL.read(b) for b in typed(answer.get("content"), "tool_use")]


def filter_tool_calls(
    answer: JsonObject, allowed_ids: Collection[str], denial_text: str | None = None
) -> JsonObject:
    """Drop ``tool_use`` blocks whose upstream id is not allowed; add ``denial_text`` as a text block.

    ``stop_reason`` becomes ``end_turn`` when no tool_use survives. Mutates and returns ``answer``.
    """
    content = answer.get("content") or []
    if next(typed(content, "tool_use"), None) is None:
        return answer
    kept = [
        b
        for b in content
        if not (isinstance(b, dict) and b.get("type") == "tool_use" and b.get("id") not in allowed_ids)
    ]
    if denial_text and len(kept) < len(content):
        kept.append({"type": "text", "text": denial_text})
    answer["content"] = kept
    if next(typed(kept, "tool_use"), None) is None and answer.get("stop_reason") == "tool_use":
        answer["stop_reason"] = "end_turn"
    return answer


def _uses(answer: Mapping[str, Any]) -> Iterator[JsonObject]:
    return typed(answer.get("content"), "tool_use")


def rewrite_answer_ids(answer: JsonObject, new_id: NewId) -> JsonObject:
    CALL.rewrite_id(_uses(answer), new_id)
    return answer


def rewrite_answer_arguments(answer: JsonObject, fn: AnswerArgumentsFn) -> JsonObject:
    """Replace proposed ``tool_use`` inputs by ``fn(id, name, input)`` (None keeps them); in place."""
    CALL.rewrite_arguments((b for b in _uses(answer) if isinstance(b.get("input"), dict)), fn)
    return answer


def rewrite_ids_in_request(body: Mapping[str, Any], mapping: Mapping[str, str]) -> JsonObject:
    """Copy of ``body`` with our tool ids (``tool_use.id``, ``tool_result.tool_use_id``) mapped back."""
    if not mapping:
        return dict(body)
    keys = {"tool_use": "id", "tool_result": "tool_use_id"}

    def block(b: Any) -> Any:
        key = keys.get(str(b.get("type"))) if isinstance(b, dict) else None
        return {**b, key: mapping[b[key]]} if key is not None and b.get(key) in mapping else b

    def message(m: Any) -> Any:
        return map_field(m, "content", block) if isinstance(m, dict) else m

    return map_field(dict(body), "messages", message)


def rewrite_tool_results(body: JsonObject, fn: ResultFn) -> JsonObject:
    """Copy of ``body`` whose ``tool_result`` blocks' text is ``fn(tool_use_id, text)`` (copy-on-write)."""
    result = result_rewriter("tool_use_id", "content", fn, missing_is_empty=True)

    def block(b: Any) -> Any:
        return result(b) if isinstance(b, dict) and b.get("type") == "tool_result" else b

    def message(m: Any) -> Any:
        return map_field(m, "content", block) if isinstance(m, dict) else m

    return map_field(body, "messages", message)


def rewrite_call_arguments(body: JsonObject, fn: HistoryArgumentsFn) -> JsonObject:
    """Copy of ``body`` whose ``tool_use`` blocks' ``input`` (an object) is ``fn(id, input)`` (None keeps it;
    copy-on-write). Every tool call of the history is passed to ``fn``, in order."""
    call = CALL.history_rewriter(fn)

    def block(b: Any) -> Any:
        return call(b) if isinstance(b, dict) and b.get("type") == "tool_use" else b

    return map_field(body, "messages", for_role("assistant", lambda m: map_field(m, "content", block)))


__all__ = ["BLOCK_TYPES", "CALL", "SERVICE_TIERS", "STOP_REASONS", "extract_text", "extract_tool_calls"]
__all__ += ["extract_usage", "filter_tool_calls", "normalise_stop", "rewrite_answer_arguments"]
__all__ += ["rewrite_answer_ids", "rewrite_call_arguments", "rewrite_ids_in_request"]
__all__ += ["rewrite_tool_results", "sanitize_answer", "usage_from"]
