"""Chat Completions pass-through: reading and rewriting upstream completions and the client's history."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ..model import JsonObject, NewId, RequestError, ToolCall, Usage, now
from ..protocol import AnswerArgumentsFn, HistoryArgumentsFn, ResultFn
from ..wire import CallShape, for_role, join_denial, map_field, result_rewriter
from .decode import content_text

CALL = CallShape(id_key="id", args_key="arguments", args_text=True, nest="function")
LEGACY_CALL = CallShape(id_key="name", args_key="arguments", args_text=True)
"""The deprecated ``function_call`` of an assistant message (its name serves as the id)."""


def _calls(answer: Mapping[str, Any]) -> Iterator[JsonObject]:
    """The proposed tool calls of every choice."""
    for choice in answer.get("choices") or []:
        yield from (choice.get("message") or {}).get("tool_calls") or []


def usage_from(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))


def extract_usage(answer: Mapping[str, Any]) -> Usage:
    return usage_from(answer.get("usage"))


def _first_message(answer: Mapping[str, Any]) -> JsonObject:
    choices = answer.get("choices")
    return (choices[0].get("message") or {}) if choices else {}


def extract_text(answer: Mapping[str, Any]) -> str:
    content = _first_message(answer).get("content")
    if isinstance(content, str):
        return content
    try:
        return content_text(content, "content")
    except RequestError:
        return ""


def extract_tool_calls(answer: Mapping[str, Any]) -> list[ToolCall]:
    """Tool calls proposed in an upstream completion (first choice), with upstream ids."""
    return [CALL.read(call) for call in _first_message(answer).get("tool_calls") or []]


def filter_tool_calls(
    answer: JsonObject, allowed_ids: Collection[str], denial_text: str | None = None
) -> JsonObject:
    """Drop the proposed calls whose upstream id is not allowed; append ``denial_text`` to the content.

    ``finish_reason`` becomes ``stop`` when no call survives (control-api §8.3). Mutates and returns ``answer``.
    """
    for choice in answer.get("choices") or []:
        msg = choice.get("message") or {}
        calls = msg.get("tool_calls")
        if not calls:
            continue
        kept = [c for c in calls if c.get("id") in allowed_ids]
        if denial_text and len(kept) < len(calls):
            prev = msg.get("content")
            msg["content"] = join_denial(
                prev if isinstance(prev, str) else content_text(prev, "content"), denial_text
            )
        if kept:
            msg["tool_calls"] = kept
        else:
            msg.pop("tool_calls", None)
            if choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "stop"
    return answer


def rewrite_answer_ids(answer: JsonObject, new_id: NewId) -> JsonObject:
    """Replace upstream tool-call ids by ``new_id(upstream_id)`` in place; returns ``answer``."""
    CALL.rewrite_id(_calls(answer), new_id)
    return answer


def rewrite_answer_arguments(answer: JsonObject, fn: AnswerArgumentsFn) -> JsonObject:
    """Replace proposed tool-call arguments by ``fn(call_id, name, args)`` (None keeps them); in place."""
    CALL.rewrite_arguments(_calls(answer), fn)
    return answer


def rewrite_ids_in_request(body: Mapping[str, Any], mapping: Mapping[str, str]) -> JsonObject:
    """Copy of ``body`` whose tool-call ids (ours) are mapped back to upstream ids (copy-on-write)."""
    if not mapping:
        return dict(body)

    def call(c: Any) -> Any:
        return {**c, "id": mapping[c["id"]]} if isinstance(c, dict) and c.get("id") in mapping else c

    def message(m: Any) -> Any:
        if not isinstance(m, dict):
            return m
        if m.get("tool_call_id") in mapping:
            m = {**m, "tool_call_id": mapping[m["tool_call_id"]]}
        return map_field(m, "tool_calls", call)

    return map_field(dict(body), "messages", message)


def rewrite_tool_results(body: JsonObject, fn: ResultFn) -> JsonObject:
    """Copy of ``body`` whose tool messages' text is ``fn(call_id, text)`` (None keeps it; copy-on-write).

    Every tool (and legacy ``function``) message of the history is passed to ``fn``, in order."""
    by_role = {
        "tool": result_rewriter("tool_call_id", "content", fn),
        "function": result_rewriter("name", "content", fn),
    }

    def message(m: Any) -> Any:
        rewrite = by_role.get(str(m.get("role"))) if isinstance(m, dict) else None
        return rewrite(m) if rewrite is not None else m

    return map_field(body, "messages", message)


def rewrite_call_arguments(body: JsonObject, fn: HistoryArgumentsFn) -> JsonObject:
    """Copy of ``body`` whose assistant tool calls' wire arguments (a JSON string) are ``fn(call_id, raw)``
    (None keeps them; copy-on-write). Every tool call of the history is passed to ``fn``, in order."""
    call, legacy = CALL.history_rewriter(fn), LEGACY_CALL.history_rewriter(fn)

    def message(m: JsonObject) -> JsonObject:
        m = map_field(m, "tool_calls", call)
        fc = m.get("function_call")
        new = legacy(fc)
        return m if new is fc else {**m, "function_call": new}

    return map_field(body, "messages", for_role("assistant", message))


def normalise_finish(finish: Any) -> str:
    """A provider finish reason outside OpenAI's vocabulary -> the nearest one ("error" is invalid, §12.2)."""
    f = str(finish).lower()
    if "length" in f or "max" in f or "token" in f:
        return "length"
    if "tool" in f or "function" in f:
        return "tool_calls"
    if "filter" in f or "safety" in f or "content" in f:
        return "content_filter"
    return "stop"


