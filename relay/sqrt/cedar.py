"""Cedar as the second policy language (``X-Policy.codes.language = "cedar"``), through ``cedarpy``.

Mapping of one tool call to a Cedar authorization request:

* principal = ``Agent::"session"``
* action    = ``Action::"<tool name>"``
* resource  = ``Tool::"<tool name>"``
* context   = ``{"tool": <tool name>,
                 "args": {<arg>: <value>},
                 "arg_tags" / "arg_producers" / "arg_consumers": {<arg>: [<strings>]},
                 "session_tags" / "session_producers" / "session_consumers": [<strings>]}``

Values are converted to Cedar: strings, booleans and 64-bit integers as is; floats and out-of-range
integers as their decimal text; lists as sets, objects as records; ``null`` values (and null list items)
are omitted. The universal set is ``["*"]``. No entities are supplied.

Decision: ``Allow`` -> ``hard_allowed``, ``Deny`` -> ``hard_denied`` (Cedar's default deny included). An
evaluation error in any policy (Cedar would skip that policy) makes the call ``hard_denied`` — fail
closed. An empty (or comment-only) Cedar program has no policies and abstains, so the presets decide.
Cedar policies have no metadata updates.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import cedarpy

from relay.meta import Meta, ValueWithMeta, set_to_json

from .errors import PolicyCompileError

_I64 = 2**63


def _cedar_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if -_I64 <= v < _I64 else str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple, set, frozenset)):
        return [c for c in (_cedar_value(x) for x in v) if c is not None]
    if isinstance(v, dict):
        return {str(k): c for k, c in ((k, _cedar_value(x)) for k, x in v.items()) if c is not None}
    return str(v)


def _uid(entity_type: str, name: str) -> str:
    return f"{entity_type}::{json.dumps(name, ensure_ascii=False)}"


class CedarPolicy:
    language = "cedar"

    def __init__(self, source: str, digest: str, policy_set: Any, effects: dict[str, str]) -> None:
        self.source = source
        self.digest = digest
        self.policy_set = policy_set
        self.effects = effects
        self.empty = not effects

    def __repr__(self) -> str:
        return f"<CedarPolicy {self.digest[:12]} {len(self.effects)} policies>"

    def request(self, tool_name: str, args: dict[str, ValueWithMeta], session_meta: Meta) -> dict[str, Any]:
        context: dict[str, Any] = {"tool": tool_name, "args": {}}
        tags: dict[str, list[str]] = {}
        producers: dict[str, list[str]] = {}
        consumers: dict[str, list[str]] = {}
        for name, a in args.items():
            v = _cedar_value(a.value)
            if v is not None:
                context["args"][name] = v
            tags[name] = set_to_json(a.meta.tags)
            producers[name] = set_to_json(a.meta.producers)
            consumers[name] = set_to_json(a.meta.consumers)
        context.update(
            arg_tags=tags,
            arg_producers=producers,
            arg_consumers=consumers,
            session_tags=set_to_json(session_meta.tags),
            session_producers=set_to_json(session_meta.producers),
            session_consumers=set_to_json(session_meta.consumers),
        )
        return {
            "principal": _uid("Agent", "session"),
            "action": _uid("Action", tool_name),
            "resource": _uid("Tool", tool_name),
            "context": context,
        }

    def evaluate(
        self, tool_name: str, args: dict[str, ValueWithMeta], session_meta: Meta
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """-> (verdict or None when the program is empty, record entries)."""
        if self.empty:
            return None, []
        try:
            res = cedarpy.is_authorized(self.request(tool_name, args, session_meta), self.policy_set, [])
        except Exception as exc:  # noqa: BLE001 - fail closed on anything Cedar raises
            return "hard_denied", [_entry("cedar", "evaluation failed", f"Cedar error: {exc}")]
        diag = res.diagnostics
        annotations = diag.id_annotations_by_reason
        entries = [
            _entry(annotations.get(pid) or pid, self.effects.get(pid, "permit"), None) for pid in diag.reasons
        ]
        if diag.errors:
            entries.append(_entry("cedar", "evaluation error (fail closed)", "; ".join(diag.errors)))
            return "hard_denied", entries
        if res.allowed:
            return "hard_allowed", entries
        if not entries:
            entries.append(_entry("cedar", "no permit policy applies (Cedar default deny)", None))
        return "hard_denied", entries


def _entry(policy: str, rule: str, description: str | None) -> dict[str, Any]:
    return {"policy": policy, "rule": rule, "enforcement": "hard", "description": description}


def _parse(text: str) -> Any:
    return cedarpy.PolicySet.from_str(text)


_TOKEN = re.compile(r"`([^`]+)`")


def _locate(source: str, message: str) -> tuple[int, int]:
    """Cedar errors carry no position: find the first line whose prefix fails for a reason other than EOF.

    Such a failure persists in every longer prefix (the error is still there), so the line is found by
    bisection: O(log lines) parses, not one per line (a long text would otherwise cost lines x length)."""
    lines = source.split("\n")

    @functools.cache
    def definite_error(k: int) -> str | None:  # (the bisection's last probe is asked again below)
        try:
            _parse("\n".join(lines[:k]))
        except ValueError as exc:
            return None if "end of input" in str(exc) else str(exc)
        return None

    if definite_error(len(lines)) is not None:
        low, high = 1, len(lines)
        while low < high:
            middle = (low + high) // 2
            if definite_error(middle) is not None:
                high = middle
            else:
                low = middle + 1
        error = definite_error(low) or ""
        line_text = lines[low - 1]
        m = _TOKEN.search(error)
        col = line_text.find(m.group(1)) + 1 if m and m.group(1) in line_text else 1
        return low, max(col, 1)
    last = len(lines)
    while last > 1 and not lines[last - 1].strip():
        last -= 1
    return last, max(len(lines[last - 1].rstrip()) + 1, 1)


def compile_cedar(source: str, digest: str) -> CedarPolicy:
    try:
        ps = _parse(source)
    except ValueError as exc:
        line, col = _locate(source, str(exc))
        lines = source.split("\n")
        src_line = lines[line - 1] if 1 <= line <= len(lines) else ""
        raise PolicyCompileError(f"Cedar: {exc}", line, col, src_line) from None
    effects: dict[str, str] = {}
    try:
        pst = ps.to_pst()
        for pid, pol in pst.static_policies.items():
            effects[pid] = getattr(pol, "effect", "permit")
        for link in getattr(pst, "template_links", ()) or ():
            lid = getattr(link, "new_id", None) or getattr(link, "id", None)
            if lid:
                effects[lid] = "permit"
    except Exception:  # noqa: BLE001 - introspection only
        effects = {f"policy{i}": "permit" for i in range(len(ps))}
    if not effects and len(ps):
        effects = {f"policy{i}": "permit" for i in range(len(ps))}
    return CedarPolicy(source, digest, ps, effects)
