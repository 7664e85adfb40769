"""Parse a program and check it stays inside the supported Python subset (before anything runs).

The result is cached by source text, so replaying a program on resume does not parse it again.
"""

from __future__ import annotations

import ast
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from threading import Lock
from typing import Any

from .errors import InterpreterError

_FILENAME = "<program>"
# ast.parse reports doubtful literals ("1if x") as SyntaxWarning: keep programs' warnings out of server logs.
warnings.filterwarnings("ignore", category=SyntaxWarning, module=_FILENAME)

ALLOWED_NODES = frozenset(
    {
        ast.Module,
        ast.Expr,
        ast.Assign,
        ast.AugAssign,
        ast.AnnAssign,
        ast.If,
        ast.For,
        ast.Try,
        ast.Raise,
        ast.Pass,
        ast.Break,
        ast.Continue,
        ast.Assert,
        ast.Delete,
        ast.ExceptHandler,
        ast.Constant,
        ast.Name,
        ast.Attribute,
        ast.Subscript,
        ast.Slice,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.Call,
        ast.keyword,
        ast.List,
        ast.Tuple,
        ast.Set,
        ast.Dict,
        ast.ListComp,
        ast.SetComp,
        ast.DictComp,
        ast.GeneratorExp,
        ast.comprehension,
        ast.JoinedStr,
        ast.FormattedValue,
        ast.Starred,
        ast.Load,
        ast.Store,
        ast.Del,
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.Div,
        ast.FloorDiv,
        ast.Mod,
        ast.Pow,
        ast.LShift,
        ast.RShift,
        ast.BitOr,
        ast.BitXor,
        ast.BitAnd,
        ast.MatMult,
        ast.UAdd,
        ast.USub,
        ast.Not,
        ast.Invert,
        ast.And,
        ast.Or,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.Is,
        ast.IsNot,
        ast.In,
        ast.NotIn,
    }
)

_REFUSALS = {
    "Import": "import statements are not allowed (datetime, date, time, timedelta and timezone are "
    "already available)",
    "ImportFrom": "import statements are not allowed (datetime, date, time, timedelta and timezone are "
    "already available)",
    "FunctionDef": "function definitions (def) are not allowed; write the steps inline",
    "AsyncFunctionDef": "function definitions (async def) are not allowed; write the steps inline",
    "ClassDef": "class definitions are not allowed; use dicts",
    "Lambda": "lambda expressions are not allowed; use a for loop or a comprehension",
    "While": "while loops are not allowed; use a for loop over a finite iterable",
    "Global": "global statements are not allowed",
    "Nonlocal": "nonlocal statements are not allowed",
    "With": "with statements are not allowed",
    "AsyncWith": "async with statements are not allowed",
    "AsyncFor": "async for loops are not allowed",
    "Await": "await is not allowed; call tools directly",
    "Yield": "yield is not allowed",
    "YieldFrom": "yield from is not allowed",
    "Match": "match statements are not allowed; use if/elif",
    "NamedExpr": "assignment expressions (:=) are not allowed; assign on a separate line",
    "Return": "return is not allowed at the top level; assign the result to final_return_value",
    "TryStar": "except* is not allowed",
}

# Builtins that exist in Python but not in the interpreter: naming one (without assigning it first) is
# refused with an explicit message.
FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "id",
        "hash",
        "iter",
        "next",
        "aiter",
        "anext",
        "callable",
        "exit",
        "quit",
        "bytes",
        "bytearray",
        "issubclass",
        "__builtins__",
        "__build_class__",
        "__loader__",
        "__spec__",
    }
)

MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "sort",
        "reverse",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "popitem",
        "intersection_update",
        "difference_update",
        "symmetric_difference_update",
    }
)