_CITATION_KEYS = ("start_index", "end_index", "title", "url")
_AUDIO_KEYS = ("id", "data", "expires_at", "transcript")
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _is_citation(annotation: Any) -> bool:
    return (
        isinstance(annotation, dict)
        and annotation.get("type") == "url_citation"
        and isinstance(annotation.get("url_citation"), dict)
        and all(k in annotation["url_citation"] for k in _CITATION_KEYS)
    )


def sanitize_answer(answer: JsonObject, **_: Any) -> JsonObject:
    """Make an upstream completion safe for strict clients (sequrity models, CC-1…CC-5), in place.

    Drops ``annotations`` items that are not complete ``url_citation``s and incomplete ``audio``; fills a
    missing ``object``/``created``/``index``; drops a ``usage`` that lacks integer token counts.
    """
    answer.setdefault("object", "chat.completion")
    if not isinstance(answer.get("created"), int):
        answer["created"] = now()
    for i, choice in enumerate(answer.get("choices") or []):
        choice.setdefault("index", i)
        if not choice.get("finish_reason"):
            choice["finish_reason"] = "stop"
        msg = choice.get("message")
        if not isinstance(msg, dict):
            continue
        msg["role"] = "assistant"
        ann = msg.get("annotations")
        if ann is not None:
            good = [a for a in ann if _is_citation(a)]
            if len(good) != len(ann):
                msg["annotations"] = good
        audio = msg.get("audio")
        if audio is not None and not (isinstance(audio, dict) and all(k in audio for k in _AUDIO_KEYS)):
            del msg["audio"]
    usage = answer.get("usage")
    if usage is not None and not (
        isinstance(usage, dict) and all(isinstance(usage.get(k), int) for k in _USAGE_KEYS)
    ):
        del answer["usage"]
    return answer


__all__ = ["CALL", "LEGACY_CALL", "extract_text", "extract_tool_calls", "extract_usage"]
__all__ += ["filter_tool_calls", "normalise_finish", "rewrite_answer_arguments", "rewrite_answer_ids"]
__all__ += ["rewrite_call_arguments", "rewrite_ids_in_request", "rewrite_tool_results", "sanitize_answer"]
__all__ += ["usage_from"]
