"""Parser and compile-time validation: §2-§4, §10, §11.12; cross-checked against the reference validator."""

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqrt_helpers import compile_error, verdict

from relay.sqrt import PolicyCompileError, compile_policy
from relay.sqrt.parser import parse_program

try:  # the reference validator (PyPI `sequrity`); tests only
    from sequrity.sqrt import validate as reference_validate
except Exception:  # pragma: no cover
    reference_validate = None

SPEC = Path("/work/shared/spec/sqrt.md")
SPEC_BLOCKS = re.findall(r"```sqrt\n(.*?)```", SPEC.read_text(), re.S) if SPEC.exists() else []

VALID = [
    "",
    'let x = {"foo", "bar"};',
    'tool "send_email" { must allow always; }',
    'tool "read_file" { must deny when path.tags overlaps {"secret"}; should allow always; }',
    'tool "fetch_data" { result { @tags = @tags | {"tool:fetch_data"}; } }',
    'tool "foo" -> @tags |= {"bar"};',
    'let p1 = data.tags overlaps {"pii"}; let p2 = data.tags subset of {"public", "internal"}; '
    "let p3 = p1 and p2; let p4 = not p3 or p1;",
    'let s1 = {"a", "b"} | {"c"}; let s2 = {"a", "b"} & {"b", "c"}; let s3 = {"a", "b"} - {"b"}; '
    'let s4 = {"a", "b"} ^ {"b", "c"};',
    'let b1 = bool true; let i1 = int 1..100; let f1 = float 0.0..1.0; let s1 = str "hello"; '
    'let s2 = str matching r"^[a-z]+$";',
    'tool "multi_input" { must allow when union of tags from args overlaps {"trusted"}; '
    "result { @tags = @args.tags; } }",
    'tool "stateful" { session before { @tags |= {"pending"}; } session after { @tags = @tags - {"pending"}; } }',
    'tool "conditional" { result { when input.tags overlaps {"sensitive"} { @tags |= {"requires_audit"}; } } }',
    '/// This tool handles email sending\n/// with proper security checks\ntool "send_email" { /// Block known spam '
    'addresses\nmust deny when to.value in {"spam@evil.com"}; should allow always; }',
    'tool r"^file_.*" { must allow always; }',
    'tool "t" { priority -5; }',
    'tool "t" { }',
    'tool "t" -> session @tags |= @result.tags when @result.tags overlaps {"x"};',
    'let a = str "x" length 3;',
    "let a = int ..<5; let b = int 5<..; let c = float inf;",
    'let p = "a" in x.tags;',
    "let p = x.value in x.tags;",
    "let p = @result.value == @session.value;",
    "let let = {};",
    "let tool = {};",
    'tool "t" { hard deny when true; }',
    "/* block\n comment */ let x = {}; // trailing",
    'let x = {"a"} with "b" without "c";',
    "let p = tags.value == 1;",
    "let a = {-inf, +inf, 1.5, -2};",
    'let d = datetime "2023-01-01"; let e = datetime d"2023-01-01T00:00:00Z"..;',
    'tool "t" { priority 1; priority 2; result { } session after { } session before { } }',
    'tool "t" [-3] -> session before @consumers = {"*"};',
]

INVALID = [
    'let x = {"foo"}',
    'foobar "test" { };',
    'tool "test" { broken }',
    "invalid syntax here",
    'let x = {"a"};\nlet y = broken\nlet z = {};',
    "allow tool x;",
    'let x = {"a",};',
    'tool "t" { must deny always }',
    'tool "t" { MUST deny always; }',
    'let p = x.tags in {"a"};',
    'tool "t" { hard deny when {"a"} overlaps x.tags; }',
    'let s = {"a"}; tool "t" { hard deny when s overlaps x.tags; }',
    'let p = x.tags union y.tags overlaps {"a"};',
    'tool "t" { hard deny when x.value != "a"; }',
    'tool "t" { hard deny when x.tags is not empty; }',
    'tool "t" -> @result.tags |= {};',
    'tool "t" { result { when x.tags is empty { /// d\n @tags |= {"a"}; } } }',
    'tool "t" { must allow always; /// trailing\n}',
    'let s = {d"2020"};',
    "let a = int <..<5;",
    "let a = int 5..<;",
    "let a = float 1e3;",
    "let a = float .5;",
    "let a = int +5;",
    'let r = r"abc";',
    'let p = x.value == {"a"};',
    "let p = x.value == 1..3;",
    "/// dangling doc comment at the end",
    'let p = (x.value) == "a";',
    "let p = x. value == 1;",
]


