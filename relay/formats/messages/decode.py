"""Anthropic Messages requests: validate and decode into the conversation model; the provider's copy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from .. import validation as check
from ..model import DecodedRequest, RequestError, ToolCall, ToolDef, ToolResult, Turn, parse_arguments
from ..validation import JsonObject
from ..wire import typed, upstream_copy

API = "messages"
SEQURITY_FIELDS = ("user_provided_program", "context_vars", "session_id", "reasoning_effort", "timeout")
ROLES = ("user", "assistant")


class MessagesParams(check.ProgramParams):
    max_tokens: Annotated[int, Field(ge=1)]
    top_k: int | None = None
    tool_choice: JsonObject | None = None
    output_config: JsonObject | None = None


def blocks_text(content: Any, where: str) -> str:
    """String or list of blocks -> concatenated text of the ``text`` blocks."""
    return check.parts_text(content, where, ("text",), "content blocks")


def _function_tool(where: str, tool: JsonObject) -> ToolDef | None:
    if tool.get("type") not in (None, "custom") and "input_schema" not in tool:
        return None  # a server tool (web_search_…, bash_…): forwarded, but not a client function tool
    name = check.req_str(tool, "name", f"{where}.")
    if tool.get("input_schema") is None:
        raise RequestError(f"{where}.input_schema: field required")
    return check.tool_def(name, tool, f"{where}.", "input_schema")


def decode_tools(tools: Any) -> list[ToolDef]:
    return check.tool_defs(tools, _function_tool)


def _blocks(content: list[Any], where: str) -> tuple[list[str], list[ToolCall], list[ToolResult]]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[ToolResult] = []
    for path, block in check.object_list(content, f"{where}.content"):
        btype = block.get("type")
        if btype is None:
            raise RequestError(f"{path}.type: field required")
        if btype == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise RequestError(f"{path}.text: must be a string")
            texts.append(text)
        elif btype == "tool_use":
            cid = check.req_str(block, "id", f"{path}.")
            name = check.req_str(block, "name", f"{path}.")
            calls.append(ToolCall(cid, name, *parse_arguments(block.get("input"))))
        elif btype == "tool_result":
            cid = check.req_str(block, "tool_use_id", f"{path}.")
            text = blocks_text(block.get("content"), f"{path}.content")
            results.append(ToolResult(cid, text, bool(block.get("is_error"))))
    return texts, calls, results


def decode_messages(messages: Any) -> list[Turn]:
    turns: list[Turn] = []
    for where, msg in check.message_list(messages):
        role = check.role_of(msg, where, ROLES)
        if "content" not in msg:
            raise RequestError(f"{where}.content: field required")
        content = msg["content"]
        if isinstance(content, str):
            turns.append(Turn(role, content))
            continue
        if not isinstance(content, list):
            raise RequestError(f"{where}.content: must be a string or an array of content blocks")
        texts, calls, results = _blocks(content, where)
        if role == "assistant":
            turns.append(Turn("assistant", "".join(texts), calls))
            continue
        if results:
            turns.append(Turn("tool", "", [], results))
        if texts or not results:
            turns.append(Turn("user", "".join(texts)))
    return turns


def decode_request(body: Any) -> DecodedRequest:
    """Validate an Anthropic Messages body and decode it (RequestError names the offending field)."""
    params = MessagesParams.read(body)
    turns = decode_messages(body.get("messages"))
    system = body.get("system")
    if system is not None:
        turns.insert(0, Turn("system", blocks_text(system, "system")))
    tools = decode_tools(body.get("tools"))
    response_format = check.nested_format(params.output_config, "output_config")
    return params.decoded(API, body, turns, tools, response_format=response_format)


def _native_block(block: Any) -> Any:
    """Client-form thinking block (text in ``text``) -> Anthropic's native form; None to drop it."""
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return block
    if not block.get("signature"):
        return None  # Anthropic rejects unsigned thinking blocks; they are optional in history
    if "thinking" in block:
        return {k: v for k, v in block.items() if k != "text"}
    return {"type": "thinking", "thinking": block.get("text") or "", "signature": block["signature"]}


def _native_message(m: Any) -> Any:
    if not (isinstance(m, dict) and isinstance(m.get("content"), list)):
        return m
    return {**m, "content": [nb for nb in (_native_block(b) for b in m["content"]) if nb is not None]}


def _has_thinking(m: Any) -> bool:
    return isinstance(m, dict) and next(typed(m.get("content"), "thinking"), None) is not None


def upstream_body(body: Mapping[str, Any], *, stream: bool | None = None) -> JsonObject:
    """Copy of a client body fit for Anthropic: Sequrity-only and non-standard fields dropped, ``schema_``
    alias fixed, client-form thinking blocks converted (unsigned ones dropped)."""
    out = upstream_copy(body, SEQURITY_FIELDS, ("output_config", "format"), stream)
    msgs = out.get("messages")
    if isinstance(msgs, list) and any(_has_thinking(m) for m in msgs):
        out["messages"] = [_native_message(m) for m in msgs]
    return out


__all__ = ["API", "ROLES", "SEQURITY_FIELDS", "MessagesParams", "blocks_text", "decode_messages"]
__all__ += ["decode_request", "decode_tools", "upstream_body"]
