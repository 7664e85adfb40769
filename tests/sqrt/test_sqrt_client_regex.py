"""Client regular expressions (relay.regex): RE2, linear time, refusals at compile time with a position.

Through the helper itself, the SQRT compiler (line and column of the offending construct), the SQRT engine
(``(a+)+$`` on a long string decides at once), wildcards, and the linter behind ``manage.py sqrt_check``.
"""

from __future__ import annotations

import io
import random
import re
import time

import pytest
from sqrt_helpers import V, check, compile_error, engine

from relay.regex import (
    MAX_PROGRAM_SIZE,
    ClientPatternError,
    check_client_pattern,
    compile_client_pattern,
    try_client_pattern,
    wildcard_pattern,
)
from relay.sqrt.lint import lint_files

EVIL = r"(a+)+$"
LONG = "a" * 50_000 + "!"  # Python's re would need ~2**50000 steps on this


def fast(fn, budget: float = 0.5):
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    assert elapsed < budget, f"took {elapsed:.3f} s"
    return out


# ---------------------------------------------------------------- the helper


def test_backtracking_pattern_is_linear():
    rx = compile_client_pattern(EVIL)
    assert fast(lambda: rx.search(LONG)) is None
    assert fast(lambda: rx.fullmatch(LONG)) is None
    assert rx.search("xaaa") is True and rx.fullmatch("aaaa") is True
    nested = compile_client_pattern(r"(?:(?:a|aa)+)+b|(x+x+)+y")
    assert fast(lambda: nested.fullmatch("a" * 100_000)) is None


@pytest.mark.parametrize(
    "pattern, fragment, position",
    [
        (r"(a)\1", "backreferences", 3),
        (r"(?P<x>a)(?P=x)", "backreferences", 8),
        (r"(?=a)a", "lookahead and lookbehind", 0),
        (r"a(?!b)", "lookahead and lookbehind", 1),
        (r"(?<=a)b", "lookahead and lookbehind", 0),
        (r"(?<!a)b", "lookahead and lookbehind", 0),
        (r"(?>a+)b", "atomic groups", 0),
        (r"a*+b", "possessive quantifiers", 2),
        (r"a{2,3}+", "possessive quantifiers", 6),
        (r"(a)?(?(1)b|c)", "conditional groups", 4),
        (r"(?x) a b", "verbose mode", 0),
        (r"a{1001}", "repetition counts above 1000", 1),
    ],
)
def test_refused_constructs_name_the_position(pattern, fragment, position):
    with pytest.raises(ClientPatternError) as ei:
        compile_client_pattern(pattern)
    err = ei.value
    assert fragment in err.message and "linear time" in err.message and "RE2" in err.message
    assert err.position == position and err.unsupported
    assert str(err).startswith(f"at position {position}: ")
    assert try_client_pattern(pattern) is None


def test_invalid_python_syntax_keeps_re_message():
    with pytest.raises(ClientPatternError) as ei:
        compile_client_pattern("(ab")
    assert "missing )" in ei.value.message and ei.value.position == 0 and not ei.value.unsupported
    with pytest.raises(ClientPatternError):
        compile_client_pattern(r"\p{L}")  # RE2-only syntax is not Python syntax
    with pytest.raises(
        ValueError, match=r'unsupported regular expression r"\(a\)\\1" at position 3: backref'
    ):
        check_client_pattern(r"(a)\1")
    assert check_client_pattern("^Error:") == "^Error:"


def test_size_caps():
    with pytest.raises(ClientPatternError, match="too large"):
        compile_client_pattern(".{1,1000}")  # 9003 instructions
    with pytest.raises(ClientPatternError, match="longer than"):
        compile_client_pattern("a" * 20_000)
    assert compile_client_pattern("[a-z0-9-]{1,63}").program_size <= MAX_PROGRAM_SIZE


