"""The final answer: the result document (status, final value with its metadata, and what
``response_format`` asks to include) and its serialisation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from relay.meta import Meta, ValueWithMeta

CONTROL_FLOW_MESSAGE = "Control flow violation detected during program execution."


_MAX_JSON_INT_BITS = 14_284  # at most 4300 decimal digits: what CPython converts, and what JSON readers take


def _unserializable(reason: str) -> str:
    return f"<unserializable value: {reason}>"


def _json_key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, int) and not isinstance(k, bool) and abs(k).bit_length() > _MAX_JSON_INT_BITS:
        return _unserializable("integer too large (more than 4300 digits)")
    try:
        return str(k)
    except Exception:  # noqa: BLE001
        return _unserializable(type(k).__name__)


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable copy (strict JSON: no NaN/Infinity, no integer too long to print). The interpreter
    already refuses such final values (a program error); this is the last line of defence for the answer."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        if abs(value).bit_length() > _MAX_JSON_INT_BITS:
            return _unserializable("integer too large (more than 4300 digits)")
        return value
    if isinstance(value, float):
        if value != value:
            return _unserializable("NaN (not a number)")
        if value in (float("inf"), float("-inf")):
            return _unserializable("infinity")
        return value
    if depth > 200:
        return _unserializable("nested too deeply")
    if isinstance(value, dict):
        return {_json_key(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value)
        except TypeError:
            items = list(value)
        return [_json_safe(v, depth + 1) for v in items]
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        try:
            return _json_safe(to_json(), depth + 1)
        except Exception:  # noqa: BLE001 - best effort
            pass
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - e.g. a range of huge integers
        return _unserializable(type(value).__name__)


def build_result(
    *,
    status: str,
    final: ValueWithMeta | None,
    error: tuple[str, str] | None,
    response_format: Mapping[str, Any],
    program: str | None,
    namespace: dict[str, ValueWithMeta] | None,
    session_meta: Meta,
    policy_history: list[dict[str, Any]],
    policy_failure: bool,
    mismatch: bool,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": status,
        "final_return_value": (
            {"value": _json_safe(final.value), "meta": final.meta.to_json()}
            if status == "success" and final
            else ({"value": None, "meta": Meta().to_json()} if status == "success" else None)
        ),
        "error": {"code": error[0], "message": error[1]} if error else None,
    }
    if response_format.get("include_program") and program is not None:
        doc["program"] = program
    if response_format.get("include_namespace_snapshot"):
        doc["namespace_snapshot"] = {
            name: {"value": _json_safe(v.value), "meta": v.meta.to_json()}
            for name, v in (namespace or {}).items()
        }
    if response_format.get("include_namespace_snapshot") or response_format.get(
        "include_policy_check_history"
    ):
        doc["session_meta"] = {"value": None, "meta": session_meta.to_json()}
    if response_format.get("include_policy_check_history") or policy_failure:
        doc["policy_check_history"] = _json_safe(policy_history)
    if mismatch:
        doc["message_history_mismatch_detected"] = True
    return doc


def render_content(doc: dict[str, Any], *, strip: bool) -> str:
    """``json.dumps`` with default settings (§11.2), or the plain value / error message when stripping (§11.5).
    Always strict JSON (``allow_nan=False``): a value that slipped through unchecked is made safe, never
    rendered as a bare ``NaN``."""
    if not strip:
        return _dumps(doc)
    if doc["status"] != "success":
        return doc["error"]["message"] if doc.get("error") else ""
    frv = doc.get("final_return_value") or {}
    value = frv.get("value")
    if isinstance(value, str):
        return value
    return _dumps(value, separators=(",", ":"), ensure_ascii=False)


def _dumps(obj: Any, **kw: Any) -> str:
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(_json_safe(obj), allow_nan=False, **kw)
