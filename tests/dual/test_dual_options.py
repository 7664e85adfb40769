"""Limits, retries, response formats, sessions, history, LangGraph and the other fsm options."""

from __future__ import annotations

import asyncio
import json

import pytest
from dual_helpers import DOC_TOOLS, LEAK_POLICY, ChatClient, FakeLLM, make_config, py, tool

from relay.dual import DualEngine, DualError
from relay.formats.chat import decode_request

PRIME = py("final_return_value = max(n for n in range(2, 100) if all(n % d for d in range(2, n)))")


# ------------------------------------------------------------------------------------ turns / sessions


def test_max_n_turns_closes_session_and_carries_variables():
    llm = FakeLLM(pllm=[py("x = 20\nfinal_return_value = x + 1"), py("final_return_value = x * 2")])
    client = ChatClient(make_config(fsm={"max_n_turns": 2}), llm)
    first = client.ask("first")
    assert json.loads(first.content)["final_return_value"]["value"] == 21
    assert not first.session_closed and client.completed_turns == 1
    second = client.ask("second")
    assert json.loads(second.content)["final_return_value"]["value"] == 40
    assert second.session_closed and client.completed_turns == 2
    assert not second.mismatch_detected
    # the second planning call saw the variable's name and type, the first query and program
    system = llm.role_calls("pllm")[1]["system"]
    assert "- x: int" in system
    texts = [m["content"] for m in llm.role_calls("pllm")[1]["messages"]]
    assert any("first" in t for t in texts) and any("x = 20" in t for t in texts)


def test_max_n_turns_none_is_unlimited_and_exceeded_turn_fails():
    llm = FakeLLM(pllm=[PRIME] * 3)
    client = ChatClient(make_config(fsm={"max_n_turns": None}), llm)
    for _ in range(3):
        assert not client.ask("q").session_closed
    # a session kept beyond its limit (the shell should have deleted it) answers with a failure
    llm2 = FakeLLM(pllm=[PRIME])
    c2 = ChatClient(make_config(fsm={"max_n_turns": 1}), llm2)
    c2.ask("q")
    out = c2.ask("again")
    assert out.failed and out.error_code == "max_turns_exceeded" and out.session_closed


def test_the_turn_count_is_the_callers():
    # The engine numbers a new turn and checks max_n_turns with the count the caller gives, whatever
    # count an earlier version stored with the state.
    llm = FakeLLM(pllm=[PRIME])
    engine = DualEngine(make_config(fsm={"max_n_turns": 3}), session_id="s", llm=llm, models=("p", "q"))
    state: dict = {"version": 2, "turns_done": 0}
    req = decode_request({"model": "m", "messages": [{"role": "user", "content": "q"}]})
    out = asyncio.run(engine.advance(state, req, completed_turns=2))
    assert not out.failed and out.session_closed and "turns_done" not in state
    assert [e["turn"] for e in out.events if e["type"] == "final"] == [3]
    out = asyncio.run(engine.advance({}, req, completed_turns=3))
    assert out.failed and out.error_code == "max_turns_exceeded" and out.session_closed


def test_failed_turn_counts_and_session_continues():
    policy = 'tool "issue_refund" { hard deny when amount.value in {int 101..}; }'
    tools = [tool("issue_refund", {"amount": "integer"})]
    llm = FakeLLM(
        pllm=[
            py("r = issue_refund(amount=500)\nfinal_return_value = r"),
            py("r = issue_refund(amount=50)\nfinal_return_value = r"),
        ]
    )
    client = ChatClient(make_config(policy=policy, fsm={"max_n_turns": 5}), llm, tools=tools)
    out = client.ask("refund 500")
    assert out.failed and "'issue_refund' is denied by argument" in out.content and not out.session_closed
    out = client.run("refund 50", lambda n, a: "refunded")
    assert json.loads(out.content)["status"] == "success"
    assert client.completed_turns == 2


# ----------------------------------------------------------------------------------------- retries


