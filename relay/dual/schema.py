"""A small JSON-schema toolkit for ``parse_with_ai``: normalise the PLLM's output schema, validate replies.

``jsonschema`` is not a dependency; the subset below covers what structured-output APIs accept: ``type``
(string or list), ``properties``, ``required``, ``additionalProperties: false``, ``items``, ``enum``,
``const``, ``anyOf``/``oneOf``, ``minItems``/``maxItems``, ``minimum``/``maximum``.
"""

from __future__ import annotations

import re
from typing import Any

from .prompts import type_label

_SCHEMA_KEYS = frozenset(
    {
        "type",
        "properties",
        "items",
        "anyOf",
        "oneOf",
        "allOf",
        "enum",
        "const",
        "$ref",
        "required",
        "additionalProperties",
        "description",
        "title",
        "format",
        "$defs",
        "definitions",
    }
)
# Shorthand type names a PLLM may write instead of a JSON schema ({"name": "str", "age": "int"}).
_SHORT = {
    "str": "string",
    "string": "string",
    "text": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "none": "null",
    "null": "null",
    "dict": "object",
    "object": "object",
    "list": "array",
    "array": "array",
}
_GENERIC = re.compile(r"^\s*(list|List|array)\s*\[\s*(.+?)\s*\]\s*$")


class SchemaError(ValueError):
    """The output schema itself is unusable."""


def _looks_like_schema(d: dict[str, Any]) -> bool:
    return any(k in _SCHEMA_KEYS for k in d)


def _from_short(spec: Any, depth: int = 0) -> dict[str, Any]:
    if depth > 20:
        raise SchemaError("output_schema is nested too deeply")
    if isinstance(spec, dict):
        if _looks_like_schema(spec):
            return _strictify(spec, depth + 1)
        props = {str(k): _from_short(v, depth + 1) for k, v in spec.items()}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    if isinstance(spec, list):
        if len(spec) == 1:
            return {"type": "array", "items": _from_short(spec[0], depth + 1)}
        return {"type": "array"}
    if isinstance(spec, str):
        s = spec.strip()
        m = _GENERIC.match(s)
        if m:
            return {"type": "array", "items": _from_short(m.group(2), depth + 1)}
        t = _SHORT.get(s.lower().replace("<class '", "").replace("'>", ""))
        if t is None:
            return {"type": "string", "description": s}
        return {"type": t}
    raise SchemaError(f"unsupported output_schema entry of type {type(spec).__name__}")


