"""Editor diagnostics (``relay.sqrt.diagnostics``): positions an author can act on, for any text."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.sqrt import compile_policy
from relay.sqrt.diagnostics import MAX_POLICY_CHARS, diagnose

VALID = [
    'tool "send_email" {\n    hard deny when "pii" in body.tags;\n}\n',
    '/// Names that may receive mail.\nlet trusted = {str like w"*@corp.com"};\n'
    'tool "send_email" {\n    priority 5;\n    must deny when not (to.value in trusted);\n'
    '    should allow always;\n    result {\n        @tags |= {"sent"};\n    }\n}\n',
    'tool r"read_.*" -> @tags |= {"untrusted"};\ntool "delete_file" {\n    must deny always;\n}\n',
    'tool "pay" {\n    session before {\n        when @session.tags overlaps {"untrusted"} {\n'
    '            @session.tags |= {"tainted"};\n        }\n    }\n'
    '    hard deny when "tainted" in @session.tags and amount.value in {int 100..};\n}\n',
    'let limit = {int ..<1000};\n// refunds below the limit only\ntool "refund" {\n'
    "    hard allow when amount.value in limit;\n    soft deny always;\n}\n",
]
CEDAR = 'permit(principal, action == Action::"read_file", resource);\nforbid(principal, action, resource);\n'
TOKEN = re.compile(
    r'[rwd]?"(?:[^"\\\n]|\\.)*"|///[^\n]*|//[^\n]*|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+|<\.\.<|\.\.<|<\.\.|'
    r"\.\.|[|&^-]=|==|->|\S"
)


def position_of(text, offset):
    """(line, column), 1-based, of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def assert_well_placed(text, diagnostic):
    lines = text.split("\n")
    assert diagnostic.message.strip()
    assert 1 <= diagnostic.line <= len(lines)
    assert 1 <= diagnostic.column <= len(lines[diagnostic.line - 1]) + 1
    assert 1 <= diagnostic.from_line <= diagnostic.end_line <= len(lines)
    start, end = (diagnostic.from_line, diagnostic.from_column), (diagnostic.end_line, diagnostic.end_column)
    assert start <= end
    assert 1 <= diagnostic.from_column <= len(lines[diagnostic.from_line - 1]) + 1
    assert 1 <= diagnostic.end_column <= len(lines[diagnostic.end_line - 1]) + 1


@pytest.mark.parametrize("text", VALID)
def test_a_valid_policy_has_no_diagnostics(text):
    compile_policy(text)
    assert diagnose(text) == []


@pytest.mark.parametrize("text", VALID)
def test_every_missing_semicolon_is_reported_where_it_is_missing(text):
    for match in re.finditer(";", text):
        broken = text[: match.start()] + text[match.end() :]
        found = diagnose(broken)
        assert len(found) == 1, broken
        where = position_of(broken, len(text[: match.start()].rstrip()))
        assert (found[0].line, found[0].column) == where, (broken, found[0])
        assert found[0].message.startswith("Missing ';'")
        assert found[0].expected[0] == "';'"
        assert_well_placed(broken, found[0])


def test_missing_semicolon_before_the_next_statement_names_the_statement():
    text = 'tool "a" {\n    hard deny when "x" in body.tags\n    must allow always;\n}\n'
    (d,) = diagnose(text)
    assert (d.line, d.column) == (2, 36)  # right after `body.tags`, not at `must` on line 3
    assert (d.from_line, d.from_column, d.end_line, d.end_column) == (2, 32, 2, 36)
    assert (
        d.message
        == "Missing ';' at the end of `hard deny when \"x\" in body.tags` (line 3 starts a new one)."
    )
    assert d.as_dict()["from"] == {"line": 2, "column": 32} and "line 3, column 5" in d.detail
    # what the parser takes next, not every lookahead of its LALR state
    assert "'and'" in d.expected and "')'" not in d.expected


def test_an_unclosed_block_names_the_line_that_opened_it():
    (d,) = diagnose('let x = {"a"};\ntool "a" {\n    must allow always;\n')
    assert d.message == "Missing '}' at the end of the policy (the block opened on line 2 is not closed)."
    assert (d.line, d.column) == (3, 23) and d.expected[0] == "'}'"


def test_an_unexpected_token_lists_what_would_fit():
    (d,) = diagnose('tool "a" {\n    must allow\n}\n')
    assert d.message == "Unexpected '}'. Expected 'always' or 'when'."
    assert (d.line, d.column, d.end_column) == (3, 1, 2) and d.expected == ("'always'", "'when'")


def test_an_unterminated_string_is_underlined_to_the_end_of_its_line():
    (d,) = diagnose('tool "a" { hard deny when "x in body.tags; }')
    assert d.message.startswith("This string is not closed")
    assert (d.column, d.end_column) == (27, 45)


def test_an_unknown_character_and_a_semantic_error():
    (d,) = diagnose('tool "a" { hard deny when $ ; }')
    assert d.message.startswith("SQRT has no '$' here. Expected") and d.column == 27
    assert all(e.startswith("'") or " " in e for e in d.expected)  # terminals only, never grammar rule names
    (d,) = diagnose('tool "a" { hard deny when body.tags; }')
    assert "must be a condition" in d.message and (d.column, d.end_column) == (27, 31)


def test_empty_and_whitespace_policies_are_valid():
    assert diagnose("") == [] and diagnose("  \n// nothing\n") == []


def test_a_policy_that_ends_too_early():
    (d,) = diagnose("tool")
    assert d.message.startswith("The policy ends too early, after 'tool'.") and (d.line, d.column) == (1, 5)


def test_cedar_diagnostics():
    assert diagnose(CEDAR, "cedar") == []
    (d,) = diagnose("permit(principal, action, resource)\n\nforbid(principal, action, resource);", "cedar")
    assert d.message.startswith("Missing ';' at the end of this Cedar policy")
    assert (d.line, d.column) == (1, 36)
    (d,) = diagnose("permit(principal action, resource);", "cedar")
    assert d.language == "cedar" and "action" in d.message and (d.column, d.end_column) == (18, 24)


def test_unknown_language_and_oversized_text():
    with pytest.raises(ValueError):
        diagnose("x", "rego")
    (d,) = diagnose("x" * (MAX_POLICY_CHARS + 1))
    assert "too long" in d.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_deleting_tokens_from_a_valid_policy_never_crashes_and_gives_a_placed_diagnostic(data):
    text = data.draw(st.sampled_from(VALID + [CEDAR]))
    language = "cedar" if text is CEDAR else "sqrt"
    spans = [m.span() for m in TOKEN.finditer(text)]
    doomed = data.draw(st.sets(st.integers(0, len(spans) - 1), min_size=1, max_size=4))
    broken, last = [], 0
    for i in sorted(doomed):
        start, end = spans[i]
        broken.append(text[last:start])
        last = end
    broken = "".join(broken) + text[last:]
    found = diagnose(broken, language)
    try:
        compile_policy(broken, language)
    except ValueError:
        assert len(found) == 1, broken
        assert_well_placed(broken, found[0])
    else:
        assert found == []


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list('tool "a"{}();;=.@|&-<>rwd\n allow deny when must x y 1 ')), max_size=80
    )
)
def test_arbitrary_text_never_crashes(text):
    for d in diagnose(text):
        assert_well_placed(text, d)
