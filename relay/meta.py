"""The metadata model shared by the SQRT policy engine and the dual-LLM interpreter.

Every value carries ``Meta(producers, consumers, tags)``. Producers and tags propagate by union, consumers by
intersection; the universal set (serialised ``["*"]``) is the identity of intersection. A set is either a
``frozenset`` of strings or the singleton ``UNIVERSAL``. Framework-free: no Django imports.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final


class _Universal(enum.Enum):
    """The universal set. A singleton (an enum member, so that ``s is UNIVERSAL`` narrows a ``MetaSet`` for
    type checkers); any set literal containing ``"*"`` normalises to it."""

    UNIVERSAL = "*"

    def __repr__(self) -> str:
        return "UNIVERSAL"

    __str__ = __repr__

    def __contains__(self, item: object) -> bool:
        return True


UNIVERSAL: Final = _Universal.UNIVERSAL
MetaSet = frozenset[str] | _Universal
EMPTY: frozenset[str] = frozenset()


def make_set(items: Iterable[str] | MetaSet | None) -> MetaSet:
    """Normalise an iterable of strings into a metadata set; ``"*"`` anywhere makes it universal."""
    if items is None:
        return EMPTY
    if items is UNIVERSAL:
        return UNIVERSAL
    s = frozenset(items)
    return UNIVERSAL if "*" in s else s


def set_union(a: MetaSet, b: MetaSet) -> MetaSet:
    if a is UNIVERSAL or b is UNIVERSAL:
        return UNIVERSAL
    return a | b


def set_intersect(a: MetaSet, b: MetaSet) -> MetaSet:
    if a is UNIVERSAL:
        return b
    if b is UNIVERSAL:
        return a
    return a & b


def set_minus(a: MetaSet, b: MetaSet) -> MetaSet:
    """``U - A`` stays U for finite A (there are no co-finite sets)."""
    if b is UNIVERSAL:
        return EMPTY
    if a is UNIVERSAL:
        return UNIVERSAL
    return a - b


def set_xor(a: MetaSet, b: MetaSet) -> MetaSet:
    if a is UNIVERSAL and b is UNIVERSAL:
        return EMPTY
    if a is UNIVERSAL or b is UNIVERSAL:
        return UNIVERSAL
    return a ^ b


def set_to_json(s: MetaSet) -> list[str]:
    return ["*"] if s is UNIVERSAL else sorted(s)


@dataclass(frozen=True, slots=True)
class Meta:
    """Immutable metadata of one value."""

    producers: MetaSet = EMPTY
    consumers: MetaSet = UNIVERSAL
    tags: MetaSet = EMPTY

    def merge(self, other: Meta) -> Meta:
        """Propagation: producers union, consumers intersection, tags union."""
        if other is self or other == DEFAULT_META:
            return self
        if self == DEFAULT_META:
            return other
        return Meta(
            set_union(self.producers, other.producers),
            set_intersect(self.consumers, other.consumers),
            set_union(self.tags, other.tags),
        )

    def with_tags(self, *tags: str) -> Meta:
        return Meta(self.producers, self.consumers, set_union(self.tags, frozenset(tags)))

    def replace(self, **fields: MetaSet) -> Meta:
        values = {"producers": self.producers, "consumers": self.consumers, "tags": self.tags}
        values.update(fields)
        return Meta(**values)

    def to_json(self) -> dict[str, list[str]]:
        """The wire shape; ``meta`` objects carry exactly these three keys."""
        return {
            "tags": set_to_json(self.tags),
            "consumers": set_to_json(self.consumers),
            "producers": set_to_json(self.producers),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Meta:
        """Parse a wire ``meta`` object; raises ``ValueError`` naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError("meta must be an object with producers, consumers and tags")
        fields = {}
        for name in ("producers", "consumers", "tags"):
            items = data.get(name, [] if name != "consumers" else ["*"])
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"meta.{name} must be an array of strings")
            fields[name] = make_set(items)
        return cls(**fields)


DEFAULT_META = Meta()


def merge_all(metas: Iterable[Meta]) -> Meta:
    """Merge of zero metas is the default meta."""
    result = DEFAULT_META
    for m in metas:
        result = result.merge(m)
    return result


@dataclass(frozen=True, slots=True)
class ValueWithMeta:
    """A plain value and its metadata: how tool-call arguments and results cross engine boundaries."""

    value: Any
    meta: Meta = DEFAULT_META

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "meta": self.meta.to_json()}
