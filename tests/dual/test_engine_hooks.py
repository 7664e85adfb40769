"""The two hooks the relay extends (``relay.architectures.dual_llm``): every program run goes through
``DualEngine._run`` and every recorded tool result through ``DualEngine._record``, the latter just before
its ``tool_result`` event (the relay logs the recorded value with that event)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from dual_helpers import DOC_TOOLS, FakeLLM, make_config, py

from relay.dual import DualEngine
from relay.formats.chat import decode_request


class WatchedEngine(DualEngine):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs: list[str] = []
        self.recorded: dict[int, Any] = {}

    async def _run(self, session: Any, turn: Any) -> Any:
        res = await super()._run(session, turn)
        self.runs.append(res.status)
        return res

    def _record(self, turn: Any, tool: str, ok: bool, value: Any, *args: Any, **kwargs: Any) -> None:
        self.recorded[len(self.events)] = (tool, ok, value)
        super()._record(turn, tool, ok, value, *args, **kwargs)


def test_runs_and_recorded_results_go_through_the_hooks():
    prog = py(
        'd = get_internal_document(doc_id="D1")\n'
        'ok = verify_hypothesis(hypothesis="it has a title", data=d)\n'
        "final_return_value = ok"
    )
    llm = FakeLLM(pllm=[prog], qllm=[{"holds": True}])
    cfg = make_config()
    state: dict[str, Any] = {}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "check D1"}]

    def send() -> tuple[WatchedEngine, Any]:
        body = {"model": "p,q", "messages": messages, "tools": DOC_TOOLS}
        engine = WatchedEngine(cfg, session_id="s-hooks", llm=llm, models=("p", "q"))
        return engine, asyncio.run(
            engine.advance(state, decode_request(copy.deepcopy(body)), completed_turns=0)
        )

    engine, out = send()
    assert out.kind == "tool_calls" and engine.runs == ["suspended"] and engine.recorded == {}
    call = out.tool_calls[0]
    messages.append(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"title": "x"})})
    engine, out = send()
    assert out.kind == "final" and json.loads(out.content)["final_return_value"]["value"] is True
    assert engine.runs == [
        "suspended",
        "success",
    ]  # the replay reaches verify_hypothesis, run here, then ends
    results = {i: e for i, e in enumerate(out.events) if e["type"] == "tool_result"}
    assert sorted(engine.recorded) == sorted(results)
    assert [engine.recorded[i] for i in sorted(results)] == [
        ("get_internal_document", True, {"title": "x"}),
        ("verify_hypothesis", True, True),
    ]
