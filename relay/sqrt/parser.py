"""SQRT source -> ``relay.sqrt.ast.Program``; every failure is a ``PolicyCompileError`` with line and column.

Parsing is LALR(1) with a contextual lexer (``_FastLexer``) and an inline transformer (no intermediate tree);
operator precedence is resolved by precedence climbing in the transformer (``_climb``). When LALR
rejects a program, an Earley parse with the dynamic lexer over the same grammar is tried (bounded input
size), so that spellings the reference validator accepts because of its scannerless lexing are accepted
too; if that also fails, the LALR error is reported. The operand restrictions of the syntax are checked while the
AST is built and reported as syntax errors.

One module, over 700 lines, because the transformer (one callback per grammar rule), the contextual lexer and
the error reporting share the parser's private token and node helpers and its parser instances.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.common import LexerConf
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import Lexer, LexerState

from relay.meta import make_set
from relay.regex import ClientPattern, ClientPatternError, compile_client_pattern

from . import ast as A
from .errors import PolicyCompileError
from .grammar import GRAMMAR
from .values import (
    DateTimeValue,
    MatcherSet,
    Range,
    bool_domain,
    datetime_domain,
    float_domain,
    int_domain,
    literal_body,
    make_range,
    number_matcher,
    parse_iso,
    str_domain,
    wildcard_regex,
)

EARLEY_FALLBACK_MAX_CHARS = 4000  # Earley costs ~60 µs per character; errors are cached
# Chains of `not` and nested parentheses make the Earley parse superlinear (4,000 characters of `not not ...`
# took 13 s, on the request's event loop: X-Policy is compiled there). With at most this many of them the
# fallback stays under ~0.2 s; a text with more gets the LALR parser's error.
EARLEY_FALLBACK_MAX_NESTING = 64
_NESTING_TOKEN = re.compile(r"\(|\bnot\b")


def _nesting_tokens(source: str) -> int:
    return sum(1 for _ in _NESTING_TOKEN.finditer(source))


# What the transformer passes between its callbacks (tuples, so no allocation of a class per token):
_ToolId = tuple[bool, str, str, "ClientPattern | None", Token]  # is_regex, pattern, display, regex, token
_Target = tuple[str, Token, "str | None", Token]  # target, field token, argument name, first token
_StrSpec = tuple[str, Any, str, Token]  # "exact"/"regex", the string or compiled pattern, its text, token
_RangeSpec = tuple[str, "str | None", Any, Any, Token]  # form, operator, low bound, high bound, first token
_ClimbItem = Any  # an operand node, a _NotPrefix, or a (name, text, token) operator


class _Fail(Exception):
    """A syntax/semantic error found while building the AST."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


_KIND_NAMES = {
    A.PRED: "a condition",
    A.SET: "a set expression",
    A.ACC: "a metadata accessor",
    A.VALUE: "a value",
    A.BOOL: "a boolean",
    A.REF: "a name",
    A.DOMAIN: "a type domain",
}


def _where(tok: Token) -> tuple[int, int]:
    """Line and column of a token (typed optional by lark; both lexers always set them)."""
    return cast(int, tok.line), cast(int, tok.column)


def _pos(x: Any) -> tuple[int, int, int, int]:
    if isinstance(x, Token):
        return cast("tuple[int, int, int, int]", (x.line, x.column, x.start_pos, x.end_pos))
    if isinstance(x, A.Node):
        return x.line, x.col, x.start, x.end
    if isinstance(x, tuple) and x and isinstance(x[-1], Token):  # (number, token)
        return _pos(x[-1])
    raise TypeError(x)


def _node(t: str, a: tuple[Any, ...], kind: str, first: Any, last: Any = None) -> A.Node:
    line, col, start, end = _pos(first)
    if last is not None:
        end = _pos(last)[3]
    return A.Node(t, a, kind, line, col, start, end)


def _is_bare_inf(n: A.Node) -> bool:
    """``inf`` written without a sign (three characters), as opposed to ``+inf``/``-inf`` or a literal."""
    return n.t == "lit" and n.a[:1] == (float("inf"),) and n.end - n.start == 3


def _as_pred(n: A.Node, where: str) -> A.Node:
    if n.kind in (A.PRED, A.REF, A.BOOL):
        return n
    raise _Fail(
        f"{where} must be a condition (a comparison, a let name, `not`/`and`/`or`), not {_KIND_NAMES[n.kind]}",
        n.line,
        n.col,
    )


def _as_set(n: A.Node, where: str) -> A.Node:
    if n.kind in (A.SET, A.ACC, A.REF):
        return n
    if n.kind == A.BOOL:  # the reference parses a bare true/false in set position as a let reference
        return A.Node("ref", (n.a[1],), A.REF, n.line, n.col, n.start, n.end)
    raise _Fail(f"{where} must be a set expression, not {_KIND_NAMES[n.kind]}", n.line, n.col)


