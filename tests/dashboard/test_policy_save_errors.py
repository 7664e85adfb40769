"""A policy refused at Save says where the mistake is, as the editor does (a missing ';' where it is missing)."""

from __future__ import annotations

import pytest

from apikeys.validation import DocumentsInvalid, compile_policy_document, validate_documents

MISSING_SEMICOLON = 'tool "send_email" {\n  hard deny when true\n  hard allow when false;\n}'


def test_a_missing_semicolon_is_placed_at_the_end_of_its_statement():
    message = compile_policy_document({"codes": {"code": MISSING_SEMICOLON, "language": "sqrt"}})
    assert message.startswith("codes.code: line 3, column 3: unexpected 'hard'")  # the compiler's own words
    assert "Missing ';' at the end of `hard deny when true`" in message
    assert message.endswith("line 2, column 22.)")


def test_an_error_the_compiler_already_places_is_not_repeated():
    message = compile_policy_document(
        {"codes": {"code": 'tool "x" { hard deny when ; }', "language": "sqrt"}}
    )
    assert message.startswith("codes.code: line 1, column 27: unexpected ';'")
    assert message.count("line ") == 1


def test_the_documents_error_names_the_policy_document():
    policy = {"codes": {"code": MISSING_SEMICOLON, "language": "sqrt"}}
    with pytest.raises(DocumentsInvalid) as refused:
        validate_documents("single-llm", None, policy, None)
    assert "Missing ';'" in refused.value.errors["policy"][0]