@dataclass(slots=True)
class Program:
    """A parsed, validated program plus static facts the evaluator uses."""

    body: list[ast.stmt]
    # names written (assigned, subscript-stored, mutated by a method, deleted) inside an if/for/try node:
    # they get the branch condition's meta after the statement (implicit flow through non-execution).
    written: dict[ast.AST, frozenset[str]] = field(default_factory=dict)
    # BoolOp nodes whose short-circuited operands contain a call that may be a tool call: their operands
    # are branching conditions (``flag and send_email(...)`` is an if).
    branching_boolops: set[ast.AST] = field(default_factory=set)
    # What a decision on tool data at an if/for/ternary/and-or/comprehension node can influence (see Region).
    regions: dict[ast.AST, Region] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Region:
    """The code governed by one decision (an if's branches, a loop's body, a ternary's operands...).

    ``sticky``: the region's effects cannot be enumerated statically (it may call a tool or a callable the
    program chose, break out of an enclosing loop, delete a name, or mutate a container that is not reached
    from a fixed name). A decision on tool data over such a region taints the rest of the run.
    ``roots``: names of the containers the region may mutate (the only ones it can): a decision on tool data
    taints them on entry, so every alias sees it whether or not the branch runs.
    """

    sticky: bool
    roots: frozenset[str]


_PURE = Region(False, frozenset())


def _refuse(node: ast.AST, what: str, lineno: int | None = None) -> InterpreterError:
    return InterpreterError("refused", f"Refused: {what}", getattr(node, "lineno", lineno))


def _base_name(e: ast.AST) -> str | None:
    while type(e) in (ast.Subscript, ast.Attribute, ast.Starred):
        e = e.value  # type: ignore[attr-defined]
    return e.id if type(e) is ast.Name else None


def _written_names(stmts: list[ast.stmt]) -> frozenset[str]:
    names: set[str] = set()
    n: Any  # told apart by exact type (``t``), which mypy cannot narrow through
    for s in stmts:
        for n in ast.walk(s):
            t = type(n)
            if t is ast.Name and type(n.ctx) is not ast.Load:
                names.add(n.id)
            elif t is ast.Subscript and type(n.ctx) is not ast.Load:
                b = _base_name(n)
                if b:
                    names.add(b)
            elif t is ast.Call and type(n.func) is ast.Attribute and n.func.attr in MUTATING_METHODS:
                b = _base_name(n.func.value)
                if b:
                    names.add(b)
            elif t is ast.ExceptHandler and n.name:
                names.add(n.name)
    return frozenset(names)


_STICKY = Region(True, frozenset())


@cache
def _known_attributes() -> frozenset[str]:
    """Names of the built-in methods and of the attributes of built-in types and modules."""
    from .builtins import ATTRS, BUILTINS, METHODS

    names: set[str] = set()
    for table in (*METHODS.values(), *ATTRS.values()):
        names.update(table)
    for b in BUILTINS.values():
        attrs = getattr(b.v, "attrs", None)
        if isinstance(attrs, dict):
            names.update(attrs)
            for a in attrs.values():
                inner = getattr(getattr(a, "v", a), "attrs", None)
                if isinstance(inner, dict):
                    names.update(inner)
    return frozenset(names)