def _as_value(n: A.Node, where: str) -> A.Node:
    if n.kind in (A.VALUE, A.BOOL):
        return n
    raise _Fail(
        f"{where} must be a value (`x.value`, `@result.value`, `@session.value` or a literal), "
        f"not {_KIND_NAMES[n.kind]}",
        n.line,
        n.col,
    )


def _as_acc(n: A.Node, where: str) -> A.Node:
    if n.kind == A.ACC:
        return n
    raise _Fail(
        f"{where} must be a metadata accessor (`x.tags`, `@result.tags`, `@session.tags`, `@tags`, "
        f"`@args.tags` or an aggregation), not {_KIND_NAMES[n.kind]}",
        n.line,
        n.col,
    )


def _compile_regex(text: str, tok: Token) -> ClientPattern:
    """``r"…"`` through ``relay.regex`` (RE2, linear time); a refused pattern is a compile error at the
    offending construct (or at the literal)."""
    try:
        return compile_client_pattern(text)
    except ClientPatternError as exc:
        kind = "unsupported" if exc.unsupported else "invalid"
        line, col = _pattern_position(tok, exc.position)
        raise _Fail(f'{kind} regular expression r"{text}": {exc.message}', line, col) from None


def _pattern_position(tok: Token, position: int | None) -> tuple[int, int]:
    """Line and column of the ``position``-th character of the decoded body of the literal ``tok``."""
    raw = str(tok)
    if position is None or tok.line is None or tok.column is None:
        return _where(tok)
    j = 2  # after r"
    for _ in range(position):
        if j >= len(raw) - 1:
            break
        j += 2 if raw[j] == "\\" and raw[j + 1 : j + 2] in ('"', "\\") else 1
    if "\n" in raw[:j]:
        return tok.line, tok.column
    return tok.line, tok.column + j


def _doc_text(tokens: list[Token]) -> str | None:
    if not tokens:
        return None
    lines = []
    for tok in tokens:
        body = str(tok)[3:]
        if body.startswith(" "):
            body = body[1:]
        lines.append(body.rstrip("\r"))
    return "\n".join(lines)


class _NotPrefix:
    """``not`` before a term; its scope is decided by precedence climbing (``not a in S`` = ``not (a in S)``)."""

    __slots__ = ("tok", "term")

    def __init__(self, tok: Token, term: Any) -> None:
        self.tok = tok
        self.term = term


_OP_NAMES = {
    "or": "or",
    "and": "and",
    "in": "in",
    "==": "==",
    "overlaps": "overlaps",
    "subset": "subset",
    "superset": "superset",
    "^": "xor",
    "xor": "xor",
    "-": "minus",
    "minus": "minus",
    "&": "intersect",
    "intersect": "intersect",
    "|": "union",
    "union": "union",
}
# Binding power, loosest first: or < and < [not] < comparisons < ^ < - < & < |.
_BP = {
    "or": 1,
    "and": 2,
    "in": 4,
    "==": 4,
    "overlaps": 4,
    "subset": 4,
    "superset": 4,
    "xor": 5,
    "minus": 6,
    "intersect": 7,
    "union": 8,
}
_CMP_BP = 4
_NOT_OPERAND_BP = 4


def _climb(items: list[_ClimbItem], i: int, min_bp: int) -> tuple[A.Node, int]:
    """Precedence climbing over [operand | _NotPrefix | (op, text, token)]; returns (node, next index)."""
    item = items[i]
    if isinstance(item, _NotPrefix):
        inner, i = _climb(items, i + 1, _NOT_OPERAND_BP)
        inner = _as_pred(inner, "the operand of `not`")
        left = _node("not", (inner,), A.PRED, item.tok, inner)
    else:
        left = item
        i += 1
    n = len(items)
    while i < n:
        name, text, tok = items[i]
        bp = _BP[name]
        if bp < min_bp:
            break
        if bp == _CMP_BP:
            right, i = _climb(items, i + 1, _CMP_BP + 1)
            left = _comparison(name, text, left, right)
            if i < n and _BP[items[i][0]] == _CMP_BP:
                nxt = items[i][2]
                raise _Fail(
                    f"unexpected '{items[i][1]}': comparisons cannot be chained (combine them with `and`/`or`)",
                    nxt.line,
                    nxt.column,
                )
            continue
        right, i = _climb(items, i + 1, bp + 1)
        if name in ("or", "and"):
            left = _as_pred(left, f"the left operand of `{name}`")
            right = _as_pred(right, f"the right operand of `{name}`")
            left = _node(name, (left, right), A.PRED, left, right)
        else:
            left = _as_set(left, f"the left operand of `{text}`")
            right = _as_set(right, f"the right operand of `{text}`")
            left = _node("setop", (name, left, right), A.SET, left, right)
    return left, i