# Python `re` with the ASCII flag is the reference meaning; what RE2 spells differently is translated.
SAME_AS_RE = [
    r"^Error:.*$",
    r"fail$|^x",
    r"(a|b$)",
    r"(a$|b)c",
    r"a{,3}",
    r"a{,}b",
    r"a{2,}",
    r"a{}",
    r"x{a}",
    r"[\s]+",
    r"\S+",
    r"[^\s]x",
    r"[\b]",
    r"\0",
    r"\101",
    r"[\101-\132]+",
    r"\u00e9",
    r"\N{EN DASH}",
    r"(?#c)a(?#d)+",
    r"(?i:ab)c",
    r"(?P<n>y)+",
    r"(?a)\w+",
    r"(?s).",
    r".",
    r"(?m)^a$",
    r"a\Z",
    r"\Aab",
    r"\bfoo\b",
    r"[]a]",
    r"[^]a]",
    r"[a-]",
    r"\{1\}",
    r"(?-i:a)",
    r"\x41\t",
    r"a*?b",
    r"a{1,3}?b",
    r"\d{2,4}",
    r"\w\W",
    r"\\",
    r"[\\]",
    r"a\ b",
    r"\#",
    r"é+",
    r"\é",
    r"[é-ë]",
    r"\v",
    r"[\v]",
    r"\s$",
    r"a\n$",
    r"$",
    r"^$",
    r".*@corp\.com",
]
ALPHABET = [
    "a",
    "b",
    "A",
    "x",
    "y",
    "\n",
    " ",
    "\t",
    "\v",
    "é",
    "ë",
    "{",
    "}",
    "1",
    "2",
    "$",
    "\\",
    "]",
    "-",
    "\x08",
    "\x00",
    "–",
    "٣",
    ":",
    "E",
    "r",
    "o",
    "Error:",
    "fail",
    "foo",
    "@corp.com",
]


@pytest.mark.parametrize("pattern", SAME_AS_RE)
def test_meaning_is_that_of_re_ascii(pattern):
    rnd = random.Random(pattern)
    ours, ref = compile_client_pattern(pattern), re.compile(pattern, re.ASCII)
    for _ in range(400):
        s = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 6)))
        assert (ours.fullmatch(s) is not None) == (ref.fullmatch(s) is not None), (pattern, s, "fullmatch")
        assert (ours.search(s) is not None) == (ref.search(s) is not None), (pattern, s, "search")


def test_lone_surrogates_are_matched_not_raised():
    assert compile_client_pattern(".*rm -rf.*").fullmatch("x\ud800 rm -rf /") is True
    assert compile_client_pattern("a.b").fullmatch("a\udfffb") is True


def test_wildcards_are_linear():
    glob = wildcard_pattern("*a*a*a*a*a*a*a*a*b")  # backtracking: O(n**8)
    assert fast(lambda: glob.fullmatch("a" * 20_000)) is None
    assert wildcard_pattern("*@university.edu").fullmatch("x@university.edu")
    assert not wildcard_pattern("*.txt").fullmatch("a.txt.bak")
    assert wildcard_pattern(r"a\*?").fullmatch("a*\n") and not wildcard_pattern(r"a\*?").fullmatch("ab?")


# ---------------------------------------------------------------- SQRT


def test_sqrt_backreference_is_a_compile_error_at_its_column():
    src = 'tool "send" {\n    hard deny when to.value in {str matching r"(a)\\1"};\n}\n'
    err = compile_error(src)
    assert err.line == 2
    assert src.splitlines()[1][err.column - 1 :].startswith("\\1")  # the caret points at the backreference
    assert "unsupported regular expression" in err.message and "backreferences" in err.message
    assert "RE2" in err.message and "line 2, column" in str(err)
    assert "^" in err.as_detail()