def test_retries_on_program_errors_then_success():
    llm = FakeLLM(
        pllm=[
            py("final_return_value = (1 +"),
            py("import os\nfinal_return_value = 1"),
            py("final_return_value = [1, 2][5]"),
            "```python\nfinal_return_value = 'ok'\n```",
        ]
    )
    client = ChatClient(make_config(fsm={"max_pllm_failed_steps": 4}), llm)
    out = client.ask("do it")
    assert json.loads(out.content)["final_return_value"]["value"] == "ok"
    calls = llm.role_calls("pllm")
    assert len(calls) == 4
    assert "syntax error" in calls[1]["messages"][-1]["content"]
    assert "not allowed" in calls[2]["messages"][-1]["content"]
    # no tool data was involved: the full message is shown
    assert "IndexError: list index out of range" in calls[3]["messages"][-1]["content"]
    assert [e["attempt"] for e in out.events if e["type"] == "program"] == [1, 2, 3, 4]


def test_max_failed_steps_exceeded():
    llm = FakeLLM(pllm=[py("final_return_value = 1/0")] * 2)
    client = ChatClient(make_config(fsm={"max_pllm_failed_steps": 2}), llm)
    out = client.ask("divide")
    assert out.failed and out.error_code == "max_steps_exceeded"
    doc = json.loads(out.content)
    assert doc["error"]["message"].startswith("Maximum number of failed PLLM steps (2) reached.")
    assert "ZeroDivisionError" in doc["error"]["message"]
    assert len(llm.role_calls("pllm")) == 2


def test_max_pllm_steps_bounds_attempts():
    llm = FakeLLM(pllm=[py("final_return_value = 1/0")] * 2)
    client = ChatClient(make_config(fsm={"max_pllm_steps": 2, "max_pllm_failed_steps": 10}), llm)
    out = client.ask("divide")
    assert out.error_code == "max_steps_exceeded" and "PLLM steps (2)" in out.error_message


def test_clear_history_every_n_attempts():
    llm = FakeLLM(pllm=[py("final_return_value = 1/0")] * 3 + [PRIME])
    client = ChatClient(
        make_config(fsm={"max_pllm_failed_steps": 5, "clear_history_every_n_attempts": 2}), llm
    )
    client.ask("q")
    lengths = [len(c["messages"]) for c in llm.role_calls("pllm")]
    assert lengths == [1, 3, 1, 3]


def test_retry_on_policy_violation_replans_without_leaking():
    llm = FakeLLM(
        pllm=[
            py('d = get_internal_document(doc_id="D1")\nsend_email(to="x@gmail.com", subject="s", body=d)'),
            py('d = get_internal_document(doc_id="D1")\nfinal_return_value = "not sent"'),
        ]
    )
    client = ChatClient(
        make_config(policy=LEAK_POLICY, fsm={"retry_on_policy_violation": True}), llm, tools=DOC_TOOLS
    )
    out = client.run("send D1 to x@gmail.com", lambda n, a: "SECRET-CONTENT")
    assert json.loads(out.content)["final_return_value"]["value"] == "not sent"
    fb = llm.role_calls("pllm")[1]["messages"][-1]["content"]
    assert "denied by the security policy" in fb
    assert "SECRET-CONTENT" not in llm.pllm_inputs()


def test_max_tool_calls_per_step():
    tools = [tool("ping", {})]
    llm = FakeLLM(pllm=[py("for i in range(5):\n    ping()\nfinal_return_value = 1")])
    client = ChatClient(make_config(fsm={"max_tool_calls_per_step": 2}), llm, tools=tools)
    out = client.run("ping a lot", lambda n, a: "pong")
    assert out.failed and out.error_code == "max_tool_calls_exceeded"
    assert len([o for o in client.outcomes if o.kind == "tool_calls"]) == 2


def test_llm_error_becomes_failure_answer():
    llm = FakeLLM(pllm=[RuntimeError("upstream 502: bad gateway")])
    out = ChatClient(make_config(), llm).ask("q")
    assert out.failed and out.error_code == "llm_error"
    doc = json.loads(out.content)
    assert doc["status"] == "failure" and "bad gateway" in doc["error"]["message"]


def test_clarification_request():
    llm = FakeLLM(pllm=["CLARIFY: Which document do you mean?"])
    out = ChatClient(make_config(), llm).ask("send the document")
    assert out.error_code == "clarification_needed" and out.error_message == "Which document do you mean?"


# ------------------------------------------------------------------------------------ control flow


