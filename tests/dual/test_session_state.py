"""The engine's stored session state: typed, stored with readable names, and sessions stored in the first
format (``"v": 1``, short keys) go on after a deploy exactly as they would have.

``data/session_state_v1.json`` was recorded with the engine that wrote the first format: a Chat Completions
session (``config`` there; the document tools of ``dual_helpers``) whose planner first writes a failing
program, then one that calls ``set_policy`` and fetches documents A and B (``force_to_cache`` on), and in a
second turn fetches A again (a cache hit) next to the first turn's variable ``a``. It holds the state while
the first turn waits for B's result, and between the turns, with the requests that followed and the answers
that engine gave.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from dual_helpers import ChatClient, FakeLLM, make_config

from relay.dual.state import DualState, PendingCall, RecordedResult, TurnState
from relay.meta import DEFAULT_META, Meta, ValueWithMeta

RECORDED = json.loads((Path(__file__).parent / "data" / "session_state_v1.json").read_text())
NEW_KEYS = {
    "version",
    "session_meta",
    "history",
    "tools",
    "variables",
    "past_turns",
    "added_policy",
    "tool_result_cache",
    "turn",
}
NEW_TURN_KEYS = {
    "number",
    "query",
    "allowed_tools",
    "attempt",
    "failed_attempts",
    "program",
    "user_program",
    "context_vars",
    "recorded",
    "pending_call",
    "rejected_programs",
    "completed_steps",
    "policy_checks",
}


def _client(case: dict, llm: FakeLLM) -> ChatClient:
    client = ChatClient(
        make_config(**RECORDED["config"]), llm, tools=RECORDED["tools"], session_id="s-old-format"
    )
    client.state = copy.deepcopy(case["state"])
    # The relay's session state counted the turns next to this one (``turns``), as many as it stored here.
    client.completed_turns = case["state"]["turns_done"]
    client.messages = copy.deepcopy(case["messages"])
    return client


def _summary(out) -> dict:
    return {
        "kind": out.kind,
        "content": out.content,
        "failed": out.failed,
        "error_code": out.error_code,
        "tool_calls": [[c.name, c.arguments] for c in out.tool_calls],
        "session_closed": out.session_closed,
    }


def test_a_turn_stored_in_the_first_format_takes_its_tool_result():
    case = RECORDED["waiting_for_a_tool_result"]
    assert case["state"]["v"] == 1 and case["state"]["turn"]["pend"]
    client = _client(case, FakeLLM())  # a continuation: no LLM call
    out = client.send()
    assert _summary(out) == case["outcome"]
    assert out.kind == "final" and not out.failed and "beta" in out.content
    # stored again in the current format, with readable names
    assert set(client.state) == NEW_KEYS and client.state["version"] == 2
    assert client.state["turn"] is None and client.completed_turns == 1
    assert "hard deny always" in client.state["added_policy"]


def test_a_session_stored_between_turns_in_the_first_format_plans_with_its_past():
    case = RECORDED["between_turns"]
    assert case["state"]["v"] == 1 and case["state"]["past"] and case["state"]["cache"]
    llm = FakeLLM(pllm=[case["pllm_reply"]])
    client = _client(case, llm)
    out = client.ask("And A with the earlier A")
    assert _summary(out) == case["outcome"]
    call = llm.role_calls("pllm")[0]
    assert {"system": call["system"], "messages": call["messages"]} == case["pllm_call"]
    # the cached result of A answered the call (no tool call went to the client)
    assert [e["cached"] for e in out.events if e["type"] == "tool_result"] == [True]
    assert client.completed_turns == 2 and len(client.state["past_turns"]) == 2


def test_both_formats_read_into_the_same_state():
    for case in (RECORDED["waiting_for_a_tool_result"], RECORDED["between_turns"]):
        first = DualState.from_json(case["state"])
        stored = json.loads(json.dumps(first.to_json()))
        assert set(stored) == NEW_KEYS
        if stored["turn"] is not None:
            assert set(stored["turn"]) == NEW_TURN_KEYS
        assert DualState.from_json(stored) == first
        assert DualState.from_json(stored).to_json() == stored


def test_the_waiting_turn_reads_with_readable_names():
    turn = DualState.from_json(RECORDED["waiting_for_a_tool_result"]["state"]).turn
    assert isinstance(turn, TurnState)
    assert (turn.number, turn.attempt, turn.failed_attempts, turn.user_program) == (1, 2, 1, False)
    assert [r.tool for r in turn.recorded] == ["set_policy", "get_internal_document"]
    assert turn.recorded[1].value == {"title": "alpha"} and "confidential" in turn.recorded[1].meta.tags
    assert turn.pending_call is not None and turn.pending_call.index == 2
    assert turn.pending_call.args == {"doc_id": ValueWithMeta("B", DEFAULT_META)}
    assert [e.program for e in turn.rejected_programs] == ["x = undefined_name\nfinal_return_value = x\n"]
    assert "NameError" in turn.rejected_programs[0].feedback
    assert [c["tool_name"] for c in turn.policy_checks] == [
        "set_policy",
        "get_internal_document",
        "get_internal_document",
    ]


def test_first_format_entries_with_every_field():
    tagged = [["secret"], ["*"], ["get"]]
    recorded = RecordedResult.from_json(["get", 0, "failed", tagged, {"x": tagged}])
    meta = Meta(tags=frozenset({"secret"}), producers=frozenset({"get"}))
    assert recorded == RecordedResult("get", False, "failed", meta, {"x": meta})
    assert RecordedResult.from_json(recorded.to_json()) == recorded
    assert RecordedResult.from_json(["get", 1, 3, None, {}]).arg_meta is None
    pending = PendingCall.from_json({"i": 0, "tool": "get", "id": "tc-1", "args": {"k": ["v", tagged]}})
    assert pending == PendingCall(0, "get", "tc-1", {"k": ValueWithMeta("v", meta)})
    turn = TurnState.from_json(
        {
            "n": 3,
            "q": "q",
            "tools": ["get"],
            "att": 2,
            "fail": 0,
            "prog": "p",
            "user": True,
            "ctx": {"a": [1, None]},
            "rec": [],
            "pend": None,
            "fb": [],
            "steps": [["s", "f"]],
            "pch": [],
        }
    )
    assert (
        turn.allowed_tools == ["get"]
        and turn.user_program
        and turn.context_vars == {"a": ValueWithMeta(1, DEFAULT_META)}
    )
    assert [(e.program, e.feedback) for e in turn.completed_steps] == [("s", "f")]


def test_an_unknown_or_missing_state_starts_fresh():
    assert DualState.from_json({}) == DualState()
    assert DualState.from_json(None) == DualState()
    assert DualState.from_json({"v": 7, "turns_done": 3}) == DualState()
    assert DualState.from_json({"version": 9, "turns_done": 3}) == DualState()