def test_spec_snippets_all_parse():
    assert len(SPEC_BLOCKS) >= 30
    for block in SPEC_BLOCKS:
        parse_program(block)


def test_spec_snippets_compile_except_the_incomplete_quick_reference():
    failures = []
    for block in SPEC_BLOCKS:
        try:
            compile_policy(block)
        except PolicyCompileError as exc:
            failures.append(exc)
    assert len(failures) == 1 and "'condition'" in failures[0].message


@pytest.mark.parametrize("src", VALID)
def test_valid_vectors(src):
    compile_policy(src)


@pytest.mark.parametrize("src", INVALID)
def test_invalid_vectors(src):
    err = compile_error(src)
    assert err.line >= 1 and err.column >= 1
    assert str(err).startswith(f"line {err.line}, column {err.column}: ")
    assert "\n" not in str(err)


@pytest.mark.skipif(reference_validate is None, reason="sequrity not installed")
@pytest.mark.parametrize("src", VALID + INVALID + SPEC_BLOCKS)
def test_agrees_with_reference_validator(src):
    try:
        parse_program(src)
        mine = True
    except PolicyCompileError:
        mine = False
    assert mine == reference_validate(src)


def test_error_reports_line_and_column_and_expectations():
    err = compile_error('tool "t" {\n    must deny }\n')
    assert (err.line, err.column) == (2, 15)
    assert err.source_line == "    must deny }"
    assert str(err) == (
        "line 2, column 15: unexpected '}' — expected one of: 'always', 'when' (in: `    must deny }`)"
    )
    detail = err.as_detail()
    assert "line 2, column 15" in detail and "    must deny }" in detail and "^" in detail
    err = compile_error('let x = {"a"};\nlet y = broken\nlet z = {};')
    assert err.line == 3 and "unexpected 'let'" in err.message
    err = compile_error("invalid syntax here")
    assert "line 1" in str(err)
    err = compile_error('let x = {"foo"}')
    assert "end of input" in err.message and "';'" in err.message


def test_unterminated_string():
    err = compile_error('let x = {"abc};')
    assert err.line == 1 and "unterminated" in err.message


# ---------------------------------------------------------------- semantic errors (§10)


@pytest.mark.parametrize(
    "src, fragment, line",
    [
        ('tool "t" { hard deny when Nope; }', "unknown name 'Nope'", 1),
        ("let a = b;\nlet b = a;", "cyclic", 2),
        ("let a = a or x.value == 1;", "cyclic", 1),
        ('let s = {"a"};\ntool "t" { hard deny when s; }', "'s' is a set", 2),
        ('let p = x.value == 1;\ntool "t" -> @tags |= p;', "'p' is a condition", 2),
        ('let d = int 5;\ntool "t" { hard deny when d; }', "type domain", 2),
        ('tool "t" { hard deny when x.value in {r"("}; }', "invalid regular expression", 1),
        ('tool r"(" { hard deny always; }', "invalid regular expression", 1),
        ('let d = datetime d"yesterday";', "invalid datetime", 1),
        ('let d = datetime "not a date";', "invalid datetime", 1),
        ('let p = x.value == d"2023-13-45";', "invalid datetime", 1),
        ('tool "t" {\n  session before { @result.tags |= {"a"}; }\n}', "session before", 2),
        (
            'tool "t" {\n  session before { when x.tags is empty { @result.tags = {}; } }\n}',
            "session before",
            2,
        ),
        ('tool "t" -> @tags |= {r"a.*"};', "cannot be stored in metadata", 1),
        ('tool "t" -> @tags = {"a"} | {int 1..3};', "not combined with `|`", 1),
        ('let s = {"a", w"*.txt"};\nlet u = s & {"b"};', "not combined with `&`", 2),
        ('let d = int 5;\ntool "t" -> @tags = d;', "cannot be stored", 2),
        ('tool "t" -> @tags = @tags with r"x";', "plain string", 1),
        ('tool "t" -> @tags |= {1, 2};', "cannot be stored", 1),
        ('tool "t" { hard deny when x.tags | true overlaps {"a"}; }', "", 1),
        ('let s = {"a"};\ntool "t" -> @tags |= true;', "boolean", 2),
    ],
)
def test_semantic_errors(src, fragment, line):
    err = compile_error(src)
    assert fragment in err.message
    assert err.line == line


