"""Policy generation's engine, framework-free: request validation, the prompt, the retry loop.

An LLM writes a SQRT policy from a description and tool definitions; every candidate is compiled, and a
candidate that does not compile is sent back with the compiler's message, up to ``n_retries`` times.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..formats.model import Usage
from ..sqrt import PolicyCompileError, compile_policy

TYPES = (
    "oai_chat_completion",
    "openrouter_chat_completion",
    "anthropic_messages",
    "sequrity_azure_chat_completion",
    "sequrity_azure_responses",
)
INTERNAL_TOOLS = ("parse_with_ai", "verify_hypothesis", "set_policy", "complete_turn")
FIELDS = {"type", "model", "description", "policy_lang", "n_retries", "internal_tool_names", "tools"}


class GenerateError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class GenerateRequest:
    type: str
    model: str
    description: str
    n_retries: int = 3
    internal_tool_names: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)  # {name, description, parameters}


def parse_request(body: dict[str, Any]) -> GenerateRequest:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise GenerateError(400, f"{unknown[0]}: unknown field")
    kind = body.get("type")
    if kind == "oai_responses":
        raise GenerateError(400, "type: 'oai_responses' is not supported for policy generation")
    if kind not in TYPES:
        raise GenerateError(400, f"type: must be one of {', '.join(TYPES)}")
    for name in ("model", "description"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise GenerateError(400, f"{name}: required non-empty string")
    if body.get("policy_lang", "sqrt") != "sqrt":
        raise GenerateError(400, "policy_lang: only 'sqrt' is supported")
    n_retries = body.get("n_retries", 3)
    if not isinstance(n_retries, int) or isinstance(n_retries, bool) or not 0 <= n_retries <= 10:
        raise GenerateError(400, "n_retries: must be an integer from 0 to 10")
    internal = body.get("internal_tool_names") or []
    if not isinstance(internal, list) or any(n not in INTERNAL_TOOLS for n in internal):
        raise GenerateError(400, f"internal_tool_names: items must be among {', '.join(INTERNAL_TOOLS)}")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise GenerateError(400, "tools: must be an array")
    return GenerateRequest(
        kind,
        body["model"],
        body["description"],
        n_retries,
        internal,
        [_tool(kind, t, i) for i, t in enumerate(tools)],
    )


def _tool(kind: str, tool: Any, index: int) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise GenerateError(400, f"tools[{index}]: must be an object")
    if kind == "anthropic_messages":
        name, desc, params = tool.get("name"), tool.get("description"), tool.get("input_schema")
    elif kind == "sequrity_azure_responses":
        fn: Any = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name, desc, params = fn.get("name"), fn.get("description"), fn.get("parameters")
    else:
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise GenerateError(400, f"tools[{index}].function: required object")
        name, desc, params = fn.get("name"), fn.get("description"), fn.get("parameters")
    if not isinstance(name, str) or not name:
        raise GenerateError(400, f"tools[{index}]: a tool name is required")
    return {"name": name, "description": desc or "", "parameters": params if isinstance(params, dict) else {}}


SYSTEM_PROMPT = """You write security policies in SQRT, the Sequrity policy language, for an LLM agent's tools.
Every value the agent handles carries metadata: producers, consumers and tags (sets of strings).
Reply with the policy only, inside one ```sqrt fenced block. The language, by example:

  // Tag everything a tool returns (result metadata update, shorthand form):
  tool "read_secret" -> @tags |= {"secret"};
  // Named sets:
  let trusted = {str matching r".*@example\\.com"};
  // Check rules are evaluated before a call: hard/must rules cannot be overridden, soft/should can.
  tool "send_email" {
      /// Never mail secrets outside the company.
      hard deny when body.tags overlaps {"secret"} and (not to.value in trusted);
  }
  tool "delete_file" { must deny always; }
  tool "transfer" { hard allow when amount.value in {int ..1000}; }   // allowed only under the limit
  // Session metadata remembers what happened in the conversation:
  tool "read_secret" -> session @tags |= {"saw_secret"};
  tool "post_public" { must deny when "saw_secret" in @session.tags; }

Argument access: <arg>.value, <arg>.tags, <arg>.producers, <arg>.consumers; @args.tags is the union over all
arguments. Domains: int/float ranges (a..b, ..b, a..), str "x", str matching r"regex", str like w"glob".
Predicates: in, overlaps, subset of, superset of, is empty, ==, not, and, or. Set literals: {"a", "b"}.
Only reference tools that exist. Keep the policy minimal and exactly what the description asks for."""


def user_prompt(req: GenerateRequest) -> str:
    lines = [f"Policy intent: {req.description}", "", "Tools:"]
    for t in req.tools:
        props = (t["parameters"] or {}).get("properties") or {}
        params = ", ".join(f"{k}: {(v or {}).get('type', 'any')}" for k, v in props.items())
        lines.append(f"- {t['name']}({params}): {t['description']}")
    for name in req.internal_tool_names:
        lines.append(f"- {name} (internal tool of the agent)")
    if not req.tools and not req.internal_tool_names:
        lines.append("- (none declared)")
    return "\n".join(lines)


_FENCE = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.S)


def extract_policy(text: str) -> str:
    m = _FENCE.search(text or "")
    code = m.group(1) if m else (text or "")
    return code.strip() + "\n"


Completer = Callable[[list[dict[str, Any]]], Awaitable[tuple[str, Usage]]]


async def generate(req: GenerateRequest, complete: Completer) -> tuple[str, Usage]:
    """Ask, compile, and feed compile errors back; returns (policy text, usage over all attempts)."""
    usage = Usage()
    messages = [{"role": "user", "content": user_prompt(req)}]
    last_error = "no answer"
    for _ in range(1 + req.n_retries):
        text, used = await complete(messages)
        usage.add(used)
        policy = extract_policy(text)
        if not policy.strip():
            last_error = "the answer contained no policy"
        else:
            try:
                compile_policy(policy)
                return policy, usage
            except PolicyCompileError as exc:
                last_error = str(exc)
        messages += [
            {"role": "assistant", "content": text},
            {
                "role": "user",
                "content": f"That policy does not compile: {last_error}\n"
                "Reply with the corrected policy in one ```sqrt block.",
            },
        ]
    raise GenerateError(
        422, f"Failed to generate a valid policy after {1 + req.n_retries} attempts: {last_error}"
    )
