"""Helpers for the wire shapes the three APIs share: where a tool call keeps its id, name and arguments,
copy-on-write rewriting of a body's lists, and the upstream copy of a client body.

The request rewrites (ids, tool results, history arguments) must not touch the client's body: the same
body may be logged or retried. So they rebuild only the lists and objects that change and hand back the
very same object when nothing does (callers compare by identity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._json import dumps_str
from .model import JsonObject, ToolCall, parse_arguments

ItemFn = Callable[[Any], Any]
"""Maps one list element to its replacement, or returns the element itself to keep it."""


def map_list(items: list[Any], fn: ItemFn) -> list[Any] | None:
    """``[fn(x) for x in items]`` when any element changed (by identity), else None."""
    out = None
    for i, item in enumerate(items):
        new = fn(item)
        if new is not item:
            if out is None:
                out = list(items[:i])
            out.append(new)
        elif out is not None:
            out.append(item)
    return out


def map_field(obj: JsonObject, key: str, fn: ItemFn) -> JsonObject:
    """``obj`` with the list ``obj[key]`` mapped by ``fn`` (copy-on-write; ``obj`` itself when unchanged)."""
    items = obj.get(key)
    if not isinstance(items, list):
        return obj
    new = map_list(items, fn)
    return obj if new is None else {**obj, key: new}


def for_role(role: str, fn: ItemFn) -> ItemFn:
    """``fn`` applied to the messages (objects) of ``role`` only."""
    return lambda m: fn(m) if isinstance(m, dict) and m.get("role") == role else m


def tool_text(content: Any) -> str | None:
    """Tolerant text of a tool result's content (string or text parts); None for other shapes."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return None


def replace_tool_text(content: Any, new: str) -> Any:
    """A tool result's content with its text replaced by ``new`` (the inverse of ``tool_text``).

    A string becomes ``new``; in a list of parts the first text part gets ``new``, the other text parts are
    dropped and every other part (images, files) is kept where it was."""
    if not isinstance(content, list):
        return new
    out: list[Any] = []
    placed = False
    for part in content:
        if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
            if not placed:
                out.append({**part, "text": new})
                placed = True
            continue
        out.append(part)
    return out if placed else new


def result_rewriter(
    id_key: str, content_key: str, fn: Callable[[str, str], str | None], *, missing_is_empty: bool = False
) -> ItemFn:
    """An ItemFn giving a tool-result object the text ``fn(call_id, text)`` (None keeps it)."""

    def rewrite(obj: JsonObject) -> JsonObject:
        content = obj.get(content_key)
        text = "" if missing_is_empty and content is None else tool_text(content)
        if text is None:
            return obj
        new = fn(str(obj.get(id_key) or ""), text)
        if new is None or new == text:
            return obj
        return {**obj, content_key: replace_tool_text(content, new)}

    return rewrite


@dataclass(frozen=True, slots=True)
class CallShape:
    """Where one API's wire tool call keeps its parts.

    ``id_key`` (``id`` / ``call_id``); the name and arguments live in the call itself or in its ``nest``
    object (Chat's ``function``); ``args_key`` holds a JSON string (``args_text``) or an object.
    """

    id_key: str
    args_key: str
    args_text: bool
    nest: str | None = None

    def inner(self, call: JsonObject) -> JsonObject:
        if self.nest is None:
            return call
        inner = call.get(self.nest)
        return inner if isinstance(inner, dict) else {}

    def read(self, call: JsonObject) -> ToolCall:
        inner = call if self.nest is None else call.get(self.nest)
        if not isinstance(inner, dict):
            inner = {}
        args, raw = parse_arguments(inner.get(self.args_key))
        return ToolCall(call.get(self.id_key) or "", inner.get("name") or "", args, raw)

    def set_arguments(self, call: JsonObject, arguments: JsonObject) -> None:
        """In place (answers are ours to change)."""
        inner = call.setdefault(self.nest, {}) if self.nest else call
        inner[self.args_key] = dumps_str(arguments) if self.args_text else arguments

    def rewrite_id(self, calls: Iterable[JsonObject], new_id: Callable[[str], str]) -> None:
        for call in calls:
            if call.get(self.id_key):
                call[self.id_key] = new_id(call[self.id_key])

    def rewrite_arguments(
        self, calls: Iterable[JsonObject], fn: Callable[[str, str, JsonObject], JsonObject | None]
    ) -> None:
        """``fn(call_id, name, arguments)`` replaces a call's arguments unless it returns None (in place)."""
        for call in calls:
            parsed = self.read(call)
            new = fn(call.get(self.id_key, ""), self.inner(call).get("name", ""), parsed.arguments)
            if new is not None:
                self.set_arguments(call, new)

    def history_rewriter(
        self, fn: Callable[[str, Any], Any], id_of: Callable[[JsonObject], Any] | None = None
    ) -> ItemFn:
        """An ItemFn giving a history call the wire arguments ``fn(call_id, arguments)`` (None keeps them)."""

        def rewrite(call: Any) -> Any:
            if not isinstance(call, dict):
                return call
            inner = self.inner(call) if self.nest is None or isinstance(call.get(self.nest), dict) else None
            if inner is None or inner.get(self.args_key) is None:
                return call
            cid = id_of(call) if id_of is not None else call.get(self.id_key)
            new = fn(str(cid or ""), inner[self.args_key])
            if new is None or new == inner[self.args_key]:
                return call
            updated = {**inner, self.args_key: new}
            return updated if self.nest is None else {**call, self.nest: updated}

        return rewrite


def typed(items: Any, kind: str) -> Iterator[JsonObject]:
    """The objects of ``items`` (a list, else nothing) whose ``type`` is ``kind``."""
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("type") == kind:
            yield item


def join_denial(previous: str, denial: str) -> str:
    """A text with the denial notice after it (a blank line between)."""
    return f"{previous}\n\n{denial}" if previous else denial


def fix_schema_alias(fmt: JsonObject) -> JsonObject:
    """Copy of a json_schema format object with ``schema_`` renamed to ``schema`` (for upstream bodies)."""
    if "schema_" not in fmt:
        return fmt
    out = {k: v for k, v in fmt.items() if k != "schema_"}
    out.setdefault("schema", fmt["schema_"])
    return out


def upstream_copy(
    body: Mapping[str, Any], drop: tuple[str, ...], format_at: tuple[str, str], stream: bool | None
) -> JsonObject:
    """Copy of a client body for the provider: the Sequrity-only fields ``drop``ped, the ``schema_`` alias
    fixed in the structured-output object ``body[format_at[0]][format_at[1]]``, ``stream`` set if given."""
    out = {k: v for k, v in body.items() if k not in drop}
    outer_key, inner_key = format_at
    outer = out.get(outer_key)
    if isinstance(outer, dict) and isinstance(outer.get(inner_key), dict) and "schema_" in outer[inner_key]:
        out[outer_key] = {**outer, inner_key: fix_schema_alias(outer[inner_key])}
    if stream is not None:
        out["stream"] = stream
    return out
