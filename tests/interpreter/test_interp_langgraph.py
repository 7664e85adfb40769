"""LangGraph-shaped programs (control-api.md §14.2), driven through suspend/resume like the relay does."""

from __future__ import annotations

import json

import pytest
from interp_helpers import TOOL_META, M

from relay.interpreter import ReplayHost, ToolSpec, run_program
from relay.meta import ValueWithMeta

PROGRAM = """# Module-level code - assumes initial_state is predefined
state = initial_state

# Node: classify
classify_result = classify(state=state)
# Update state
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
    # Update state
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


def classify(state):
    return {"messages": ["classified"], "route": "sql" if "table" in state["query"] else "file"}


def router(state):
    return "execute_query" if state["route"] == "sql" else "read_file"


def execute_query(state):
    return {"messages": ["queried"], "result": f"rows for {state['query']}"}


def read_file(state):
    return {"messages": ["read"], "result": "File contents: Hello World"}


NODES = {"classify": classify, "router": router, "execute_query": execute_query, "read_file": read_file}
STATE_SCHEMA = {"type": "object", "properties": {"state": {"type": "object"}}, "required": ["state"]}
TOOLS = {name: ToolSpec.from_json_schema(name, STATE_SCHEMA, fn.__doc__) for name, fn in NODES.items()}


def drive(program, initial_state, nodes=NODES, tools=TOOLS, result_meta=TOOL_META, check_branch=None):
    """The relay + client loop: run; on suspension execute the node client-side with the JSON arguments,
    append its JSON-decoded result to the record, resume by replay."""
    record: list = []
    seen_states = []
    for _ in range(50):
        host = ReplayHost(record, check_branch=check_branch)
        r = run_program(
            program, tools=tools, host=host, context_vars={"initial_state": ValueWithMeta(initial_state)}
        )
        if r.status != "suspended":
            return r, seen_states
        s = r.suspended
        arguments = json.loads(json.dumps({k: v.value for k, v in s.kwargs.items()}))  # over the wire
        assert set(arguments) == {"state"}
        seen_states.append((s.tool_name, arguments["state"]))
        out = nodes[s.tool_name](arguments["state"])
        record = host.recorded + [ValueWithMeta(json.loads(json.dumps(out)), result_meta)]
    raise AssertionError("did not finish")


def test_langgraph_program_file_route():
    r, seen = drive(PROGRAM, {"query": "read the file", "messages": ["start"]})
    assert r.status == "success", r.error
    assert r.final_return_value.value == "File contents: Hello World"
    assert [n for n, _ in seen] == ["classify", "router", "read_file"]
    # in-place list extension of the shared state is visible to later nodes
    assert seen[1][1] == {"query": "read the file", "messages": ["start", "classified"], "route": "file"}
    assert r.namespace["state"].value["messages"] == ["start", "classified", "read"]
    assert r.namespace["initial_state"].value == r.namespace["state"].value  # same dict, mutated in place
    assert "__non_executable" in r.final_return_value.meta.tags


def test_langgraph_program_sql_route():
    r, seen = drive(PROGRAM, {"query": "count rows in table users", "messages": []})
    assert r.status == "success"
    assert r.final_return_value.value == "rows for count rows in table users"
    assert [n for n, _ in seen] == ["classify", "router", "execute_query"]


def test_langgraph_final_value_defaults_to_state():
    prog = PROGRAM.replace("state.get('result', state)", "state.get('missing', state)")
    r, _ = drive(prog, {"query": "x", "messages": []})
    assert r.final_return_value.value["route"] == "file"


def test_branching_on_router_results_allowed_by_default_policy():
    # standard mode: the default branching policy has empty deny lists -> never matches
    r, _ = drive(PROGRAM, {"query": "x", "messages": []}, check_branch=lambda m: None)
    assert r.status == "success"
    # a policy denying tool-derived data in conditions stops at the first branch on a node result
    r, _ = drive(
        PROGRAM,
        {"query": "x", "messages": []},
        check_branch=lambda m: "denied" if "__non_executable" in m.tags else None,
    )
    assert r.status == "control_flow_violation"


def test_initial_state_meta_is_carried():
    cm = M("user-data", producers=("client",))
    host = ReplayHost(
        [ValueWithMeta({"messages": ["m"]}), ValueWithMeta("read_file"), ValueWithMeta({"result": "r"})]
    )
    r = run_program(
        PROGRAM,
        tools=TOOLS,
        host=host,
        context_vars={"initial_state": ValueWithMeta({"query": "q", "messages": []}, cm)},
    )
    assert r.status == "success"
    assert "user-data" in r.final_return_value.meta.tags


def test_with_the_client_code_generator():
    lg = pytest.importorskip("langgraph.graph")
    executor_mod = pytest.importorskip("sequrity.control.resources.langgraph._executor")
    from typing import TypedDict

    class S(TypedDict, total=False):
        query: str
        messages: list
        route: str
        result: str

    g = lg.StateGraph(S)
    g.add_node("classify", classify)
    g.add_node("execute_query", execute_query)
    g.add_node("read_file", read_file)
    g.add_edge(lg.START, "classify")
    g.add_conditional_edges("classify", router, {"execute_query": "execute_query", "read_file": "read_file"})
    g.add_edge("execute_query", lg.END)
    g.add_edge("read_file", lg.END)
    ex = executor_mod.LangGraphExecutor(g, node_functions=NODES)
    code = ex.generated_code
    assert "state = initial_state" in code and "next_node = router(state=state)" in code
    tools = {}
    for t in ex.build_tool_definitions():
        f = t["function"]
        tools[f["name"]] = ToolSpec.from_json_schema(f["name"], f["parameters"], f["description"])

    def client_node(name):
        def run_node(state):
            call = {"function": {"name": name, "arguments": json.dumps({"state": state})}}
            return ex.execute_tool_call(call)

        return run_node

    nodes = {name: client_node(name) for name in NODES}
    r, seen = drive(code, {"query": "show table", "messages": ["hi"]}, nodes=nodes, tools=tools)
    assert r.status == "success", (r.error, code)
    assert r.final_return_value.value == "rows for show table"
    assert r.namespace["state"].value["messages"] == ["hi", "classified", "queried"]
