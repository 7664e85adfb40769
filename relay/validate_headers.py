"""``POST /control/v1/validate-headers``: check header documents without a request."""

from __future__ import annotations

import json
from typing import Any

from .header_documents import DocumentError, PolicyHeader, PolicyPresets, parse_document
from .sqrt import PolicyCompileError, compile_policy

_KINDS = {"x_features": "features", "x_policy": "policy", "x_config": "config"}


def _normalized(kind: str, model) -> dict[str, Any]:
    data = model.model_dump(mode="json")
    if isinstance(model, PolicyHeader):
        # Documented defaults filled in; fail_fast stays null when unset.
        data["mode"] = data["mode"] or "standard"
        data["codes"] = data["codes"] or {"code": "", "language": "sqrt"}
        data["auto_gen"] = bool(data["auto_gen"])
        if data["presets"] is None:
            data["presets"] = PolicyPresets().model_dump(mode="json")
    return data


def _policy_errors(model: PolicyHeader) -> list[str]:
    if model.codes is None or not model.codes.code.strip():
        return []
    try:
        compile_policy(model.codes.code, model.codes.language)
    except PolicyCompileError as exc:
        return [f"codes.code: {exc}"]
    return []


def validate_one(kind: str, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raw = json.dumps(raw)
    try:
        model = parse_document(kind, raw)
    except DocumentError as exc:
        return {"valid": False, "normalized": None, "errors": exc.errors}
    errors = _policy_errors(model) if kind == "policy" else []
    if errors:
        return {"valid": False, "normalized": None, "errors": errors}
    return {"valid": True, "normalized": _normalized(kind, model), "errors": []}


def validate_headers(body: dict[str, Any]) -> dict[str, Any]:
    return {field: validate_one(kind, body.get(field)) for field, kind in _KINDS.items()}