def _comparison(name: str, text: str, left: A.Node, right: A.Node) -> A.Node:
    if name == "in":
        left = _as_value(left, "the left operand of `in`")
        right = _as_set(right, "the right operand of `in`")
        return _node("in", (left, right), A.PRED, left, right)
    if name == "==":
        if left.kind == A.ACC:
            right = _as_set(right, "the right operand of `==` after a metadata accessor")
            return _node("seteq", (left, right), A.PRED, left, right)
        if left.kind in (A.VALUE, A.BOOL):
            right = _as_value(right, "the right operand of `==` after a value")
            return _node("veq", (left, right), A.PRED, left, right)
        raise _Fail(
            "the left operand of `==` must be a value (`x.value`, a literal) or a metadata accessor "
            f"(`x.tags`, `@tags`...), not {_KIND_NAMES[left.kind]}",
            left.line,
            left.col,
        )
    left = _as_acc(left, f"the left operand of `{text}`")
    right = _as_set(right, f"the right operand of `{text}`")
    return _node(name, (left, right), A.PRED, left, right)


class _Builder(Transformer[Token, A.Program]):
    """Builds the AST. Used inline by the LALR parser and as a tree transformer after an Earley parse."""

    # ---------------------------------------------------------- program
    def start(self, children: list[Any]) -> A.Program:
        lets: list[A.LetDecl] = []
        tools: list[A.ToolPolicy] = []
        for d in children:
            if isinstance(d, A.LetDecl):
                lets.append(d)
            else:
                tools.append(d)
        return A.Program(lets, tools)

    def declaration(self, children: list[Any]) -> Any:
        docs, decl = children
        decl.description = docs
        return decl

    def docs(self, children: list[Any]) -> str | None:
        return _doc_text(children)

    def let_decl(self, children: list[Any]) -> A.LetDecl:
        name, body = children
        if isinstance(body, A.Node) and body.kind == A.VALUE and _is_bare_inf(body):
            # The reference's scannerless lexer reads a lone `inf` here as a name (a let reference), not the
            # number: accept it the same way (the compiler then asks for a `let inf`).
            body = A.Node("ref", ("inf",), A.REF, body.line, body.col, body.start, body.end)
        if isinstance(body, A.Node) and body.kind == A.VALUE:
            raise _Fail(
                "a `let` must bind a condition, a set expression or a type domain, not a plain value",
                body.line,
                body.col,
            )
        return A.LetDecl(str(name), body, None, name.line, name.column)

    # ---------------------------------------------------------- tool blocks
    def tool_id(self, children: list[Any]) -> _ToolId:
        tok = children[0]
        if tok.type == "REGEX":
            pattern = literal_body(str(tok))
            rx = _compile_regex(pattern, tok)
            return (True, pattern, f'r"{pattern}"', rx, tok)
        text = literal_body(str(tok))
        return (False, text, text, None, tok)

    def _policy(self, tid: _ToolId) -> A.ToolPolicy:
        is_regex, pattern, display, rx, tok = tid
        line, col = _where(tok)
        return A.ToolPolicy(pattern, is_regex, rx, display, None, line=line, col=col)

    def tool_block(self, children: list[Any]) -> A.ToolPolicy:
        pol = self._policy(children[0])
        for m in children[1:]:
            if isinstance(m, A.Rule):
                pol.rules.append(m)
            elif isinstance(m, A.Block):
                pol.blocks.append(m)
            else:  # priority
                pol.priority = m
        return pol

    def member(self, children: list[Any]) -> Any:
        docs, item = children
        if isinstance(item, (A.Rule, A.Block)):
            item.description = docs
        return item

    def priority(self, children: list[Any]) -> int:
        return int(children[0])

    def level(self, children: list[Any]) -> Any:
        return children[0]

    def verdict(self, children: list[Any]) -> Any:
        return children[0]

    def condition(self, children: list[Any]) -> tuple[A.Node | None, Any]:
        c = children[0]
        if isinstance(c, Token):  # always
            return (None, c)
        return (_as_pred(c, "the condition after `when`"), c)

    def check_rule(self, children: list[Any]) -> A.Rule:
        level, verdict, (cond, last) = children
        lvl = "hard" if str(level) in ("must", "hard") else "soft"
        return A.Rule(
            lvl,
            str(verdict),
            cond,
            "",
            None,
            level.line,
            level.column,
            start=level.start_pos,
            end=_pos(last)[3],
        )

    def timing(self, children: list[Any]) -> str:
        return str(children[0])

    def result_block(self, children: list[Any]) -> A.Block:
        return A.Block("result", list(children))

    def session_block(self, children: list[Any]) -> A.Block:
        return A.Block("session_" + children[0], list(children[1:]))

    def stmt(self, children: list[Any]) -> A.Stmt:
        docs = children[0]
        if isinstance(children[1], A.Update):
            u = children[1]
            return A.Stmt(docs, None, [u], u.line, u.col)
        cond = _as_pred(children[1], "the condition after `when`")
        return A.Stmt(docs, cond, list(children[2:]), cond.line, cond.col)

    def inner(self, children: list[Any]) -> Any:
        return children[0]

    def update(self, children: list[Any]) -> A.Update:
        (target, field, arg, tok), op, expr = children
        expr = _as_set(expr, f"the right-hand side of `{op}`")
        return A.Update(target, str(field), arg, str(op), expr, tok.line, tok.column)

    def t_ctx(self, children: list[Any]) -> _Target:
        return ("ctx", children[0], None, children[0])

    def t_result(self, children: list[Any]) -> _Target:
        return ("result", children[0], None, children[0])

    def t_session(self, children: list[Any]) -> _Target:
        return ("session", children[0], None, children[0])

    def t_arg(self, children: list[Any]) -> _Target:
        return ("arg", children[1], str(children[0]), children[0])

    def assign(self, children: list[Any]) -> Any:
        return children[0]

    def meta(self, children: list[Any]) -> Any:
        return children[0]

    # ---------------------------------------------------------- shorthand
    def sh_priority(self, children: list[Any]) -> tuple[str, int]:
        return ("prio", int(children[0]))

    def sh_target(self, children: list[Any]) -> tuple[str, str]:
        words = [str(c) for c in children]
        if words == ["result"]:
            return ("target", "result")
        if words == ["session", "before"]:
            return ("target", "session_before")
        return ("target", "session_after")

    def sh_when(self, children: list[Any]) -> tuple[str, A.Node]:
        return ("when", _as_pred(children[0], "the condition after `when`"))

    def tool_shorthand(self, children: list[Any]) -> A.ToolPolicy:
        pol = self._policy(children[0])
        pol.shorthand = True
        kind = "result"
        cond = None
        rest = []
        for c in children[1:]:
            if isinstance(c, tuple) and c and c[0] == "prio":
                pol.priority = c[1]
            elif isinstance(c, tuple) and c and c[0] == "target":
                kind = c[1]
            elif isinstance(c, tuple) and c and c[0] == "when":
                cond = c[1]
            else:
                rest.append(c)
        field, op, expr = rest
        expr = _as_set(expr, f"the right-hand side of `{op}`")
        upd = A.Update("ctx", str(field), None, str(op), expr, field.line, field.column)
        pol.blocks.append(A.Block(kind, [A.Stmt(None, cond, [upd], field.line, field.column)]))
        return pol

    # ---------------------------------------------------------- expressions (precedence climbing)
    def prefix_not(self, c: list[Any]) -> _NotPrefix:
        return _NotPrefix(c[0], c[1])

    def binop(self, c: list[Any]) -> tuple[str, str, Token]:
        word = str(c[0])
        return (_OP_NAMES[word], " ".join(str(t) for t in c), c[0])

    def expr(self, c: list[Any]) -> A.Node:
        items: list[_ClimbItem] = []
        for k, x in enumerate(c):
            if k % 2:
                items.append(x)  # (name, text, token)
                continue
            while isinstance(x, _NotPrefix):
                items.append(x)
                x = x.term
            items.append(x)
        node, i = _climb(items, 0, 0)
        if i != len(items):  # pragma: no cover - _climb consumes everything or raises
            raise _Fail("unexpected operator", *_pos(items[i][2])[:2])
        return node

    # ---------------------------------------------------------- postfix operators
    def c_empty(self, c: list[Any]) -> A.Node:
        left = _as_acc(c[0], "the operand of `is empty`")
        return _node("isempty", (left,), A.PRED, left)

    def c_universal(self, c: list[Any]) -> A.Node:
        left = _as_acc(c[0], "the operand of `is universal`")
        return _node("isuniversal", (left,), A.PRED, left)

    def s_with(self, c: list[Any]) -> A.Node:
        base = _as_set(c[0], "the operand of `with`")
        return A.Node("with", (base, c[1]), A.SET, base.line, base.col, base.start, c[1].end)

    def s_without(self, c: list[Any]) -> A.Node:
        base = _as_set(c[0], "the operand of `without`")
        return A.Node("without", (base, c[1]), A.SET, base.line, base.col, base.start, c[1].end)

    # ---------------------------------------------------------- atoms
    def ref(self, c: list[Any]) -> A.Node:
        return _node("ref", (str(c[0]),), A.REF, c[0])

    def paren(self, c: list[Any]) -> A.Node:
        lpar, rpar = c[0], c[2]
        inner: A.Node = c[1]
        if inner.kind in (A.PRED, A.SET, A.REF):
            inner.end = rpar.end_pos
            return inner
        if inner.kind == A.ACC:
            return _node("paren", (inner,), A.SET, lpar, rpar)
        if inner.kind == A.BOOL:
            return _node("ref", (inner.a[1],), A.REF, lpar, rpar)
        raise _Fail(
            "a value cannot be put in parentheses; only conditions and set expressions can",
            inner.line,
            inner.col,
        )

    def arg_value(self, c: list[Any]) -> A.Node:
        return _node("argval", (str(c[0]),), A.VALUE, c[0], c[1])

    def result_value(self, c: list[Any]) -> A.Node:
        return _node("resval", (), A.VALUE, c[0])

    def session_value(self, c: list[Any]) -> A.Node:
        return _node("sesval", (), A.VALUE, c[0])

    def arg_meta(self, c: list[Any]) -> A.Node:
        return _node("argmeta", (str(c[0]), str(c[1])), A.ACC, c[0], c[1])

    def result_meta(self, c: list[Any]) -> A.Node:
        return _node("resmeta", (str(c[0]),), A.ACC, c[0])

    def session_meta(self, c: list[Any]) -> A.Node:
        return _node("sesmeta", (str(c[0]),), A.ACC, c[0])

    def ctx_meta(self, c: list[Any]) -> A.Node:
        return _node("ctxmeta", (str(c[0]),), A.ACC, c[0])

    def args_meta(self, c: list[Any]) -> A.Node:
        op = str(c[1]) if len(c) > 1 else "union"
        return _node("agg", (str(c[0]), op), A.ACC, c[0])

    def agg_suffix(self, c: list[Any]) -> Any:
        return c[0]

    def agg_op(self, c: list[Any]) -> Any:
        return c[0]

    def aggregation(self, c: list[Any]) -> A.Node:
        return _node("agg", (str(c[1]), str(c[0])), A.ACC, c[0], c[1])

    def lit_str(self, c: list[Any]) -> A.Node:
        return _node("lit", (literal_body(str(c[0])),), A.VALUE, c[0])

    def lit_dt(self, c: list[Any]) -> A.Node:
        tok = c[0]
        text = literal_body(str(tok))
        instant = parse_iso(text)
        if instant is None:
            raise _Fail(f'invalid datetime literal d"{text}" (expected ISO 8601)', tok.line, tok.column)
        return _node("lit", (DateTimeValue(text, instant),), A.VALUE, tok)

    def lit_num(self, c: list[Any]) -> A.Node:
        value, tok = c[0]
        return _node("lit", (value,), A.VALUE, tok)

    def lit_bool(self, c: list[Any]) -> A.Node:
        value, tok = c[0]
        return _node("bool", (value, str(tok)), A.BOOL, tok)

    def boolean(self, c: list[Any]) -> tuple[bool, Token]:
        return (str(c[0]) == "true", c[0])

    def number(self, c: list[Any]) -> tuple[float | int, Token]:
        tok = c[0]
        text = str(tok)
        if text in ("inf", "+inf"):
            return (float("inf"), tok)
        if text == "-inf":
            return (float("-inf"), tok)
        if tok.type == "FLOAT":
            return (float(text), tok)
        return (int(text), tok)

    # ---------------------------------------------------------- set literals and elements
    def set_literal(self, c: list[Any]) -> A.Node:
        lbrace, rbrace = c[0], c[-1]
        elements = []
        for e in c[1:-1]:
            if isinstance(e, A.Domain):
                e = A.Element("domain", e, e.text, e.line, e.col)
            if e is not None:
                elements.append(e)
        text = "{" + ", ".join(e.text for e in elements) + "}"
        if all(e.kind == "str" for e in elements):
            static: Any = make_set(e.value for e in elements)
        else:
            static = matcher_set(elements, text)
        return _node("setlit", (static, tuple(elements)), A.SET, lbrace, rbrace)

    def el_str(self, c: list[Any]) -> A.Element:
        tok = c[0]
        return A.Element("str", literal_body(str(tok)), str(tok), tok.line, tok.column, tok.end_pos)

    def el_regex(self, c: list[Any]) -> A.Element:
        tok = c[0]
        return A.Element(
            "regex", _compile_regex(literal_body(str(tok)), tok), str(tok), tok.line, tok.column, tok.end_pos
        )

    def el_wild(self, c: list[Any]) -> A.Element:
        tok = c[0]
        return A.Element(
            "wild", wildcard_regex(literal_body(str(tok))), str(tok), tok.line, tok.column, tok.end_pos
        )

    def el_num(self, c: list[Any]) -> A.Element:
        value, tok = c[0]
        return A.Element("num", value, str(tok), tok.line, tok.column, tok.end_pos)

    # ---------------------------------------------------------- domains
    def d_bool(self, c: list[Any]) -> A.Domain:
        value, tok = c[0]
        return A.Domain("bool", f"bool {tok}", bool_domain(value), tok.line, tok.column)

    def _num_range(self, spec: _RangeSpec, kind: str) -> tuple[Range, Token]:
        form, op, a, b, tok = spec
        for bound in (a, b):
            if bound is not None and not isinstance(bound, tuple):
                raise _Fail(f"the bounds of `{kind}` must be numbers", bound.line, bound.column)
        rng = make_range(form, op, a and a[0], b and b[0])
        return rng, tok

    def d_int(self, c: list[Any]) -> A.Domain:
        rng, tok = self._num_range(c[0], "int")
        return A.Domain("int", f"int {rng.describe()}", int_domain(rng), *_where(tok))

    def d_float(self, c: list[Any]) -> A.Domain:
        rng, tok = self._num_range(c[0], "float")
        return A.Domain("float", f"float {rng.describe()}", float_domain(rng), *_where(tok))

    def d_str(self, c: list[Any]) -> A.Domain:
        kind, arg, text, tok = c[0]
        dom = A.Domain("str", f"str {text}", str_domain(kind, arg, None), tok.line, tok.column)
        if kind == "exact":
            dom.exact = arg
        else:
            dom.pattern = arg
        return dom

    def d_str_len(self, c: list[Any]) -> A.Domain:
        kind, arg, text, tok = c[0]
        rng, _ = self._num_range(c[1], "length")
        return A.Domain(
            "str", f"str {text} length {rng.describe()}", str_domain(kind, arg, rng), tok.line, tok.column
        )

    def sp_exact(self, c: list[Any]) -> _StrSpec:
        return ("exact", literal_body(str(c[0])), str(c[0]), c[0])

    def sp_regex(self, c: list[Any]) -> _StrSpec:
        return ("regex", _compile_regex(literal_body(str(c[0])), c[0]), f"matching {c[0]}", c[0])

    def sp_wild(self, c: list[Any]) -> _StrSpec:
        return ("regex", wildcard_regex(literal_body(str(c[0]))), f"like {c[0]}", c[0])

    def d_dt(self, c: list[Any]) -> A.Domain:
        form, op, a, b, tok = c[0]

        def instant(bound: Any) -> float | None:
            if bound is None:
                return None
            if isinstance(bound, tuple):
                return float(bound[0])
            text = literal_body(str(bound))
            t = parse_iso(text)
            if t is None:
                raise _Fail(f'invalid datetime "{text}" (expected ISO 8601)', bound.line, bound.column)
            return t

        rng = make_range(form, op, instant(a), instant(b))
        return A.Domain("datetime", "datetime", datetime_domain(rng), tok.line, tok.column)

    @staticmethod
    def _first_tok(x: Any) -> Any:
        return x[1] if isinstance(x, tuple) else x

    def r_both(self, c: list[Any]) -> _RangeSpec:
        return ("both", str(c[1]), c[0], c[2], self._first_tok(c[0]))

    def r_to(self, c: list[Any]) -> _RangeSpec:
        return ("to", str(c[0]), None, c[1], c[0])

    def r_from(self, c: list[Any]) -> _RangeSpec:
        return ("from", str(c[1]), c[0], None, self._first_tok(c[0]))

    def r_exact(self, c: list[Any]) -> _RangeSpec:
        return ("exact", None, c[0], c[0], self._first_tok(c[0]))

    def range_op(self, c: list[Any]) -> Any:
        return c[0]

    lopen_op = ropen_op = range_op