def test_control_flow_violation_in_custom_mode():
    presets = {
        "branching_meta_policy": {"mode": "deny", "producers": [], "tags": ["confidential"], "consumers": []}
    }
    program = """
d = get_internal_document(doc_id="D1")
if "merger" in d:
    final_return_value = "yes"
else:
    final_return_value = "no"
"""
    llm = FakeLLM(pllm=[py(program)])
    client = ChatClient(make_config(policy=LEAK_POLICY, mode="custom", presets=presets), llm, tools=DOC_TOOLS)
    out = client.run("does D1 mention a merger?", lambda n, a: "merger plans")
    assert out.failed and out.error_code == "control_flow_violation"
    assert (
        json.loads(out.content)["error"]["message"]
        == "Control flow violation detected during program execution."
    )
    # standard mode: the same program branches freely
    llm = FakeLLM(pllm=[py(program)])
    client = ChatClient(make_config(policy=LEAK_POLICY, presets=presets), llm, tools=DOC_TOOLS)
    out = client.run("does D1 mention a merger?", lambda n, a: "merger plans")
    assert json.loads(out.content)["final_return_value"]["value"] == "yes"


# --------------------------------------------------------------------------------- response format


def test_include_program_and_policy_history_on_success():
    program = 'd = get_internal_document(doc_id="D1")\nfinal_return_value = "done"\n'
    llm = FakeLLM(pllm=[py(program)])
    cfg = make_config(rf={"include_program": True, "include_policy_check_history": True})
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run("get D1", lambda n, a: "x")
    doc = json.loads(out.content)
    assert list(doc) == [
        "status",
        "final_return_value",
        "error",
        "program",
        "session_meta",
        "policy_check_history",
    ]
    assert doc["program"] == program
    [entry] = doc["policy_check_history"]
    assert entry["tool_name"] == "get_internal_document" and entry["final_verdict"] == "soft_allowed"
    assert entry["args"]["doc_id"]["value"] == "D1"


def test_strip_response_content():
    llm = FakeLLM(
        pllm=[
            py('final_return_value = "Plain answer"'),
            py('final_return_value = {"a": [1, 2]}'),
            py("final_return_value = 1/0"),
        ]
    )
    cfg = make_config(rf={"strip_response_content": True}, fsm={"max_n_turns": 5, "max_pllm_failed_steps": 1})
    client = ChatClient(cfg, llm)
    assert client.ask("q1").content == "Plain answer"
    assert client.ask("q2").content == '{"a":[1,2]}'
    out = client.ask("q3")
    assert out.failed and out.content.startswith("Maximum number of failed PLLM steps (1) reached.")


def test_namespace_snapshot_and_session_meta():
    policy = 'tool "get_internal_document" -> session @tags |= {"saw_doc"};'
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nn = 3\nfinal_return_value = n')])
    cfg = make_config(policy=policy, rf={"include_namespace_snapshot": True})
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run("q", lambda n, a: {"k": 1})
    doc = json.loads(out.content)
    assert doc["namespace_snapshot"]["d"]["value"] == {"k": 1}
    assert doc["namespace_snapshot"]["n"] == {
        "value": 3,
        "meta": {"tags": [], "consumers": ["*"], "producers": []},
    }
    assert doc["session_meta"]["meta"]["tags"] == ["saw_doc"]


def test_clear_session_meta_every_turn():
    policy = 'tool "get_internal_document" -> session @tags |= {"saw_doc"};'
    prog = py('d = get_internal_document(doc_id="D1")\nfinal_return_value = 1')
    for mode, expected in (("never", ["saw_doc"]), ("every_turn", [])):
        llm = FakeLLM(pllm=[prog, py("final_return_value = 2")])
        cfg = make_config(
            policy=policy,
            fsm={"max_n_turns": 3, "clear_session_meta": mode},
            rf={"include_policy_check_history": True},
        )
        client = ChatClient(cfg, llm, tools=DOC_TOOLS)
        client.run("q1", lambda n, a: "x")
        out = client.ask("q2")
        assert json.loads(out.content)["session_meta"]["meta"]["tags"] == expected


# ------------------------------------------------------------------------------- history mismatch


