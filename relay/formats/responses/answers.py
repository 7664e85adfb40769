"""OpenAI Responses pass-through: reading and rewriting upstream Response objects and the client's input."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..model import JsonObject, NewId, ToolCall, Usage, now
from ..protocol import AnswerArgumentsFn, HistoryArgumentsFn, ResultFn
from ..wire import CallShape, map_field, result_rewriter, typed
from .encode import message_item

CALL = CallShape(id_key="call_id", args_key="arguments", args_text=True)
STATUSES = frozenset({"completed", "failed", "in_progress", "cancelled", "queued", "incomplete"})


def usage_from(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    return Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0))


def _sanitize_usage(usage: JsonObject) -> None:
    for details, key in (
        ("input_tokens_details", "cached_tokens"),
        ("output_tokens_details", "reasoning_tokens"),
    ):
        if not isinstance(usage.get(details), dict):
            usage[details] = {key: 0}
        usage[details].setdefault(key, 0)
    for key in ("input_tokens", "output_tokens"):
        usage[key] = int(usage.get(key) or 0)
    usage.setdefault("total_tokens", usage["input_tokens"] + usage["output_tokens"])


def sanitize_answer(answer: JsonObject, *, echo: Mapping[str, Any] | None = None, **_: Any) -> JsonObject:
    """Make an upstream Response safe for strict clients (RSP-1…RSP-7), in place: required top-level fields
    filled (from ``echo`` = ``response_echo(body)`` when given), ``status``/``error``/``incomplete_details``
    kept in the client's vocabulary, usage details completed, tools reduced to objects with a ``type``."""
    answer.setdefault("object", "response")
    if not isinstance(answer.get("created_at"), (int, float)):
        answer["created_at"] = now()
    for key, default in (("tools", []), ("tool_choice", "auto"), ("parallel_tool_calls", True)):
        if answer.get(key) is None:
            answer[key] = (echo or {}).get(key, default)
    answer["tools"] = [t for t in answer["tools"] if isinstance(t, dict) and isinstance(t.get("type"), str)]
    if not isinstance(answer.get("output"), list):
        answer["output"] = []
    if answer.get("status") is not None and answer["status"] not in STATUSES:
        answer["status"] = "completed"
    err = answer.get("error")
    if err is not None and not (
        isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)
    ):
        e = err if isinstance(err, dict) else {"message": err}
        answer["error"] = {
            "code": str(e.get("code") or "server_error"),
            "message": str(e.get("message") or e),
        }
    inc = answer.get("incomplete_details")
    if isinstance(inc, dict) and inc.get("reason") not in (None, "max_output_tokens", "content_filter"):
        answer["incomplete_details"] = {"reason": None}
    usage = answer.get("usage")
    if isinstance(usage, dict):
        _sanitize_usage(usage)
    elif usage is not None:
        del answer["usage"]
    return answer


def extract_usage(answer: Mapping[str, Any]) -> Usage:
    return usage_from(answer.get("usage"))


def extract_text(answer: Mapping[str, Any]) -> str:
    return "".join(
        part.get("text") or ""
        for item in typed(answer.get("output"), "message")
        for part in typed(item.get("content") or [], "output_text")
    )


def extract_tool_calls(answer: Mapping[str, Any]) -> list[ToolCall]:
    return [CALL.read(item) for item in typed(answer.get("output"), "function_call")]


def filter_tool_calls(
    answer: JsonObject, allowed_ids: Collection[str], denial_text: str | None = None
) -> JsonObject:
    """Drop ``function_call`` items whose upstream ``call_id`` is not allowed; add a message with
    ``denial_text``. Mutates and returns ``answer``."""
    output = answer.get("output") or []
    kept = [
        it
        for it in output
        if not (
            isinstance(it, dict)
            and it.get("type") == "function_call"
            and it.get("call_id") not in allowed_ids
        )
    ]
    if len(kept) < len(output):
        if denial_text:
            kept.append(message_item(denial_text))
        answer["output"] = kept
    return answer


def rewrite_answer_ids(answer: JsonObject, new_id: NewId) -> JsonObject:
    CALL.rewrite_id(typed(answer.get("output"), "function_call"), new_id)
    return answer


def rewrite_answer_arguments(answer: JsonObject, fn: AnswerArgumentsFn) -> JsonObject:
    """Replace proposed ``function_call`` arguments by ``fn(call_id, name, args)`` (None keeps them)."""
    CALL.rewrite_arguments(typed(answer.get("output"), "function_call"), fn)
    return answer


def rewrite_ids_in_request(body: Mapping[str, Any], mapping: Mapping[str, str]) -> JsonObject:
    """Copy of ``body`` with our ``call_id``s (function_call / function_call_output items) mapped back."""
    if not mapping:
        return dict(body)

    def item(it: Any) -> Any:
        if (
            isinstance(it, dict)
            and it.get("call_id") in mapping
            and it.get("type") in ("function_call", "function_call_output")
        ):
            return {**it, "call_id": mapping[it["call_id"]]}
        return it

    return map_field(dict(body), "input", item)


def rewrite_tool_results(body: JsonObject, fn: ResultFn) -> JsonObject:
    """Copy of ``body`` whose ``function_call_output`` text is ``fn(call_id, text)`` (copy-on-write)."""
    result = result_rewriter("call_id", "output", fn)
    return map_field(body, "input", lambda it: result(it) if _is(it, "function_call_output") else it)


def rewrite_call_arguments(body: JsonObject, fn: HistoryArgumentsFn) -> JsonObject:
    """Copy of ``body`` whose ``function_call`` items' ``arguments`` (a JSON string) are ``fn(call_id, raw)``
    (None keeps them; copy-on-write). Every tool call of the input is passed to ``fn``, in order."""
    call = CALL.history_rewriter(fn)
    return map_field(body, "input", lambda it: call(it) if _is(it, "function_call") else it)


def _is(item: Any, kind: str) -> bool:
    return isinstance(item, dict) and item.get("type") == kind


__all__ = ["CALL", "STATUSES", "extract_text", "extract_tool_calls", "extract_usage", "filter_tool_calls"]
__all__ += ["rewrite_answer_arguments", "rewrite_answer_ids", "rewrite_call_arguments"]
__all__ += ["rewrite_ids_in_request", "rewrite_tool_results", "sanitize_answer", "usage_from"]
