"""Shared helpers for the interpreter tests: a scriptable host and short-hands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.interpreter import RunResult, ToolSpec, run_program
from relay.meta import DEFAULT_META, Meta, ValueWithMeta, make_set


def M(*tags: str, producers: tuple[str, ...] = (), consumers: tuple[str, ...] | None = None) -> Meta:
    return Meta(
        make_set(producers), make_set(consumers) if consumers is not None else make_set(["*"]), make_set(tags)
    )


TOOL_META = M("__non_executable", producers=("tool",))


class FakeHost:
    """Answers every tool call; records calls and branch checks.

    ``answers``: tool name -> callable(kwargs_plain) -> plain value | ValueWithMeta | exception to raise.
    Unknown tools echo their plain arguments. ``meta`` is the result meta of plain answers.
    """

    def __init__(
        self,
        answers: dict[str, Callable[[dict], Any]] | None = None,
        meta: Meta = TOOL_META,
        branch: Callable[[Meta], str | None] | None = None,
    ) -> None:
        self.answers = answers or {}
        self.meta = meta
        self.branch = branch
        self.calls: list[tuple[str, dict[str, ValueWithMeta], int]] = []
        self.branches: list[Meta] = []

    def call_tool(self, name: str, kwargs: dict[str, ValueWithMeta], call_index: int) -> ValueWithMeta:
        self.calls.append((name, kwargs, call_index))
        plain = {k: v.value for k, v in kwargs.items()}
        fn = self.answers.get(name)
        r = fn(plain) if fn is not None else {"tool": name, "args": plain}
        if isinstance(r, BaseException):
            raise r
        return r if isinstance(r, ValueWithMeta) else ValueWithMeta(r, self.meta)

    def check_branch(self, meta: Meta) -> str | None:
        self.branches.append(meta)
        return self.branch(meta) if self.branch else None


TOOLS = {
    "search": ToolSpec("search", ["query", "limit"], ["query"]),
    "get_doc": ToolSpec("get_doc", ["doc_id"], ["doc_id"]),
    "send_email": ToolSpec("send_email", ["to", "subject", "body"], ["to"]),
    "parse_with_ai": ToolSpec("parse_with_ai", ["query", "output_schema"], ["query"]),
    "noargs": ToolSpec("noargs", []),
}


def run(src: str, host: Any = None, tools: dict | None = None, **kw: Any) -> RunResult:
    return run_program(src, tools=TOOLS if tools is None else tools, host=host or FakeHost(), **kw)


def ok(src: str, **kw: Any) -> RunResult:
    r = run(src, **kw)
    assert r.status == "success", (r.status, r.error)
    return r


def final(src: str, **kw: Any) -> Any:
    return ok(src, **kw).final_return_value.value


def meta_of(r: RunResult, name: str) -> Meta:
    return r.namespace[name].meta


__all__ = ["DEFAULT_META", "FakeHost", "M", "TOOLS", "TOOL_META", "final", "meta_of", "ok", "run"]