def test_history_mismatch_reject_continue_restart():
    llm = FakeLLM(pllm=[PRIME, PRIME, PRIME, PRIME])
    client = ChatClient(make_config(fsm={"max_n_turns": 5, "history_mismatch_policy": "reject"}), llm)
    client.ask("q1")
    client.messages[0]["content"] = "edited q1"
    with pytest.raises(DualError) as e:
        client.ask("q2")
    assert (
        e.value.status == 409
        and e.value.detail == "Message history does not match the stored session history"
    )

    client = ChatClient(make_config(fsm={"max_n_turns": 5}), llm)
    client.ask("q1")
    # tolerant: null content == "" and extra keys are ignored
    client.messages[1] = {"role": "assistant", "content": client.messages[1]["content"], "refusal": None}
    out = client.ask("q2")
    assert not out.mismatch_detected and "message_history_mismatch_detected" not in out.content
    client.messages[0]["content"] = "edited"
    out = client.ask("q3")
    assert out.mismatch_detected and json.loads(out.content)["message_history_mismatch_detected"] is True

    # restart_turn: a pending turn is abandoned and the newest user message planned afresh
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d'), PRIME])
    client = ChatClient(
        make_config(fsm={"max_n_turns": 5, "history_mismatch_policy": "restart_turn"}), llm, tools=DOC_TOOLS
    )
    assert client.ask("get D1").kind == "tool_calls"
    client.messages = [{"role": "user", "content": "largest prime?"}]
    out = client.send()
    assert out.kind == "final" and json.loads(out.content)["final_return_value"]["value"] == 97


def test_unexpected_and_missing_tool_results():
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')])
    client = ChatClient(make_config(), llm, tools=DOC_TOOLS)
    out = client.ask("get D1")
    client.messages.append({"role": "tool", "tool_call_id": "tc-bogus", "content": "x"})
    with pytest.raises(DualError) as e:
        client.send()
    assert e.value.status == 400 and "'tc-bogus'" in e.value.detail
    # the pending call is still answerable
    client.messages[-1]["tool_call_id"] = out.tool_calls[0].id
    assert client.send().kind == "final"
    # tool results when nothing is pending
    fresh = ChatClient(make_config(), FakeLLM())
    fresh.messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "x", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "r"},
    ]
    with pytest.raises(DualError) as e:
        fresh.send()
    assert e.value.status == 400 and "call_1" in e.value.detail


def test_continuation_may_omit_tools():
    llm = FakeLLM(
        pllm=[
            py(
                'd = get_internal_document(doc_id="D1")\ne = get_internal_document(doc_id="D2")\n'
                "final_return_value = [d, e]"
            )
        ]
    )
    client = ChatClient(make_config(), llm, tools=DOC_TOOLS)
    out = client.ask("get both")
    client.tools = []
    out = client.answer(out, lambda n, a: "one")
    assert out.kind == "tool_calls" and out.tool_calls[0].arguments == {"doc_id": "D2"}
    out = client.answer(out, lambda n, a: "two")
    assert json.loads(out.content)["final_return_value"]["value"] == ["one", "two"]


# ---------------------------------------------------------------------------------------- LangGraph

LANGGRAPH_PROGRAM = """# Module-level code - assumes initial_state is predefined
state = initial_state

# Node: classify
classify_result = classify(state=state)
for key, value in classify_result.items():
    if key in state:
        if isinstance(value, list) and isinstance(state[key], list):
            state[key].extend(value)
        else:
            state[key] = value
    else:
        state[key] = value

# Conditional routing
next_node = router(state=state)

if next_node == 'execute_query':
    # Node: execute_query
    execute_query_result = execute_query(state=state)
    for key, value in execute_query_result.items():
        if key in state and isinstance(state[key], list) and isinstance(value, list):
            state[key].extend(value)
        else:
            state[key] = value
elif next_node == 'read_file':
    # Node: read_file
    read_file_result = read_file(state=state)
    for key, value in read_file_result.items():
        if key in state and isinstance(state[key], list) and isinstance(value, list):
            state[key].extend(value)
        else:
            state[key] = value

# Extract final result for user
final_return_value = state.get('result', state)
"""


def _node_tools():
    schema = {
        "type": "object",
        "properties": {"state": {"type": "object", "description": "Current state dict"}},
        "required": ["state"],
    }
    return [
        {"type": "function", "function": {"name": n, "description": f"{n} node", "parameters": schema}}
        for n in ("classify", "router", "execute_query", "read_file")
    ]