def matcher_set(elements: list[Any], text: str) -> MatcherSet:
    """A ``MatcherSet`` from set-literal elements (or bare domains)."""
    strings: list[str] = []
    patterns: list[ClientPattern] = []
    matchers: list[Callable[[Any], bool]] = []
    for e in elements:
        value = e.value if isinstance(e, A.Element) else e
        kind = e.kind if isinstance(e, A.Element) else "domain"
        if kind == "str":
            strings.append(value)
        elif kind in ("regex", "wild"):
            patterns.append(value)
        elif kind == "num":
            matchers.append(number_matcher(value))
        elif value.exact is not None:
            strings.append(value.exact)
        elif value.pattern is not None:
            patterns.append(value.pattern)
        else:
            matchers.append(value.matcher)
    return MatcherSet(
        frozenset(strings),
        tuple(matchers),
        "*" in strings
        and any(isinstance(e, A.Element) and e.kind == "str" and e.value == "*" for e in elements),
        text,
        tuple(patterns),
    )


# ---------------------------------------------------------------- fast contextual lexer

_MASTER = re.compile(
    r"""(?P<WS>[ \t\r\n]+)"""
    r"""|(?P<DOC>///[^\n]*)"""
    r"""|(?P<LC>//[^\n]*)"""
    r"""|(?P<BC>/\*(?:.|\n)*?\*/)"""
    r"""|(?P<PSTR>[rwd]"(?:[^"\\]|\\.)*")"""
    r"""|(?P<STR>"(?:[^"\\]|\\.)*")"""
    r"""|(?P<NUM>-?[0-9]+(?:\.[0-9]+)?)"""
    r"""|(?P<SINF>[-+]inf)"""
    r"""|(?P<WORD>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<AT>@(?:result|session|args)?)"""
    r"""|(?P<PUNCT><\.\.<|<\.\.|\.\.<|\.\.|\.value|[|&^-]=|==|->|[{}()\[\];,.=|&^-])""",
)
_SKIP = frozenset(("WS", "LC", "BC"))
_PREFIXED = {"r": "REGEX", "w": "WILDCARD", "d": "DATETIME"}