def test_unused_lets_are_checked_and_duplicates_replace():
    assert "unknown name" in compile_error("let unused = missing_thing;").message
    src = 'let L = {"a"};\nlet L = {"b"};\ntool "t" { hard deny when x.value in L; }'
    assert verdict(src, "t", x="b") == "hard_denied"
    assert verdict(src, "t", x="a") == "soft_allowed"


def test_lets_may_be_used_before_declaration_and_chain():
    src = 'tool "t" { hard deny when P; }\nlet P = Q;\nlet Q = x.value in S;\nlet S = {"bad"};'
    assert verdict(src, "t", x="bad") == "hard_denied"
    assert verdict(src, "t", x="ok") == "soft_allowed"


def test_true_false_constants_and_contextual_keywords():
    assert verdict('tool "t" { hard deny when true; }', "t") == "hard_denied"
    assert verdict('tool "t" { hard deny when false; }', "t") == "soft_allowed"
    assert verdict('tool "t" { hard deny when (true) and not false; }', "t") == "hard_denied"
    # `true` in predicate position is the constant even when a let has that name
    assert verdict('let true = x.value == 1;\ntool "t" { hard deny when true; }', "t", x=2) == "hard_denied"
    src = 'let let = {"a"};\nlet tool = {"b"};\ntool "t" { hard deny when x.value in let | tool; }'
    assert verdict(src, "t", x="b") == "hard_denied"
    assert verdict('tool "t" { hard deny when tags.value == 1; }', "t", tags=1) == "hard_denied"
    assert verdict('tool "t" { hard deny when true == x.value; }', "t", x=True) == "hard_denied"


def test_reference_quirks_are_accepted():
    # the reference validator lexes without a scanner: `letx` is `let x`
    compile_policy("letx = {};")
    assert verdict('tool"t"{mustdenyalways;}', "t") == "hard_denied"


def test_escape_processing():
    src = r'tool "t" { hard deny when x.value in {"a\"b", "c\\d", "e\nf"}; }'
    assert verdict(src, "t", x='a"b') == "hard_denied"
    assert verdict(src, "t", x="c\\d") == "hard_denied"
    assert verdict(src, "t", x="e\\nf") == "hard_denied"  # unknown escapes are kept verbatim
    dot = r'tool "t" { hard deny when x.value in {str matching r".*@trustedcorp\.com"}; }'
    assert verdict(dot, "t", x="a@trustedcorp.com") == "hard_denied"
    assert verdict(dot, "t", x="a@trustedcorpXcom") == "soft_allowed"


def test_rule_text_and_doc_comment_joining():
    pol = compile_policy(
        'tool "t" {\n  ///  two spaces\n  ///one\n  must deny when x.value\n     in {"a"};\n  soft allow always;\n}'
    )
    rule = pol.tools[0].hard_deny[0]
    assert rule.text == 'must deny when x.value in {"a"};'
    assert rule.description == " two spaces\none"
    assert pol.tools[0].soft[0].text == "soft allow always;"


def test_compiled_once_and_cached():
    src = 'tool "cache_me" { must allow always; }  // unique 8f1d'
    a = compile_policy(src)
    b = compile_policy(src)
    assert a is b
    assert compile_policy(src + " ") is not a
    e1 = compile_error("let broken")
    e2 = compile_error("let broken")
    assert e1 is not e2 and str(e1) == str(e2)
    with pytest.raises(PolicyCompileError, match="unsupported policy language"):
        compile_policy("x", "rego")


def test_deep_nesting_is_a_compile_error_not_a_crash():
    src = "let p = " + "(" * 3000 + "x.value == 1" + ")" * 3000 + ";"
    with contextlib.suppress(PolicyCompileError):
        compile_policy(src)


# ---------------------------------------------------------------- property tests