@pytest.mark.parametrize(
    "query,expected_route,result",
    [
        ("which table has users", "execute_query", "rows for which table has users"),
        ("open the readme", "read_file", "File contents: Hello World"),
    ],
)
def test_langgraph_user_program_with_router(query, expected_route, result):
    initial = {"query": query, "messages": []}
    cfg = make_config(endpoint="lang-graph", fsm={"disable_rllm": True})
    llm = FakeLLM()  # no LLM call at all
    client = ChatClient(
        cfg,
        llm,
        tools=_node_tools(),
        extra_body={
            "user_provided_program": LANGGRAPH_PROGRAM,
            "context_vars": {
                "initial_state": {"value": initial, "meta": {"producers": [], "consumers": ["*"], "tags": []}}
            },
        },
    )
    nodes = []

    def handler(name, args):
        state = args["state"]
        nodes.append(name)
        if name == "classify":
            return {"messages": ["classified"], "route": "sql" if "table" in state["query"] else "file"}
        if name == "router":
            return "execute_query" if state["route"] == "sql" else "read_file"
        if name == "execute_query":
            return {"messages": ["queried"], "result": f"rows for {state['query']}"}
        return {"messages": ["read"], "result": "File contents: Hello World"}

    out = client.run(f"Execute the LangGraph StateGraph with initial_state: {json.dumps(initial)}.", handler)
    assert nodes == ["classify", "router", expected_route]
    doc = json.loads(out.content)
    assert doc["status"] == "success" and doc["final_return_value"]["value"] == result
    assert llm.calls == []
    # the node received the merged state
    assert client.outcomes[-2].tool_calls[0].arguments["state"]["messages"] == ["classified"]


def test_langgraph_program_error_is_execution_error():
    cfg = make_config(endpoint="lang-graph")
    client = ChatClient(
        cfg,
        FakeLLM(),
        tools=_node_tools(),
        extra_body={
            "user_provided_program": "state = initial_state\nfinal_return_value = state['missing']\n",
            "context_vars": {
                "initial_state": {"value": {}, "meta": {"producers": [], "consumers": ["*"], "tags": []}}
            },
        },
    )
    out = client.ask("run")
    assert out.failed and out.error_code == "execution_error" and "KeyError" in out.error_message


# ------------------------------------------------------------------------------- tool filtering etc.


def test_tool_filtering_with_tllm_and_fallback():
    tools = [tool(f"tool_{i}", {"x": "string"}, f"does thing {i}") for i in range(12)]
    llm = FakeLLM(tllm=[{"tools": ["tool_3", "nonexistent"]}], pllm=[PRIME])
    ChatClient(make_config(), llm, tools=tools).ask("use tool 3")
    system = llm.role_calls("pllm")[0]["system"]
    assert "def tool_3(" in system and "def tool_4(" not in system
    assert llm.role_calls("tllm")[0]["json_schema"]["required"] == ["tools"]
    # a bad reply (or a failing TLLM) keeps every tool
    llm = FakeLLM(tllm=["garbage"], pllm=[PRIME])
    ChatClient(make_config(), llm, tools=tools).ask("q")
    assert all(f"def tool_{i}(" in llm.role_calls("pllm")[0]["system"] for i in range(12))
    # below the threshold no TLLM call
    llm = FakeLLM(pllm=[PRIME])
    ChatClient(make_config(fsm={"min_num_tools_for_filtering": 20}), llm, tools=tools).ask("q")
    assert llm.role_calls("tllm") == []


def test_enabled_internal_tools_empty():
    llm = FakeLLM(pllm=[py('final_return_value = parse_with_ai(query="x", output_schema={})'), PRIME])
    out = ChatClient(make_config(fsm={"enabled_internal_tools": []}), llm).ask("q")
    assert "parse_with_ai" not in llm.role_calls("pllm")[0]["system"]
    assert json.loads(out.content)["final_return_value"]["value"] == 97  # NameError -> re-plan