class _FastLexer(Lexer):
    """A contextual lexer equivalent to lark's for this grammar, with one master regex.

    Keywords become keyword tokens only where the parser state accepts them (otherwise identifiers), ``-5``
    is a number only where a number is accepted, and ``.value`` is one token only where it is accepted.
    """

    __future_interface__ = 2

    def __init__(self, lexer_conf: LexerConf) -> None:
        self.strings = {t.pattern.value: t.name for t in lexer_conf.terminals if t.pattern.type == "str"}

    def lex(  # noqa: C901 - one branch per token kind of the master regex, in one loop for speed
        self, lexer_state: LexerState, parser_state: Any
    ) -> Iterator[Token]:
        text_slice = lexer_state.text
        text = text_slice.text
        pos = text_slice.start
        end = text_slice.end
        states = parser_state.parse_conf.parse_table.states
        stack = parser_state.state_stack
        strings = self.strings
        match = _MASTER.match
        line, line_start = 1, 0
        while pos < end:
            m = match(text, pos)
            if m is None:
                raise UnexpectedCharacters(  # type: ignore[no-untyped-call]  # lark leaves it unannotated
                    text, pos, line, pos - line_start + 1, allowed=set(states[stack[-1]]), state=parser_state
                )
            kind = m.lastgroup
            value = m.group()
            mend = m.end()
            if kind in _SKIP:
                nl = value.count("\n")
                if nl:
                    line += nl
                    line_start = pos + value.rindex("\n") + 1
                pos = mend
                continue
            acc = states[stack[-1]]
            if kind == "WORD":
                ttype = strings.get(value)
                if ttype is None or (ttype not in acc and "IDENT" in acc):
                    ttype = "IDENT"
            elif kind == "PUNCT":
                if value == ".value" and "VALUE_DOT" not in acc:
                    value, mend = ".", pos + 1
                ttype = strings[value]
            elif kind == "NUM":
                if value[0] == "-" and "INT" not in acc and "FLOAT" not in acc and "MINUS" in acc:
                    value, mend, ttype = "-", pos + 1, "MINUS"
                else:
                    ttype = "FLOAT" if "." in value else "INT"
            elif kind == "SINF":
                ttype = strings[value]
                if ttype not in acc and value[0] == "-" and "MINUS" in acc:
                    value, mend, ttype = "-", pos + 1, "MINUS"
            elif kind == "STR":
                ttype = "STRING"
            elif kind == "PSTR":
                ttype = _PREFIXED[value[0]]
            elif kind == "AT":
                ttype = strings[value]
            else:  # DOC
                ttype = "DOC_COMMENT"
            col = pos - line_start + 1
            nl = value.count("\n") if kind in ("STR", "PSTR") else 0
            if nl:
                end_line = line + nl
                end_col = mend - (pos + value.rindex("\n") + 1) + 1
            else:
                end_line, end_col = line, col + (mend - pos)
            yield Token(ttype, value, pos, line, col, end_line, end_col, mend)
            if nl:
                line = end_line
                line_start = pos + value.rindex("\n") + 1
            pos = mend


