"""``compile_policy``: source text -> compiled policy, cached by the SHA-256 of (language, text)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from .compiler import CompiledTool, Compiler
from .errors import PolicyCompileError
from .parser import parse_program

if TYPE_CHECKING:
    from relay.regex import ClientPattern

    from .cedar import CedarPolicy

CACHE_SIZE = 256
MATCH_MEMO_SIZE = 4096
LANGUAGES = ("sqrt", "cedar")


class SqrtPolicy:
    """A compiled SQRT program: its policies in program order, indexed by exact tool id."""

    language = "sqrt"

    def __init__(self, source: str, digest: str, tools: list[CompiledTool], let_names: list[str]) -> None:
        self.source = source
        self.digest = digest
        self.tools = tools
        self.let_names = let_names
        self._exact: dict[str, list[CompiledTool]] = {}
        self._regex: list[tuple[ClientPattern, CompiledTool]] = []
        for t in tools:
            if t.is_regex and t.regex is not None:
                self._regex.append((t.regex, t))
            else:
                self._exact.setdefault(t.tool_id, []).append(t)
        self._memo: dict[str, tuple[CompiledTool, ...]] = {}

    def __repr__(self) -> str:
        return f"<SqrtPolicy {self.digest[:12]} {len(self.tools)} policies>"

    def match(self, tool_name: str) -> tuple[CompiledTool, ...]:
        """The policies applying to ``tool_name`` (exact id, or regex full match), in program order."""
        hit = self._memo.get(tool_name)
        if hit is not None:
            return hit
        found = list(self._exact.get(tool_name, ()))
        if self._regex:
            found.extend(t for rx, t in self._regex if rx.fullmatch(tool_name) is not None)
            found.sort(key=lambda t: t.index)
        hit = tuple(found)
        if len(self._memo) >= MATCH_MEMO_SIZE:
            self._memo.clear()
        self._memo[tool_name] = hit
        return hit


def digest_of(source: str, language: str) -> str:
    h = hashlib.sha256()
    h.update(language.encode())
    h.update(b"\0")
    h.update(source.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _compile_sqrt(source: str, digest: str) -> SqrtPolicy:
    program = parse_program(source)
    comp = Compiler(program)
    try:
        comp.check_let_bodies()
        tools = comp.compile_tools()
    except RecursionError:
        raise PolicyCompileError("the policy is nested too deeply", 1, 1, source.split("\n", 1)[0]) from None
    return SqrtPolicy(source, digest, tools, [let.name for let in program.lets])


_cache: OrderedDict[str, SqrtPolicy | CedarPolicy | PolicyCompileError] = OrderedDict()
_cache_lock = threading.Lock()


def compile_policy(source: str, language: str = "sqrt") -> SqrtPolicy | CedarPolicy:
    """Compile a policy once; later calls with the same (language, text) return the cached object.

    Raises ``PolicyCompileError`` (cached too, re-raised as a fresh exception).
    """
    lang = (language or "sqrt").strip().lower()
    if lang not in LANGUAGES:
        raise PolicyCompileError(
            f"unsupported policy language '{language}' (expected 'sqrt' or 'cedar')", 1, 1, ""
        )
    if not isinstance(source, str):
        raise PolicyCompileError("the policy code must be a string", 1, 1, "")
    digest = digest_of(source, lang)
    with _cache_lock:
        hit = _cache.get(digest)
        if hit is not None:
            _cache.move_to_end(digest)
    if hit is None:
        try:
            if lang == "sqrt":
                hit = _compile_sqrt(source, digest)
            else:
                from .cedar import compile_cedar

                hit = compile_cedar(source, digest)
        except PolicyCompileError as exc:
            hit = exc
        with _cache_lock:
            _cache[digest] = hit
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    if isinstance(hit, PolicyCompileError):
        raise PolicyCompileError(hit.message, hit.line, hit.column, hit.source_line)
    return hit


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
