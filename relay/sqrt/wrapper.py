"""The manual tool-result metadata wrapper."""

from __future__ import annotations

from typing import Any

from relay.meta import Meta, make_set

from .errors import ManualWrapperError

COMBINE_MODES = ("merge", "replace", "ignore")


def unwrap_manual_result(decoded: Any, initial_meta: Meta) -> tuple[Any, Meta]:
    """Return ``(value, meta)`` for a decoded tool result.

    Not a wrapper (not an object, or ``is_sequrity_var`` not exactly ``true``) -> ``(decoded, initial_meta)``.
    A wrapper -> ``(wrapper["value"], meta)`` with ``meta`` = merge(initial, wrapper) / wrapper / initial for
    ``combine_meta`` = ``merge`` (default) / ``replace`` / ``ignore``. Raises ``ManualWrapperError`` when
    ``is_sequrity_var`` is true but a field is missing or ill-typed, or ``combine_meta`` is unknown.
    """
    if not isinstance(decoded, dict) or decoded.get("is_sequrity_var") is not True:
        return decoded, initial_meta
    if "value" not in decoded:
        raise ManualWrapperError("manual metadata wrapper: missing field 'value'")
    meta = decoded.get("meta")
    if not isinstance(meta, dict):
        raise ManualWrapperError(
            "manual metadata wrapper: 'meta' must be an object with producers, consumers, tags"
        )
    fields = {}
    for name in ("producers", "consumers", "tags"):
        if name not in meta:
            raise ManualWrapperError(f"manual metadata wrapper: missing field 'meta.{name}'")
        items = meta[name]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ManualWrapperError(f"manual metadata wrapper: 'meta.{name}' must be an array of strings")
        fields[name] = make_set(items)
    combine = decoded.get("combine_meta", "merge")
    if combine is None:
        combine = "merge"
    if combine not in COMBINE_MODES:
        raise ManualWrapperError(
            f"manual metadata wrapper: unknown combine_meta {combine!r} (expected 'merge', 'replace' or 'ignore')"
        )
    wrapper_meta = Meta(**fields)
    if combine == "merge":
        result = initial_meta.merge(wrapper_meta)
    elif combine == "replace":
        result = wrapper_meta
    else:
        result = initial_meta
    return decoded["value"], result
