"""The dual engine's client regular expressions (X-Config ``fsm.force_to_cache``,
``fsm.detect_tool_error_regex_pattern``) and SQRT policies go through relay.regex: RE2, linear time."""

from __future__ import annotations

import json
import time

import pytest
from dual_helpers import ChatClient, FakeLLM, make_config, py, tool

from relay.dual.toolresults import regex_error
from relay.header_documents import DocumentError, parse_document

EVIL = r"(a+)+$"
LONG_NAME = "a" * 60 + "_"  # a valid tool name on which re.fullmatch(EVIL) needs ~2**60 steps
LONG_RESULT = "a" * 100_000 + "!"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@pytest.mark.timeout(60)
def test_evil_patterns_in_dual_options_finish_fast():
    prog = py(
        f'try:\n    d = {LONG_NAME}(q="x")\nexcept ToolError:\n    d = "failed"\nfinal_return_value = d'
    )
    cfg = make_config(
        fsm={
            "max_n_turns": 2,
            "force_to_cache": [EVIL],
            "detect_tool_errors": "regex",
            "detect_tool_error_regex_pattern": EVIL,
        },
        policy=f'tool r"{EVIL}" {{ hard deny when q.value in {{str matching r"{EVIL}"}}; }}',
    )
    client = ChatClient(cfg, FakeLLM(pllm=[prog]), tools=[tool(LONG_NAME, {"q": "string"})])
    out, elapsed = timed(lambda: client.run("q", lambda n, a: LONG_RESULT))
    assert elapsed < 5, elapsed
    assert (
        json.loads(out.content)["final_return_value"]["value"] == LONG_RESULT
    )  # no error detected, no match


def test_detect_tool_error_regex_and_force_to_cache_still_match():
    assert regex_error("Error: not found", "^Error:", None) is True
    assert regex_error("ok\nError: x", "^Error:", None) is False  # search, not multiline: as with re
    assert regex_error("all good, finished\n", "finished$", None) is True  # re's $ before a final newline
    assert regex_error("x" * 10 + "Error", "Error", 5) is False  # max length
    assert regex_error("aaaa", EVIL, None) is True
    _, elapsed = timed(lambda: regex_error(LONG_RESULT, EVIL, None))
    assert elapsed < 0.5
    assert regex_error("anything", r"(a)\1", None) is False  # refused pattern: detects nothing

    prog = py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')
    docs = [tool("get_internal_document", {"doc_id": "string"})]
    client = ChatClient(
        make_config(fsm={"max_n_turns": 3, "force_to_cache": ["get_internal_.*", r"(x)\1"]}),
        FakeLLM(pllm=[prog, prog]),
        tools=docs,
    )
    calls = []
    client.run("q1", lambda n, a: calls.append(n) or "cached doc")
    out = client.ask("q2")
    assert calls == ["get_internal_document"] and out.kind == "final"


@pytest.mark.parametrize(
    "fsm, field, fragment",
    [
        ({"force_to_cache": ["ok_.*", r"(a)\1"]}, "fsm.force_to_cache[1]", "backreferences"),
        (
            {"detect_tool_error_regex_pattern": r"(?<=x)Error"},
            "fsm.detect_tool_error_regex_pattern",
            "lookahead",
        ),
        ({"detect_tool_error_regex_pattern": "(oops"}, "fsm.detect_tool_error_regex_pattern", "invalid"),
    ],
)
def test_x_config_refuses_patterns_re2_cannot_match(fsm, field, fragment):
    with pytest.raises(DocumentError) as ei:
        parse_document("config", json.dumps({"fsm": fsm}))
    text = str(ei.value)
    assert "X-Config" in text and field in text and fragment in text and "position" in text, text
    assert parse_document(
        "config",
        json.dumps({"fsm": {"force_to_cache": ["get_.*"], "detect_tool_error_regex_pattern": "^Error:"}}),
    )
