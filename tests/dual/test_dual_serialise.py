"""Through the dual engine: a value JSON cannot carry never breaks the answer. The program that returns or
passes one fails as a program error the planner is told about (and can fix); the answer is always strict
JSON (no bare NaN) in the API's shape; predefined datetime names are the classes."""

from __future__ import annotations

import json

import pytest
from dual_helpers import DOC_TOOLS, ChatClient, FakeLLM, make_config, py

from relay.dual.result import build_result, render_content
from relay.meta import Meta, ValueWithMeta


def strict(content: str):
    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(content, parse_constant=refuse)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("final_return_value = 2 ** 20000", "integer too large (more than 4300 digits)"),
        ("final_return_value = float('nan')", "NaN (not a number)"),
        ("final_return_value = {'total': [1.5, float('inf')]}", "infinity"),
    ],
)
def test_unrepresentable_final_value_is_a_program_error_the_planner_fixes(bad, reason):
    llm = FakeLLM(pllm=[py(bad), py("final_return_value = 'fixed'")])
    client = ChatClient(make_config(), llm)
    out = client.ask("Compute it")
    doc = strict(out.content)
    assert doc["status"] == "success" and doc["final_return_value"]["value"] == "fixed"
    retry = "\n".join(m["content"] for m in llm.role_calls("pllm")[1]["messages"])
    assert f"final_return_value cannot be represented as JSON: {reason}" in retry


def test_unrepresentable_final_value_every_time_ends_in_a_json_failure():
    llm = FakeLLM(pllm=[py("x = 1\nfinal_return_value = float('nan')")] * 10)
    client = ChatClient(make_config(rf={"include_namespace_snapshot": True}), llm)
    out = client.ask("Compute it")
    assert out.kind == "final" and out.failed
    doc = strict(out.content)
    assert doc["status"] == "failure" and doc["final_return_value"] is None
    assert "final_return_value cannot be represented as JSON: NaN" in doc["error"]["message"]
    assert (
        doc["namespace_snapshot"]["final_return_value"]["value"]
        == "<unserializable value: NaN (not a number)>"
    )


def test_unrepresentable_tool_argument_is_a_program_error_and_no_call_is_made():
    bad = (
        "x = 2 ** 20000\nsend_email(to='a@trustedcorp.com', subject='n', body=x)\nfinal_return_value = 'sent'"
    )
    good = "final_return_value = 'not sent'"
    llm = FakeLLM(pllm=[py(bad), py(good)])
    client = ChatClient(make_config(), llm, tools=DOC_TOOLS)
    out = client.ask("Send it")
    assert out.kind == "final"  # no tool call reached the client
    assert strict(out.content)["final_return_value"]["value"] == "not sent"
    retry = "\n".join(m["content"] for m in llm.role_calls("pllm")[1]["messages"])
    assert "a tool argument cannot be represented as JSON: integer too large" in retry


def test_namespace_snapshot_with_unrepresentable_values_is_strict_json():
    program = "a = float('nan')\nb = 2 ** 20000\nc = [float('-inf')]\nd = {float('nan'): 1}\nfinal_return_value = 'ok'"
    llm = FakeLLM(pllm=[py(program)])
    cfg = make_config(rf={"include_namespace_snapshot": True, "include_program": True})
    out = ChatClient(cfg, llm).ask("Go")
    doc = strict(out.content)
    ns = doc["namespace_snapshot"]
    assert ns["a"]["value"] == "<unserializable value: NaN (not a number)>"
    assert ns["b"]["value"] == "<unserializable value: integer too large (more than 4300 digits)>"
    assert ns["c"]["value"] == "<unserializable value: infinity>"
    assert ns["d"]["value"] == {"NaN": 1}


def test_stripped_content_is_strict_json_too():
    llm = FakeLLM(pllm=[py("final_return_value = [1, 2.5, 'x']")])
    out = ChatClient(make_config(rf={"strip_response_content": True}), llm).ask("Go")
    assert strict(out.content) == [1, 2.5, "x"]


@pytest.mark.parametrize("strip", [False, True])
def test_rendering_never_writes_bare_nan_whatever_it_is_given(strip):
    final = ValueWithMeta(
        [float("nan"), float("inf"), 2**20000, {2**20000: -float("inf")}, range(2**20000)], Meta()
    )
    doc = build_result(
        status="success",
        final=final,
        error=None,
        response_format={},
        program=None,
        namespace=None,
        session_meta=Meta(),
        policy_history=[],
        policy_failure=False,
        mismatch=False,
    )
    value = strict(render_content(doc, strip=strip))
    value = value if strip else value["final_return_value"]["value"]
    assert value[:3] == [
        "<unserializable value: NaN (not a number)>",
        "<unserializable value: infinity>",
        "<unserializable value: integer too large (more than 4300 digits)>",
    ]


def test_programs_use_the_datetime_classes():
    program = """
d = datetime.strptime("2024-03-01 09:30", "%Y-%m-%d %H:%M")
start = datetime(2024, 2, 28)
final_return_value = {"iso": d.isoformat(), "days": (d - start).days, "next": (date(2024, 2, 28) + timedelta(days=2)).isoformat()}
"""
    out = ChatClient(make_config(), FakeLLM(pllm=[py(program)])).ask("When?")
    assert strict(out.content)["final_return_value"]["value"] == {
        "iso": "2024-03-01T09:30:00",
        "days": 2,
        "next": "2024-03-01",
    }


def test_invalid_strptime_format_is_a_program_error_the_planner_fixes():
    bad = "d = datetime.strptime('2024-03-01 2024', '%Y-%m-%d %Y')\nfinal_return_value = d.year"
    good = "d = datetime.strptime('2024-03-01', '%Y-%m-%d')\nfinal_return_value = d.year"
    llm = FakeLLM(pllm=[py(bad), py(good)])
    out = ChatClient(make_config(), llm).ask("Which year?")
    assert strict(out.content)["final_return_value"]["value"] == 2024
    retry = "\n".join(m["content"] for m in llm.role_calls("pllm")[1]["messages"])
    assert "ValueError" in retry and "internal" not in retry
