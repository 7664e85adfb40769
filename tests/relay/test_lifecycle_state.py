"""The typed session state reads every state the store holds (sessions outlive deploys) and writes the same
shape back."""

from __future__ import annotations

import json

from relay.lifecycle.state import SessionState
from relay.meta import DEFAULT_META, Meta
from relay.toolcalls.policy import CalledTool

CONFIG = {"arch": "single-llm", "features": {"classifiers": [], "blockers": []}, "policy": {}, "fsm": {}}

STORED_BEFORE_THE_TYPED_STATE = {  # as relay/pipeline.py's new_state wrote it, after a few requests
    "key_id": 7,
    "user_id": 3,
    "config": CONFIG,
    "api": "chat",
    "provider": "openai",
    "endpoint_type": "chat",
    "created": 1765000000.5,
    "turns": 2,
    "seq": 9,
    "closed": False,
    "status": "open",
    "session_meta": {"tags": ["pii"], "consumers": ["*"], "producers": []},
    "id_map": {"tc-a": "call_1"},
    "pending": {"tc-a": {"tool": "send", "args": {"to": "x"}}},
    "byok": None,
    "awaiting_tool_results": False,
    "tool_filter": ["send"],
    "denied_in_turn": True,
    "guard_memo": {"v": 2, "fp": "f", "e": {}, "n": 0},
    "dual": {"v": 1, "turns_done": 2},
}


def test_a_state_stored_by_an_earlier_version_reads_and_writes_back_unchanged():
    state = SessionState.from_json(json.loads(json.dumps(STORED_BEFORE_THE_TYPED_STATE)))
    assert state.turns == 2 and state.session_meta == Meta().with_tags("pii")
    assert state.pending == {"tc-a": CalledTool("send", {"to": "x"})} and state.policy_version is None
    assert state.memo_holder["guard_memo"]["v"] == 2 and state.dual == {"v": 1, "turns_done": 2}
    assert state.to_json() == {**STORED_BEFORE_THE_TYPED_STATE, "policy_version": None}


def test_missing_keys_take_their_defaults_and_unknown_keys_are_kept():
    state = SessionState.from_json({"key_id": 1, "user_id": 1, "config": CONFIG, "from_a_newer_relay": [1]})
    assert state.session_meta == DEFAULT_META and state.pending == {} and state.status == "open"
    assert state.to_json()["from_a_newer_relay"] == [1]


def test_a_new_session_writes_no_optional_keys():
    state = SessionState(
        key_id=1, user_id=1, config=CONFIG, api="chat", provider="openai", endpoint_type="chat"
    )
    stored = state.to_json()
    assert not {"error_reason", "auto_gen", "denied_in_turn", "tool_filter", "dual", "guard_memo"} & set(
        stored
    )
    assert SessionState.from_json(stored) == state
