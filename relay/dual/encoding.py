"""Compact JSON-safe encodings of metadata and values, as the session state stores them.

Metadata is stored as ``None`` (the default meta) or ``[tags, consumers, producers]`` (lists of strings,
``["*"]`` = universal); a value with its metadata as ``[value, meta]``.
"""

from __future__ import annotations

from typing import Any

from relay.meta import DEFAULT_META, Meta, ValueWithMeta, make_set, set_to_json

MetaJSON = list[list[str]] | None
"""Stored metadata: None (the default) or ``[tags, consumers, producers]``."""

StoredValue = list[Any]
"""A stored value with its metadata: ``[value, MetaJSON]``."""

_meta_cache: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], Meta] = {}


def meta_dump(m: Meta) -> MetaJSON:
    if m == DEFAULT_META:
        return None
    return [set_to_json(m.tags), set_to_json(m.consumers), set_to_json(m.producers)]


def meta_load(data: Any) -> Meta:
    """Read stored metadata (also the ``{"tags", "consumers", "producers"}`` wire shape). The few distinct
    metadata a session holds are decoded once and shared (``Meta`` is immutable)."""
    if data is None:
        return DEFAULT_META
    if isinstance(data, dict):
        return Meta.from_json(data)
    key = (tuple(data[0]), tuple(data[1]), tuple(data[2]))
    hit = _meta_cache.get(key)
    if hit is None:
        hit = Meta(producers=make_set(data[2]), consumers=make_set(data[1]), tags=make_set(data[0]))
        if len(_meta_cache) > 4096:
            _meta_cache.clear()
        _meta_cache[key] = hit
    return hit


def vwm_dump(v: ValueWithMeta) -> StoredValue:
    return [v.value, meta_dump(v.meta)]


def vwm_load(data: StoredValue) -> ValueWithMeta:
    return ValueWithMeta(data[0], meta_load(data[1]))