# ---------------------------------------------------------------- parsers

_lock = threading.Lock()
_parsers: dict[str, Lark] = {}
_displays: dict[str, dict[str, str]] = {}  # the parser's terminal names as shown in errors


def _lalr() -> Lark:
    p = _parsers.get("lalr")
    if p is None:
        with _lock:
            p = _parsers.get("lalr")
            if p is None:
                p = Lark(
                    GRAMMAR, parser="lalr", lexer=_FastLexer, transformer=_Builder(), maybe_placeholders=False
                )
                _parsers["lalr"] = p
    return p


def _earley() -> Lark:
    p = _parsers.get("earley")
    if p is None:
        with _lock:
            p = _parsers.get("earley")
            if p is None:
                p = Lark(
                    GRAMMAR, parser="earley", lexer="dynamic", maybe_placeholders=False, ambiguity="resolve"
                )
                _parsers["earley"] = p
    return p


_TERMINAL_NAMES = {
    "IDENT": "a name",
    "STRING": 'a string "…"',
    "REGEX": 'a regex r"…"',
    "WILDCARD": 'a wildcard w"…"',
    "DATETIME": 'a datetime d"…"',
    "INT": "an integer",
    "FLOAT": "a decimal number",
    "DOC_COMMENT": "a doc comment `///`",
    "$END": "end of input",
}