TOKENS = [
    "let",
    "tool",
    "x",
    "y",
    "=",
    ";",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    ".value",
    "@",
    "@result",
    "@session",
    "@args",
    "tags",
    "producers",
    "consumers",
    "must",
    "should",
    "hard",
    "soft",
    "allow",
    "deny",
    "when",
    "always",
    "result",
    "session",
    "before",
    "after",
    "priority",
    "->",
    "|",
    "&",
    "-",
    "^",
    "|=",
    "&=",
    "-=",
    "^=",
    "==",
    "in",
    "not",
    "and",
    "or",
    "overlaps",
    "subset",
    "superset",
    "of",
    "is",
    "empty",
    "universal",
    "with",
    "without",
    "union",
    "intersect",
    "minus",
    "xor",
    "from",
    "args",
    "bool",
    "int",
    "float",
    "str",
    "datetime",
    "matching",
    "like",
    "length",
    "true",
    "false",
    "inf",
    "-inf",
    "1",
    "-5",
    "2.5",
    "..",
    "..<",
    "<..",
    "<..<",
    '"a"',
    '"*"',
    'r"a.*"',
    'w"*.txt"',
    'd"2023-01-01T00:00:00Z"',
    "/// doc\n",
    "// c\n",
    "/* b */",
    "\n",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_random_text_only_raises_compile_errors(text):
    try:
        compile_policy(text)
    except PolicyCompileError as exc:
        assert exc.line >= 1 and exc.column >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.sampled_from([" ", "", "\n"]))
def test_random_token_streams_only_raise_compile_errors(tokens, sep):
    try:
        compile_policy(sep.join(tokens))
    except PolicyCompileError as exc:
        assert exc.line >= 1 and exc.column >= 1


def _mutations():
    seeds = [b for b in SPEC_BLOCKS if len(b) < 400] + VALID
    return st.tuples(
        st.sampled_from(seeds),
        st.lists(
            st.tuples(
                st.sampled_from(["del", "ins", "rep"]), st.integers(0, 10_000), st.sampled_from(TOKENS)
            ),
            min_size=1,
            max_size=3,
        ),
    )


_TOKEN_RE = re.compile(
    r'[rwd]?"(?:[^"\\]|\\.)*"|///[^\n]*\n|//[^\n]*|@\w+|\.value|<\.\.<|<\.\.|\.\.<|\.\.|[|&^-]=|==|->|-?\d+\.\d+|-?\d+|\w+|[^\s\w]'
)


@pytest.mark.skipif(reference_validate is None, reason="sequrity not installed")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_programs_agree_with_reference(case):
    seed, edits = case
    toks = _TOKEN_RE.findall(seed)
    for op, pos, tok in edits:
        i = pos % (len(toks) + 1)
        if op == "ins" or not toks:
            toks.insert(i, tok)
        elif op == "del":
            del toks[min(i, len(toks) - 1)]
        else:
            toks[min(i, len(toks) - 1)] = tok
    src = " ".join(toks)
    try:
        parse_program(src)
        mine = True
    except PolicyCompileError as exc:
        # datetime/regex validity is a compile-time (semantic) check here, not a syntax one
        if "invalid datetime" in exc.message or "invalid regular expression" in exc.message:
            return
        mine = False
    assert mine == reference_validate(src), src


def test_a_lone_inf_in_a_let_reads_as_a_name_like_the_reference():
    # found by test_mutated_programs_agree_with_reference: the reference lexes a lone `inf` there as a name
    parse_program("let a = int ..< 5 ; let b = int 5 <.. ; let c = inf ;")
    for src in ("let c = +inf ;", "let c = -inf ;", "let c = 5 ;"):
        with pytest.raises(PolicyCompileError):
            parse_program(src)


def test_the_earley_fallback_is_not_tried_on_deep_chains():
    """Chains of `not` (or nested parentheses) made the fallback superlinear: 4,000 characters took 13 s on
    the event loop. Past EARLEY_FALLBACK_MAX_NESTING of them the LALR error is the answer, at once."""
    import time

    from relay.sqrt.parser import EARLEY_FALLBACK_MAX_NESTING

    src = 'tool "x" { hard deny when ' + "not " * 990 + "; }"
    started = time.perf_counter()
    with pytest.raises(PolicyCompileError):
        parse_program(src)
    assert time.perf_counter() - started < 5  # was 13 s; linear now (about 50 ms)
    assert EARLEY_FALLBACK_MAX_NESTING == 64