def test_tool_error_results_and_wrap_tool_result():
    prog = py(
        'try:\n    d = get_internal_document(doc_id="D1")\nexcept ToolError:\n    d = "failed"\nfinal_return_value = d'
    )
    llm = FakeLLM(pllm=[prog])
    client = ChatClient(
        make_config(fsm={"detect_tool_errors": "regex", "detect_tool_error_regex_pattern": "^Error:"}),
        llm,
        tools=DOC_TOOLS,
    )
    out = client.run("q", lambda n, a: "Error: not found")
    assert json.loads(out.content)["final_return_value"]["value"] == "failed"

    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')])
    client = ChatClient(make_config(fsm={"wrap_tool_result": True}), llm, tools=DOC_TOOLS)
    out = client.run("q", lambda n, a: {"a": 1})
    assert json.loads(out.content)["final_return_value"]["value"] == {"ok": True, "value": {"a": 1}}


def test_manual_wrapper_and_strict_parsing():
    wrapper = {
        "value": "public text",
        "meta": {"producers": ["web"], "consumers": ["*"], "tags": []},
        "is_sequrity_var": True,
        "combine_meta": "replace",
    }
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')])
    out = ChatClient(make_config(), llm, tools=DOC_TOOLS).run("q", lambda n, a: wrapper)
    frv = json.loads(out.content)["final_return_value"]
    assert frv == {"value": "public text", "meta": {"tags": [], "consumers": ["*"], "producers": ["web"]}}

    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')])
    out = ChatClient(make_config(fsm={"strict_tool_result_parsing": True}), llm, tools=DOC_TOOLS).run(
        "q", lambda n, a: {"a": 1}
    )
    assert json.loads(out.content)["final_return_value"]["value"] == '{"a": 1}'


def test_codex_transform_and_exit_code_error():
    prog = py('try:\n    r = shell(cmd="ls")\nexcept ToolError:\n    r = "failed"\nfinal_return_value = r')
    tools = [tool("shell", {"cmd": "string"})]
    for content, expected in (
        ("Exit code: 0\nWall time: 0.1 seconds\nOutput:\nfile.txt\n", "file.txt\n"),
        ("Exit code: 2\nWall time: 0.1 seconds\nOutput:\nboom\n", "failed"),
    ):
        llm = FakeLLM(pllm=[prog])
        cfg = make_config(fsm={"tool_result_transform": "codex", "detect_tool_errors": "regex"})
        out = ChatClient(cfg, llm, tools=tools).run("ls", lambda n, a, c=content: c)
        assert json.loads(out.content)["final_return_value"]["value"] == expected


def test_force_to_cache_reuses_result_across_turns():
    prog = py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')
    llm = FakeLLM(pllm=[prog, prog])
    client = ChatClient(
        make_config(fsm={"max_n_turns": 3, "force_to_cache": ["get_internal_.*"]}), llm, tools=DOC_TOOLS
    )
    calls = []
    client.run("q1", lambda n, a: calls.append(n) or "cached doc")
    out = client.ask("q2")
    assert out.kind == "final" and calls == ["get_internal_document"]
    assert json.loads(out.content)["final_return_value"]["value"] == "cached doc"


def test_multistep_planning_with_complete_turn():
    llm = FakeLLM(
        pllm=[
            py('d = get_internal_document(doc_id="D1")'),
            py("final_return_value = len(d)\ncomplete_turn()"),
        ]
    )
    cfg = make_config(
        fsm={"enable_multistep_planning": True, "enabled_internal_tools": ["parse_with_ai", "complete_turn"]}
    )
    calls = []
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run("length of D1", lambda n, a: calls.append(n) or "abcd")
    assert calls == ["get_internal_document"]  # the second step reuses `d`, no second call
    assert json.loads(out.content)["final_return_value"]["value"] == 4
    second = llm.role_calls("pllm")[1]
    # the variable is listed, but its type depends on tool data and is withheld (fixed vocabulary)
    assert (
        "- d: (type withheld: depends on tool data)" in second["system"] and "abcd" not in llm.pllm_inputs()
    )


def test_n_pllm_plans_picks_a_parsing_candidate():
    llm = FakeLLM(pllm=[py("final_return_value = (("), PRIME])
    out = ChatClient(make_config(fsm={"n_pllm_plans": 2}), llm).ask("q")
    assert json.loads(out.content)["final_return_value"]["value"] == 97
    assert len(llm.role_calls("pllm")) == 2


