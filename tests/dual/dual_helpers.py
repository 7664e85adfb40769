"""Helpers for the dual-LLM engine tests: a scripted fake LLM caller and a stateless chat client loop."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay.config import resolve_config
from relay.dual import DualEngine
from relay.formats.chat import decode_request
from relay.formats.model import Usage


@dataclass
class FakeCompletion:
    text: str
    parsed: Any = None
    usage: Usage = field(default_factory=lambda: Usage(10, 5))


class FakeLLM:
    """Scripted replies per role. A script item is a str (text reply), a dict/list (structured reply), an
    Exception (raised) or a callable(system, messages, json_schema) returning one of those."""

    def __init__(self, **scripts: list) -> None:
        self.scripts = {role: list(items) for role, items in scripts.items()}
        self.calls: list[dict] = []

    async def __call__(
        self, role: str, *, system: str, messages: list[dict], json_schema: dict | None = None, **extra
    ):
        self.calls.append(
            {
                "role": role,
                "system": system,
                "messages": copy.deepcopy(messages),
                "json_schema": json_schema,
                **extra,
            }
        )
        script = self.scripts.get(role)
        if not script:
            raise AssertionError(f"unexpected {role} call (no scripted reply left)")
        item = script.pop(0)
        if callable(item) and not isinstance(item, Exception):
            item = item(system, messages, json_schema)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, str):
            return FakeCompletion(item)
        return FakeCompletion(json.dumps(item), item)

    def role_calls(self, role: str) -> list[dict]:
        return [c for c in self.calls if c["role"] == role]

    def pllm_inputs(self) -> str:
        """Everything any PLLM call received, as one string."""
        return "\n".join(
            c["system"] + "\n" + "\n".join(m["content"] for m in c["messages"])
            for c in self.role_calls("pllm")
        )


def py(program: str) -> str:
    return f"Here is the program:\n```python\n{program.strip()}\n```\n"


def make_config(
    *,
    endpoint: str = "chat",
    policy: str = "",
    mode: str = "standard",
    presets: dict | None = None,
    fsm: dict | None = None,
    rf: dict | None = None,
    prompt: dict | None = None,
) -> dict:
    cfg = resolve_config(arch="dual-llm", documents=None, endpoint_type=endpoint)
    cfg["policy"]["codes"] = {"code": policy, "language": "sqrt"}
    cfg["policy"]["mode"] = mode
    if presets:
        cfg["policy"]["presets"].update(presets)
    cfg["fsm"]["max_n_turns"] = 1
    cfg["fsm"].update(fsm or {})
    cfg["response_format"].update(rf or {})
    for role, over in (prompt or {}).items():
        cfg["prompt"].setdefault(role, {}).update(over)
    return cfg


def tool(
    name: str, props: dict[str, str] | None = None, description: str = "", required: list[str] | None = None
) -> dict:
    props = props or {}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": v, "description": f"the {k}"} for k, v in props.items()},
                "required": list(props) if required is None else required,
            },
        },
    }


DOC_TOOLS = [
    tool("get_internal_document", {"doc_id": "string"}, "Retrieve an internal document by id."),
    tool("send_email", {"to": "string", "subject": "string", "body": "string"}, "Send an e-mail."),
]
LEAK_POLICY = """
let sensitive_docs = {"internal_use", "confidential"};
tool "get_internal_document" -> @tags |= sensitive_docs;
tool "send_email" {
    hard deny when (body.tags overlaps sensitive_docs) and (not to.value in {str matching r".*@trustedcorp\\.com"});
}
"""


class ChatClient:
    """A stateless Chat Completions client: re-sends the whole history every time, like the SDK loops. It
    counts the session's completed turns as the relay does (one per final answer) and passes the count."""

    def __init__(
        self,
        config: dict,
        llm: FakeLLM,
        *,
        tools: list[dict] | None = None,
        session_id: str | None = None,
        extra_body: dict | None = None,
    ) -> None:
        self.config = config
        self.llm = llm
        self.tools = tools or []
        self.session_id = session_id or str(uuid.uuid1())
        self.state: dict = {}
        self.completed_turns = 0
        self.messages: list[dict] = []
        self.extra_body = extra_body or {}
        self.outcomes = []

    def body(self) -> dict:
        b = {"model": "pllm-model,qllm-model", "messages": self.messages, **self.extra_body}
        if self.tools:
            b["tools"] = self.tools
        return b

    def send(self, body: dict | None = None):
        request = decode_request(copy.deepcopy(body or self.body()))
        engine = DualEngine(
            self.config, session_id=self.session_id, llm=self.llm, models=("pllm-model", "qllm-model")
        )
        outcome = asyncio.run(engine.advance(self.state, request, completed_turns=self.completed_turns))
        if outcome.kind == "final":
            self.completed_turns += 1
        # the shell persists the state as JSON: make sure it round-trips
        self.state = json.loads(json.dumps(self.state))
        self.outcomes.append(outcome)
        if outcome.kind == "tool_calls":
            self.messages.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                        }
                        for c in outcome.tool_calls
                    ],
                }
            )
        else:
            self.messages.append({"role": "assistant", "content": outcome.content})
        return outcome

    def ask(self, text: str):
        self.messages.append({"role": "user", "content": text})
        return self.send()

    def answer(self, outcome, handler: Callable[[str, dict], Any]):
        for call in outcome.tool_calls:
            result = handler(call.name, call.arguments)
            content = result if isinstance(result, str) else json.dumps(result)
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        return self.send()

    def run(self, text: str, handler: Callable[[str, dict], Any], max_rounds: int = 20):
        out = self.ask(text)
        rounds = 0
        while out.kind == "tool_calls":
            rounds += 1
            assert rounds <= max_rounds
            out = self.answer(out, handler)
        return out
