"""The SQRT abstract syntax tree produced by ``relay.sqrt.parser``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Expression kinds (syntactic classes of §3, before let references are resolved):
PRED = "pred"  # comparison, and/or/not, parenthesised predicate
SET = "set"  # set literal, set algebra, parenthesised set
ACC = "acc"  # a metadata accessor (may be the left operand of overlaps/subset/superset/==/is)
VALUE = "value"  # x.value, @result.value, @session.value, string/number/datetime literal
BOOL = "bool"  # true/false: a value operand, or the boolean constant in predicate position
REF = "ref"  # a bare name: a let reference (kind known after resolution)
DOMAIN = "domain"  # a type domain (only as a let body or a set element)


class Node:
    """An expression node: ``t`` is the node type, ``a`` its payload (tuple), ``kind`` one of the kinds above."""

    __slots__ = ("t", "a", "kind", "line", "col", "start", "end")

    def __init__(
        self, t: str, a: tuple[Any, ...], kind: str, line: int, col: int, start: int, end: int
    ) -> None:
        self.t = t
        self.a = a
        self.kind = kind
        self.line = line
        self.col = col
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        return f"{self.t}{self.a!r}"


@dataclass
class Element:
    """A set-literal element: ``str`` (plain string), ``regex``, ``wild``, ``num`` or ``domain``."""

    kind: str
    value: Any  # str / compiled regex / number / Domain
    text: str
    line: int
    col: int
    end: int = 0


@dataclass
class Domain:
    """A type domain (§6.5); ``matcher`` decides membership of a value."""

    kind: str  # bool / int / float / str / datetime
    text: str
    matcher: Any
    line: int = 0
    col: int = 0
    pattern: Any = None  # str matching/like without length: the compiled regex
    exact: str | None = None  # str "s" without length


@dataclass
class Update:
    target: str  # "result" / "session" / "arg" / "ctx"
    field: str  # tags / producers / consumers
    arg: str | None
    op: str  # = |= &= -= ^=
    expr: Node
    line: int
    col: int
    text: str = ""


@dataclass
class Stmt:
    description: str | None
    cond: Node | None
    updates: list[Update]
    line: int
    col: int


@dataclass
class Rule:
    level: str  # hard / soft
    verdict: str  # allow / deny
    cond: Node | None  # None = always
    text: str
    description: str | None
    line: int
    col: int
    start: int = 0
    end: int = 0


@dataclass
class Block:
    kind: str  # result / session_before / session_after
    stmts: list[Stmt]
    description: str | None = None


@dataclass
class ToolPolicy:
    tool_id: str
    is_regex: bool
    regex: Any
    display: str
    description: str | None
    priority: int = 0
    rules: list[Rule] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    shorthand: bool = False
    line: int = 0
    col: int = 0


@dataclass
class LetDecl:
    name: str
    body: Node | Domain
    description: str | None
    line: int
    col: int


@dataclass
class Program:
    lets: list[LetDecl]
    tools: list[ToolPolicy]
    source: str = ""
