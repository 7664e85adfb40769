"""Compact JSON-safe encodings for the session state, and the conversation digest (history mismatch, §7.5).

Metadata is stored as ``None`` (the default meta) or ``[tags, consumers, producers]`` (lists of strings,
``["*"]`` = universal); values with metadata as ``[value, meta]``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from relay.formats.model import Turn
from relay.meta import DEFAULT_META, UNIVERSAL, Meta, ValueWithMeta, make_set, set_to_json

_meta_cache: dict[tuple, Meta] = {}


def meta_dump(m: Meta) -> list | None:
    if m == DEFAULT_META:
        return None
    return [set_to_json(m.tags), set_to_json(m.consumers), set_to_json(m.producers)]


def meta_load(data: Any) -> Meta:
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


def vwm_dump(v: ValueWithMeta) -> list:
    return [v.value, meta_dump(v.meta)]


def vwm_load(data: list) -> ValueWithMeta:
    return ValueWithMeta(data[0], meta_load(data[1]))


def wire_vwm(v: ValueWithMeta) -> dict:
    """The §11 wire shape ``{"value", "meta": {"tags", "consumers", "producers"}}``."""
    return {"value": v.value, "meta": v.meta.to_json()}


def universal_consumers(m: Meta) -> bool:
    return m.consumers is UNIVERSAL


# ------------------------------------------------------------------------------- conversation digest

def _canon_args(args: Any) -> str:
    try:
        return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(args)


def turn_digest(turn: Turn) -> str:
    """A short digest of one message, tolerant as §7.5 asks: role, text (None/""/missing equal, surrounding
    whitespace ignored), tool-call ids/names/arguments (as parsed JSON), tool-result ids and content."""
    h = hashlib.blake2b(digest_size=8)
    h.update(turn.role.encode())
    h.update(b"\0")
    h.update((turn.text or "").strip().encode("utf-8", "surrogatepass"))
    for c in turn.tool_calls:
        h.update(b"\1")
        h.update(f"{c.id}\0{c.name}\0".encode("utf-8", "surrogatepass"))
        h.update(_canon_args(c.arguments if c.raw_arguments is None else c.raw_arguments).encode(
            "utf-8", "surrogatepass"))
    for r in turn.tool_results:
        h.update(b"\2")
        h.update(f"{r.call_id}\0".encode())
        h.update((r.content or "").strip().encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def digests(turns: list[Turn]) -> list[str]:
    return [turn_digest(t) for t in turns]