@pytest.mark.parametrize(
    "src, fragment",
    [
        ('tool r"(?=send).*" { hard deny always; }', "lookahead"),
        ('tool "t" { hard deny when x.value in {r"(?<!a)b"}; }', "lookahead and lookbehind"),
        ('let s = {str matching r"a++"};\ntool "t" { hard deny when x.value in s; }', "possessive"),
        (
            'tool "t" { hard deny when x.value in {r"(a)(?P=a)"}; }',
            "invalid regular expression",
        ),  # no group a
        ('tool "t" { hard deny when x.value in {r"(?P<a>x)(?P=a)"}; }', "backreferences"),
    ],
)
def test_sqrt_refusals(src, fragment):
    err = compile_error(src)
    assert fragment in err.message and err.line >= 1 and err.column >= 1


def test_sqrt_escaped_quote_keeps_the_column_right():
    src = 'tool "t" { hard deny when x.value in {r"\\"(x)\\1"}; }'  # pattern "(x)\1 (SQRT \" is a quote)
    err = compile_error(src)
    assert src[err.column - 1 :].startswith("\\1")


def test_sqrt_engine_evil_pattern_decides_at_once():
    src = f"""
tool "send" {{ hard deny when body.value in {{str matching r"{EVIL}"}}; }}
tool r"{EVIL}" {{ hard deny always; }}
tool "post" {{ hard deny when body.value in {{r"(x+x+)+y", w"*a*a*a*a*a*a*a*a*b"}}; }}
"""
    eng = engine(src)
    d = fast(lambda: eng.before_call("send", {"body": V(LONG)}, V().meta))
    assert d.verdict != "hard_denied"
    assert fast(lambda: eng.before_call("send", {"body": V("aaaa")}, V().meta)).verdict == "hard_denied"
    assert fast(lambda: check(src, "a" * 60 + "!", body="x")).verdict != "hard_denied"  # regex tool id
    assert check(src, "aaa", body="x").verdict == "hard_denied"
    assert fast(lambda: check(src, "post", body="x" * 50_000)).verdict != "hard_denied"
    assert check(src, "post", body="xxy").verdict == "hard_denied"
    assert check(src, "post", body="zaaaaaaaab").verdict == "hard_denied"


def test_sqrt_matching_semantics_unchanged():
    src = r"""
let BlockedRecipients = {"spam@evil.com", str matching r".*@blocked\\.com$"};
tool "send_email" { hard deny when to.value in BlockedRecipients; }
tool r"^(read|get|list)_.*" { hard deny always; }
"""
    assert check(src, "send_email", to="x@blocked.com").verdict == "hard_denied"
    assert check(src, "send_email", to="x@blocked.com\n").verdict != "hard_denied"  # fullmatch, as before
    assert check(src, "send_email", to="x@blockedXcom").verdict != "hard_denied"
    assert check(src, "get_file").verdict == "hard_denied" and check(src, "forget_x").verdict != "hard_denied"


def test_sqrt_check_lint_reports_line_and_column(tmp_path):
    f = tmp_path / "p.sqrt"
    f.write_text('tool "t" {\n  hard deny when x.value in {r"(?=a)"};\n}\n')
    out = io.StringIO()
    assert lint_files([str(f)], out) == 1
    text = out.getvalue()
    assert f"{f}:2:" in text and "lookahead" in text


def test_python_fast_path_only_for_patterns_that_cannot_backtrack_badly():
    import time

    from relay.regex import _linear_for_python, compile_client_pattern

    assert (
        _linear_for_python(r".*@corp\.com") and _linear_for_python(r"^read_.*") and _linear_for_python("abc")
    )
    for hostile in (r"(a+)+$", "a*a*b", "a?a?a?aaa", r"a{1,9}b", "a|ab", r"x.*?y.*z"):
        assert not _linear_for_python(hostile), hostile
    # same answers as RE2 on the fast path, and a long hostile text stays fast
    p = compile_client_pattern(r".*aaaaaaaaab")
    assert p._py_full is not None
    t0 = time.perf_counter()
    assert p.fullmatch("a" * 200_000) is None and p.fullmatch("a" * 50 + "b")
    assert time.perf_counter() - t0 < 2
    assert p.search("xxaaaaaaaaabyy")  # search always goes through RE2