def _region(  # noqa: C901 - one branch per kind of node that can mutate or jump
    nodes: list[ast.AST], pure_calls: frozenset[str], *, jumps_escape: bool, escaping: Sequence[ast.AST] = ()
) -> Region:
    """Classify a region (see Region). ``pure_calls``: builtin names the program never rebinds and no tool
    shadows. ``jumps_escape``: a break/continue in ``nodes`` leaves the region (an if's branches); those
    in ``escaping`` always do (a loop's else clause).

    Only a container named directly can be a root (``m.append(x)``, ``m[k] = v``, ``del m[k]``, ``m += x``):
    the object it names on entry is the object mutated, provided the region never rebinds the name.
    Mutations through a path (``d[k].append(x)``), of an unbound method (``list.append(m, x)``) or of a
    name the region also assigns make the region sticky."""
    roots: set[str] = set()
    assigned: set[str] = set()
    walked = [(x, jumps_escape) for x in nodes] + [(x, True) for x in escaping]
    aug_names = {id(n.target) for top, _ in walked for n in ast.walk(top) if type(n) is ast.AugAssign}
    n: Any  # told apart by exact type (``t``), which mypy cannot narrow through
    for top, escapes in walked:
        for n in ast.walk(top):
            t = type(n)
            if t is ast.Call:
                f = n.func
                if type(f) is ast.Name:
                    if f.id not in pure_calls:
                        return _STICKY
                elif type(f) is ast.Attribute:
                    if f.attr not in _known_attributes():
                        return _STICKY  # not a method: ``d.f(...)`` calls what a dict holds (refused at run time)
                    if f.attr in MUTATING_METHODS:
                        recv = f.value
                        if type(recv) is not ast.Name or recv.id in pure_calls:
                            return _STICKY
                        roots.add(recv.id)
                else:
                    return _STICKY
            elif t is ast.Subscript and type(n.ctx) is not ast.Load:
                if type(n.value) is not ast.Name:
                    return _STICKY
                roots.add(n.value.id)
            elif t is ast.AugAssign and type(n.target) is ast.Subscript:
                return _STICKY  # ``d[k] += [x]`` extends the list d[k] names in place
            elif t is ast.Name and type(n.ctx) is not ast.Load:
                if type(n.ctx) is ast.Del:
                    return _STICKY
                if id(n) in aug_names:
                    roots.add(n.id)  # ``x += [1]`` extends the list x names (for numbers: a rebinding)
                else:
                    assigned.add(n.id)
            elif (t is ast.Break or t is ast.Continue) and escapes:
                return _STICKY
    if roots & assigned:  # the name may point elsewhere by the time the container is mutated
        return _STICKY
    return Region(False, frozenset(roots)) if roots else _PURE


def _may_call_tool(e: ast.AST, builtin_names: frozenset[str]) -> bool:
    for n in ast.walk(e):
        if type(n) is ast.Call:
            f = n.func
            if type(f) is ast.Attribute:
                continue  # methods and datetime functions never call tools
            if type(f) is not ast.Name or f.id not in builtin_names:
                return True
    return False


