"""The official client's LangGraph executor against the live relay (lang-graph endpoint, always dual-LLM)."""

from typing import TypedDict

import pytest
from sequrity import SequrityClient
from sequrity.control import FeaturesHeader, FineGrainedConfigHeader

pytestmark = pytest.mark.live


class State(TypedDict, total=False):
    query: str
    path: str
    result: str
    log: list


def test_graph_with_two_tool_nodes_and_a_router(relay, dual_key, fake_upstream):
    from langgraph.graph import END, START, StateGraph

    calls = []

    def read_file(state: State) -> dict:
        """Read the file named in the state."""
        calls.append("read_file")
        return {"result": f"File contents of {state['path']}: Hello World", "log": ["read"]}

    def summarize(state: State) -> dict:
        """Summarize the result."""
        calls.append("summarize")
        return {"result": state["result"].upper(), "log": ["summarized"]}

    def route(state: State) -> str:
        calls.append("route")
        return "summarize" if "Hello" in state["result"] else END

    graph = StateGraph(State)
    graph.add_node("read_file", read_file)
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "read_file")
    graph.add_conditional_edges("read_file", route, {"summarize": "summarize", END: END})
    graph.add_edge("summarize", END)

    client = SequrityClient(api_key=dual_key, base_url=relay)
    result = client.control.langgraph.run(
        graph,
        {"query": "read it", "path": "/tmp/a.txt", "log": []},
        "gpt-5-mini",
        llm_api_key="sk-x",
        features=FeaturesHeader.dual_llm(),
        fine_grained_config=FineGrainedConfigHeader.dual_llm(),
        node_functions={"read_file": read_file, "summarize": summarize, "route": route},
    )
    assert calls == ["read_file", "route", "summarize"]
    assert result["result"] == "FILE CONTENTS OF /TMP/A.TXT: HELLO WORLD"
    assert result["log"] == ["read", "summarized"]
    # No LLM was needed: the program came from the client.
    assert not fake_upstream.requests