def _strictify(schema: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Copy with every object closed (``additionalProperties: false``) and every property required
    (optional ones made nullable) — the form strict structured-output APIs insist on."""
    if depth > 40:
        raise SchemaError("output_schema is nested too deeply")
    out = dict(schema)
    t = out.get("type")
    if isinstance(t, str) and t in _SHORT and _SHORT[t] != t:
        out["type"] = t = _SHORT[t]
    if t == "object" or (t is None and "properties" in out):
        out["type"] = "object"
        props = out.get("properties") or {}
        if not isinstance(props, dict):
            raise SchemaError("output_schema: 'properties' must be an object")
        required = set(out.get("required") or [])
        new_props = {}
        for name, sub in props.items():
            sub = (
                _from_short(sub, depth + 1)
                if not isinstance(sub, dict) or not _looks_like_schema(sub)
                else _strictify(sub, depth + 1)
            )
            if name not in required:
                sub = _nullable(sub)
            new_props[name] = sub
        out["properties"] = new_props
        out["required"] = list(new_props)
        if out.get("additionalProperties") is not False or not new_props:
            out["additionalProperties"] = False
    elif t == "array" or (t is None and "items" in out):
        out["type"] = "array"
        items = out.get("items")
        if isinstance(items, dict):
            out["items"] = (
                _strictify(items, depth + 1) if _looks_like_schema(items) else _from_short(items, depth + 1)
            )
        elif isinstance(items, str):
            out["items"] = _from_short(items, depth + 1)
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [
                _strictify(s, depth + 1) if isinstance(s, dict) else _from_short(s, depth + 1)
                for s in out[key]
            ]
    return out


def _nullable(sub: dict[str, Any]) -> dict[str, Any]:
    t = sub.get("type")
    if isinstance(t, str) and t != "null":
        return {**sub, "type": [t, "null"]}
    if isinstance(t, list) and "null" not in t:
        return {**sub, "type": [*t, "null"]}
    if t is None and ("anyOf" in sub or "oneOf" in sub):
        key = "anyOf" if "anyOf" in sub else "oneOf"
        if not any(isinstance(s, dict) and s.get("type") == "null" for s in sub[key]):
            return {**sub, key: [*sub[key], {"type": "null"}]}
    return sub


def normalise_output_schema(spec: Any) -> tuple[dict[str, Any], bool]:
    """PLLM output schema -> (object schema for the QLLM, wrapped).

    Accepts a JSON schema or a shorthand (``{"name": "str", "tags": "list[str]"}``). A non-object schema is
    wrapped as ``{"value": <schema>}`` (``wrapped`` True: unwrap the reply's ``value``).
    """
    if isinstance(spec, str):
        spec = {"type": _SHORT.get(spec.strip().lower(), "string")}
    if not isinstance(spec, dict) or not spec:
        if isinstance(spec, list):
            schema = _from_short(spec)
        else:
            raise SchemaError(
                "output_schema must be a JSON schema object (e.g. "
                "{'type': 'object', 'properties': {...}, 'required': [...]})"
            )
    elif _looks_like_schema(spec):
        schema = _strictify(spec)
    else:
        schema = _from_short(spec)
    if schema.get("type") == "object":
        return schema, False
    return {
        "type": "object",
        "properties": {"value": schema},
        "required": ["value"],
        "additionalProperties": False,
    }, True


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def validate(value: Any, schema: Any, path: str = "$", depth: int = 0) -> str | None:
    """First violation of ``schema`` by ``value`` as a sentence, or None when it validates."""
    if not isinstance(schema, dict) or depth > 60:
        return None
    err = _kind_violation(value, schema, path, depth)
    if err is not None:
        return err
    if isinstance(value, dict):
        return _object_violation(value, schema, path, depth)
    if isinstance(value, list):
        return _array_violation(value, schema, path, depth)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_violation(value, schema, path)
    return None


def _kind_violation(value: Any, schema: dict[str, Any], path: str, depth: int) -> str | None:
    """``anyOf`` / ``oneOf``, ``type``, ``enum`` and ``const``."""
    if "anyOf" in schema or "oneOf" in schema:
        alts = schema.get("anyOf") or schema.get("oneOf") or []
        if alts and all(validate(value, s, path, depth + 1) is not None for s in alts):
            return f"{path}: does not match any of the allowed alternatives"
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES.get(x, lambda v: True)(value) for x in types):
            return f"{path}: expected {' or '.join(map(str, types))}, got {_type_name(value)}"
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return f"{path}: must be one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: must equal {schema['const']!r}"
    return None


def _object_violation(value: dict[Any, Any], schema: dict[str, Any], path: str, depth: int) -> str | None:
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in value:
            return f"{path}: missing required key {name!r}"
    for name, sub in props.items():
        if name in value:
            err = validate(value[name], sub, f"{path}.{name}", depth + 1)
            if err:
                return err
    if schema.get("additionalProperties") is False and props:
        extra = [k for k in value if k not in props]
        if extra:
            return f"{path}: unexpected key {extra[0]!r}"
    return None


def _array_violation(value: list[Any], schema: dict[str, Any], path: str, depth: int) -> str | None:
    items = schema.get("items")
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{path}: expected at least {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{path}: expected at most {schema['maxItems']} items"
    if isinstance(items, dict):
        for i, v in enumerate(value):
            err = validate(v, items, f"{path}[{i}]", depth + 1)
            if err:
                return err
    return None


def _number_violation(value: float, schema: dict[str, Any], path: str) -> str | None:
    if "minimum" in schema and value < schema["minimum"]:
        return f"{path}: must be >= {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"{path}: must be <= {schema['maximum']}"
    return None


def coerce(value: Any, schema: Any) -> Any:
    """Integral floats where the schema wants integers become ints (JSON decoders differ)."""
    if not isinstance(schema, dict):
        return value
    t = schema.get("type")
    types = t if isinstance(t, list) else [t]
    if isinstance(value, float) and "integer" in types and "number" not in types and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: coerce(v, props.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce(v, schema["items"]) for v in value]
    return value


_JSON_TYPE_NAMES = {
    "None": "null",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "str": "string",
    "list": "array",
    "dict": "object",
}


def _type_name(v: Any) -> str:
    """The type of ``v`` in JSON Schema's words (``type_label``'s, translated)."""
    label = type_label(v)
    return _JSON_TYPE_NAMES.get(label, label)