def validate(source: str, max_depth: int, builtin_names: frozenset[str]) -> Program:  # noqa: C901 - one branch per node type
    if not isinstance(source, str):
        raise InterpreterError("syntax", "program must be a string")
    try:
        tree = ast.parse(source, filename=_FILENAME, mode="exec")
    except SyntaxError as e:
        raise InterpreterError("syntax", f"SyntaxError: {e.msg}", e.lineno) from None
    except (ValueError, OverflowError) as e:  # null bytes, absurd literals
        raise InterpreterError("syntax", f"SyntaxError: {e}") from None
    except (RecursionError, MemoryError):
        raise InterpreterError("limit", "program nested too deeply to parse") from None

    prog = Program(body=tree.body)
    regions: list[tuple[ast.AST, list[Any], bool, list[Any]]] = []
    stored: set[str] = set()
    loaded: list[ast.Name] = []
    # Iterative walk in source order with depth and loop tracking (no recursion: the tree may be deep).
    # node (told apart by exact type, ``t``, which mypy cannot narrow through), depth, loops, line
    stack: list[tuple[Any, int, int, int | None]] = [(tree, 0, 0, None)]
    while stack:
        node, depth, loops, line = stack.pop()
        line = getattr(node, "lineno", line)
        t = type(node)
        if depth > max_depth:
            raise InterpreterError("limit", f"program nested too deeply (more than {max_depth} levels)", line)
        if t not in ALLOWED_NODES:
            name = t.__name__
            raise _refuse(node, _REFUSALS.get(name) or f"{name} is not supported", line)
        if t is ast.Name:
            if node.id.startswith("__"):
                raise _refuse(node, f"the name '{node.id}' is not allowed (dunder names are reserved)")
            if type(node.ctx) is ast.Load:
                loaded.append(node)
            else:
                stored.add(node.id)
        elif t is ast.Attribute:
            if node.attr.startswith("_"):
                raise _refuse(node, f"access to the private attribute '{node.attr}' is not allowed")
            if type(node.ctx) is not ast.Load:
                raise _refuse(
                    node,
                    f"assigning or deleting the attribute '{node.attr}' is not allowed; "
                    "use a dict and subscript assignment",
                )
        elif t is ast.Constant:
            if type(node.value) in (bytes, complex) or node.value is Ellipsis:
                raise _refuse(node, f"{type(node.value).__name__} literals are not supported")
        elif t is ast.comprehension:
            if node.is_async:
                raise _refuse(node, "async comprehensions are not allowed", line)
        elif t is ast.Break or t is ast.Continue:
            if loops == 0:
                word = "break" if t is ast.Break else "continue"
                raise InterpreterError("syntax", f"SyntaxError: '{word}' outside loop", node.lineno)
        elif t is ast.If:
            prog.written[node] = _written_names(node.body + node.orelse)
            regions.append((node, node.body + node.orelse, True, []))
        elif t is ast.For:
            prog.written[node] = _written_names(
                [ast.Assign(targets=[node.target], value=node.iter)] + node.body + node.orelse
            )
            regions.append((node, [node.target, *node.body], False, node.orelse))
        elif t is ast.Try:
            prog.written[node] = _written_names(node.body)
            for n in node.finalbody:
                for x in ast.walk(n):
                    if type(x) in (ast.Break, ast.Continue):
                        raise _refuse(
                            x,
                            "break and continue are not allowed in a finally clause (they would discard "
                            "the exception being raised)",
                        )
        elif t is ast.BoolOp:
            if any(_may_call_tool(v, builtin_names) for v in node.values[1:]):
                prog.branching_boolops.add(node)
            regions.append((node, node.values[1:], False, []))
        elif t is ast.IfExp:
            regions.append((node, [node.body, node.orelse], False, []))
        elif t in _COMPREHENSIONS:
            regions.append((node, [node], False, []))
        elif t is ast.Compare and len(node.comparators) > 1:
            regions.append((node, node.comparators[1:], False, []))  # ``a < b < f(x)`` short-circuits
        elif t is ast.Assert and node.msg is not None:
            regions.append((node, [node.msg], False, []))  # the message runs only when the assert fails

        elif t is ast.ExceptHandler and node.name:
            stored.add(node.name)
        d1 = depth + 1
        if t is ast.For:
            children = [(node.target, d1, loops, line), (node.iter, d1, loops, line)]
            children += [(c, d1, loops + 1, line) for c in node.body]
            children += [(c, d1, loops, line) for c in node.orelse]
        else:
            children = [(c, d1, loops, line) for c in ast.iter_child_nodes(node)]
        children.reverse()
        stack.extend(children)
    for n in loaded:
        if n.id in FORBIDDEN_NAMES and n.id not in stored:
            raise _refuse(n, f"'{n.id}' is not available in this interpreter")
    pure_calls = frozenset(builtin_names - stored)
    for node, nodes, jumps_escape, escaping in regions:
        region = prog.regions[node] = _region(nodes, pure_calls, jumps_escape=jumps_escape, escaping=escaping)
        if type(node) in (ast.BoolOp, ast.Compare) and (region.sticky or region.roots):
            prog.branching_boolops.add(node)  # ``flag and lst.append(x)`` decides an effect, like an if
    return prog


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


_CACHE: OrderedDict[tuple[str, int, frozenset[str]], Program] = OrderedDict()
_CACHE_SIZE = 256
_LOCK = Lock()


def compile_program(source: str, max_depth: int, builtin_names: frozenset[str]) -> Program:
    """Parse and validate ``source``; cached by source text (a resumed program is not parsed again)."""
    key = (source, max_depth, builtin_names)
    with _LOCK:
        prog = _CACHE.get(key)
        if prog is not None:
            _CACHE.move_to_end(key)
            return prog
    prog = validate(source, max_depth, builtin_names)
    with _LOCK:
        _CACHE[key] = prog
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return prog