def _terminal_display() -> dict[str, str]:
    cached = _displays.get("lalr")
    if cached is None:
        cached = {}
        for t in _lalr().terminals:
            if t.name in _TERMINAL_NAMES:
                cached[t.name] = _TERMINAL_NAMES[t.name]
            elif t.pattern.type == "str":
                cached[t.name] = f"'{t.pattern.value}'"
            else:
                cached[t.name] = t.name.lower()
        cached.update({k: v for k, v in _TERMINAL_NAMES.items() if k not in cached})
        _displays["lalr"] = cached
    return cached


def _expected_text(names: Iterable[str]) -> str:
    display = _terminal_display()
    shown = sorted({display.get(n, n) for n in names if n not in ("WS", "LINE_COMMENT", "BLOCK_COMMENT")})
    shown.sort(key=lambda s: (not s.startswith("'"), s))
    if not shown:
        return ""
    if len(shown) > 14:
        shown = shown[:14] + ["…"]
    if len(shown) == 1:
        return f" — expected {shown[0]}"
    return " — expected one of: " + ", ".join(shown)


def _short(text: str) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= 40 else text[:37] + "…"


def source_line(source: str, line: int) -> str:
    lines = source.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return ""


def _error(source: str, message: str, line: int, col: int) -> PolicyCompileError:
    return PolicyCompileError(message, line, col, source_line(source, line))