def test_guardrails_hook_tags_and_redacts_results():
    cfg = make_config()
    cfg["features"] = {
        "classifiers": [{"name": "pii_redaction", "threshold": 0.5, "mode": None}],
        "blockers": [],
    }
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')])
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run("q", lambda n, a: "Contact jane.doe@example.com now")
    frv = json.loads(out.content)["final_return_value"]
    assert "jane.doe@example.com" not in frv["value"] and "pii" in frv["meta"]["tags"]
    assert any(e["type"] == "guardrail" for e in out.events)


def test_request_without_user_message_is_rejected():
    engine = DualEngine(make_config(), session_id="s", llm=FakeLLM(), models=("a", "b"))
    req = decode_request({"model": "m", "messages": [{"role": "system", "content": "hi"}]})
    with pytest.raises(DualError) as e:
        asyncio.run(engine.advance({}, req, completed_turns=0))
    assert e.value.status == 400


def test_verify_hypothesis_and_set_policy():
    prog = py("""
d = get_internal_document(doc_id="D1")
ok = verify_hypothesis(hypothesis="The document is a dict with a 'title' key", data=d)
set_policy(code='tool "send_email" { hard deny always; }')
try:
    send_email(to="a@b.c", subject="s", body="hello")
    sent = True
except ToolError:
    sent = False
final_return_value = ok
""")
    llm = FakeLLM(pllm=[prog], qllm=[{"holds": True}])
    cfg = make_config(fsm={"enabled_internal_tools": ["parse_with_ai", "verify_hypothesis", "set_policy"]})
    client = ChatClient(cfg, llm, tools=DOC_TOOLS)
    out = client.run("check D1", lambda n, a: {"title": "x"})
    # the policy added by the program denies the e-mail (a denial ends the turn)
    assert out.failed and out.error_code == "policy_violation" and "'send_email' is denied" in out.content
    assert "hard deny always" in client.state["added_policy"]
    assert "The document is a dict" in llm.role_calls("qllm")[0]["messages"][0]["content"]


def test_set_policy_refuses_tool_derived_text():
    prog = py("""
d = get_internal_document(doc_id="D1")
try:
    set_policy(code=d)
    final_return_value = "set"
except ToolError:
    final_return_value = "refused"
""")
    llm = FakeLLM(pllm=[prog])
    cfg = make_config(fsm={"enabled_internal_tools": ["set_policy"]})
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run(
        "q", lambda n, a: 'tool "send_email" { must allow always; }'
    )
    assert json.loads(out.content)["final_return_value"]["value"] == "refused"


def test_responses_delta_and_messages_apis():
    from relay.formats import messages as msgs
    from relay.formats import responses as resp

    prog = py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d')
    cfg = make_config(fsm={"max_n_turns": 2})
    fn_tools = [
        {"type": "function", "name": t["function"]["name"], "parameters": t["function"]["parameters"]}
        for t in DOC_TOOLS
    ]
    # Responses: the continuation sends only the function_call_output plus previous_response_id, no tools
    llm = FakeLLM(pllm=[prog])
    state: dict = {}
    engine = DualEngine(cfg, session_id="s1", llm=llm, models=("p", "q"))
    out = asyncio.run(
        engine.advance(
            state,
            resp.decode_request({"model": "m", "input": "get D1", "tools": fn_tools}),
            completed_turns=0,
        )
    )
    call_id = out.tool_calls[0].id
    engine = DualEngine(cfg, session_id="s1", llm=llm, models=("p", "q"))
    out = asyncio.run(
        engine.advance(
            state,
            resp.decode_request(
                {
                    "model": "m",
                    "previous_response_id": "resp_1",
                    "input": [{"type": "function_call_output", "call_id": call_id, "output": "doc text"}],
                }
            ),
            completed_turns=0,
        )
    )
    assert out.kind == "final" and json.loads(out.content)["final_return_value"]["value"] == "doc text"
    assert not out.mismatch_detected

    # Messages: tool_result blocks in a user message
    llm = FakeLLM(pllm=[prog])
    state = {}
    tools = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in DOC_TOOLS]
    history = [{"role": "user", "content": "get D1"}]
    engine = DualEngine(cfg, session_id="s2", llm=llm, models=("p", "q"))
    out = asyncio.run(
        engine.advance(
            state,
            msgs.decode_request({"model": "m", "max_tokens": 100, "messages": history, "tools": tools}),
            completed_turns=0,
        )
    )
    call = out.tool_calls[0]
    history += [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "doc"}]},
    ]
    engine = DualEngine(cfg, session_id="s2", llm=llm, models=("p", "q"))
    out = asyncio.run(
        engine.advance(
            state,
            msgs.decode_request({"model": "m", "max_tokens": 100, "messages": history, "tools": tools}),
            completed_turns=0,
        )
    )
    assert json.loads(out.content)["final_return_value"]["value"] == "doc"
    assert not out.mismatch_detected


def test_new_user_message_abandons_pending_turn():
    llm = FakeLLM(pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = d'), PRIME])
    client = ChatClient(make_config(fsm={"max_n_turns": 1}), llm, tools=DOC_TOOLS)
    assert client.ask("get D1").kind == "tool_calls"
    out = client.ask("never mind: largest prime below 100?")
    assert json.loads(out.content)["final_return_value"]["value"] == 97
    assert out.session_closed and client.completed_turns == 1


def test_n_pllm_plans_candidate_models_and_selection():
    other = py("final_return_value = 89")
    llm = FakeLLM(pllm=[PRIME, other, {"choice": 1, "reason": "second is better"}])
    cfg = make_config(fsm={"n_pllm_plans": 2, "pllm_candidate_models": ["model-a", "model-b"]})
    out = ChatClient(cfg, llm).ask("q")
    assert json.loads(out.content)["final_return_value"]["value"] == 89
    drafts = llm.role_calls("pllm")[:2]
    assert sorted(c.get("model") for c in drafts) == ["model-a", "model-b"]
    assert llm.role_calls("pllm")[2]["json_schema"]["properties"]["choice"]["maximum"] == 1


def test_policy_writes_to_argument_metadata_reach_the_program_variable():
    """SQRT ``x.F`` targets in a result block retag the variable that was passed as argument x."""
    policy = 'tool "get_internal_document" { result { doc_id.tags |= {"looked_up"}; } }'
    program = py('key = "DOC1"\ndoc = get_internal_document(doc_id=key)\nfinal_return_value = key')
    llm = FakeLLM(pllm=[program])
    out = ChatClient(make_config(policy=policy), llm, tools=DOC_TOOLS).run("q", lambda n, a: "contents")
    frv = json.loads(out.content)["final_return_value"]
    assert frv["value"] == "DOC1" and "looked_up" in frv["meta"]["tags"]


PII_FEATURES = {"classifiers": [{"name": "pii_redaction", "threshold": 0.5, "mode": None}], "blockers": []}


def test_guardrails_cover_what_the_quarantined_llm_sees():
    """parse_with_ai input from client context variables (not a tool result) is redacted before the QLLM
    sees it, like every message the relay sends to an LLM."""
    cfg = make_config(endpoint="lang-graph", fsm={"disable_rllm": True})
    cfg["features"] = PII_FEATURES
    prog = (
        'r = parse_with_ai(query=str(initial_state), output_schema={"type": "object", '
        '"properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})\nfinal_return_value = r'
    )
    llm = FakeLLM(qllm=[{"ok": True}])
    initial = {"note": "mail jane.doe@example.com, card 4111 1111 1111 1111"}
    client = ChatClient(
        cfg,
        llm,
        extra_body={
            "user_provided_program": prog,
            "context_vars": {
                "initial_state": {"value": initial, "meta": {"producers": [], "consumers": ["*"], "tags": []}}
            },
        },
    )
    out = client.ask("summarise")
    assert json.loads(out.content)["status"] == "success"
    seen = json.dumps(llm.role_calls("qllm"))
    assert "jane.doe@example.com" not in seen and "4111 1111 1111 1111" not in seen


def test_guardrails_cover_the_tool_error_detector():
    cfg = make_config(fsm={"detect_tool_errors": "llm", "disable_rllm": True})
    cfg["features"] = PII_FEATURES
    llm = FakeLLM(
        pllm=[py('d = get_internal_document(doc_id="D1")\nfinal_return_value = "ok"')],
        tool_result_error_detector_llm=[{"is_error": False}],
    )
    out = ChatClient(cfg, llm, tools=DOC_TOOLS).run("q", lambda n, a: "write to jane.doe@example.com")
    assert json.loads(out.content)["status"] == "success"
    detector = llm.role_calls("tool_result_error_detector_llm")
    assert detector and "jane.doe@example.com" not in json.dumps(detector)