def _lark_error(source: str, exc: UnexpectedInput) -> PolicyCompileError:
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            line, col = _end_position(source)
            msg = "unexpected end of input"
        else:
            line, col = tok.line, tok.column
            msg = f"unexpected '{_short(str(tok))}'"
        expected = exc.accepts or exc.expected
        return _error(source, msg + _expected_text(expected), line, col)
    if isinstance(exc, UnexpectedCharacters):
        pos = cast(int, exc.pos_in_stream)  # always set for this error
        ch = source[pos] if pos < len(source) else ""
        if ch == '"' or (ch in "rwd" and source[pos + 1 : pos + 2] == '"'):
            msg = "unterminated string literal"
        else:
            msg = f"unexpected character '{_short(ch)}'"
        return _error(source, msg + _expected_text(exc.allowed or ()), exc.line, exc.column)
    if isinstance(exc, UnexpectedEOF):
        line, col = _end_position(source)
        return _error(source, "unexpected end of input" + _expected_text(exc.expected), line, col)
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    return _error(source, f"syntax error: {exc}", line, col)


def _end_position(source: str) -> tuple[int, int]:
    stripped = source.rstrip()
    if not stripped:
        return 1, 1
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col


def _finish(program: A.Program, source: str) -> A.Program:
    program.source = source
    for tool in program.tools:
        for rule in tool.rules:
            rule.text = " ".join(source[rule.start : rule.end].split()) + ";"
    return program


def parse_program(source: str) -> A.Program:
    """Parse and syntactically validate a SQRT program (raises ``PolicyCompileError``)."""
    if not isinstance(source, str):
        raise PolicyCompileError("the policy must be text", 1, 1, "")
    try:
        # With an inline transformer, lark returns what the transformer builds (its stubs say a tree).
        return _finish(cast(A.Program, _lalr().parse(source)), source)
    except _Fail as f:
        raise _error(source, f.message, f.line, f.col) from None
    except UnexpectedInput as exc:
        first = _lark_error(source, exc)
    except LarkError as exc:  # pragma: no cover - defensive
        raise _error(source, f"syntax error: {exc}", 1, 1) from None
    except RecursionError:
        raise _error(source, "the policy is nested too deeply", 1, 1) from None

    # Earley fallback for spellings only a scannerless parser accepts.
    if len(source) <= EARLEY_FALLBACK_MAX_CHARS and _nesting_tokens(source) <= EARLEY_FALLBACK_MAX_NESTING:
        try:
            tree = _earley().parse(source)
        except (LarkError, RecursionError):
            tree = None
        if tree is not None:
            try:
                return _finish(_Builder().transform(tree), source)
            except VisitError as ve:
                if isinstance(ve.orig_exc, _Fail):
                    failure = ve.orig_exc
                    raise _error(source, failure.message, failure.line, failure.col) from None
            except RecursionError:
                pass
    raise first
