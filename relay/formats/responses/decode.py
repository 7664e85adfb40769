"""OpenAI Responses requests: validate and decode into the conversation model; the provider's copy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import validation as check
from ..model import DecodedRequest, RequestError, ToolCall, ToolDef, ToolResult, Turn, parse_arguments
from ..validation import JsonObject, Params
from ..wire import upstream_copy

API = "responses"
SEQURITY_FIELDS = ("user_provided_program", "context_vars", "session_id", "timeout")
MESSAGE_ROLES = ("user", "system", "developer", "assistant")
TEXT_PART_TYPES = ("input_text", "output_text", "text")


class ResponsesParams(Params):
    max_output_tokens: int | None = None
    previous_response_id: str | None = None
    text: JsonObject | None = None


def parts_text(content: Any, where: str) -> str:
    return check.parts_text(content, where, TEXT_PART_TYPES, "content items", refusals=True)


def _function_tool(where: str, tool: JsonObject) -> ToolDef | None:
    if tool.get("type") != "function":
        return None  # built-in / mcp / custom tools: forwarded untouched, not function tools
    return check.tool_def(check.req_str(tool, "name", f"{where}."), tool, f"{where}.", "parameters")


def decode_tools(tools: Any) -> list[ToolDef]:
    return check.tool_defs(tools, _function_tool)


def item_kind(item: Mapping[str, Any]) -> str | None:
    """An input item's kind: its ``type``, falling back to ``message`` when it only has a ``role``."""
    itype = item.get("type")
    if itype is not None:
        return str(itype)
    return "message" if "role" in item else None


def _message(turns: list[Turn], item: JsonObject, where: str) -> None:
    role = check.role_of(item, where, MESSAGE_ROLES)
    if "content" not in item:
        raise RequestError(f"{where}.content: field required")
    content = item["content"]
    text = content if isinstance(content, str) else parts_text(content, f"{where}.content")
    if role != "assistant":
        turns.append(Turn("system" if role in ("system", "developer") else "user", text))
    elif turns and turns[-1].role == "assistant" and not turns[-1].tool_calls:
        turns[-1].text += text
    else:
        turns.append(Turn("assistant", text))


def _function_call(turns: list[Turn], item: JsonObject, where: str) -> None:
    call_id = check.req_str(item, "call_id", f"{where}.")
    call = ToolCall(
        call_id, check.req_str(item, "name", f"{where}."), *parse_arguments(item.get("arguments"))
    )
    if turns and turns[-1].role == "assistant":
        turns[-1].tool_calls.append(call)
    else:
        turns.append(Turn("assistant", "", [call]))


def _function_call_output(turns: list[Turn], item: JsonObject, where: str) -> None:
    call_id = check.req_str(item, "call_id", f"{where}.")
    if item.get("output") is None:
        raise RequestError(f"{where}.output: field required")
    check.add_tool_result(turns, ToolResult(call_id, parts_text(item["output"], f"{where}.output")))


_ITEMS = {"message": _message, "function_call": _function_call, "function_call_output": _function_call_output}


def decode_input(input_: Any) -> list[Turn]:
    if isinstance(input_, str):
        return [Turn("user", input_)]
    if input_ is not None and not isinstance(input_, list):
        raise RequestError("input: must be a string or an array of items")
    turns: list[Turn] = []
    for where, item in check.object_list(input_, "input"):
        kind = item_kind(item)
        if kind is None:
            raise RequestError(f"{where}.type: field required")
        decode_item = _ITEMS.get(kind)
        if decode_item is not None:  # other kinds (reasoning, mcp_*, item_reference, …) stay in the body only
            decode_item(turns, item, where)
    return turns


def _instructions(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(t.text for t in decode_input(value) if t.text)
    raise RequestError("instructions: must be a string")


def decode_request(body: Any) -> DecodedRequest:
    """Validate a Responses body and decode it (RequestError names the offending field)."""
    params = ResponsesParams.read(body)
    turns = decode_input(body.get("input"))
    if body.get("instructions") is not None:
        turns.insert(0, Turn("system", _instructions(body["instructions"])))
    tools = decode_tools(body.get("tools"))
    response_format = check.nested_format(params.text, "text")
    prev = params.previous_response_id
    return params.decoded(API, body, turns, tools, response_format=response_format, previous_response_id=prev)


def upstream_body(body: Mapping[str, Any], *, stream: bool | None = None) -> JsonObject:
    """Copy of a client body fit for OpenAI's Responses API (Sequrity fields dropped, ``schema_`` fixed)."""
    return upstream_copy(body, SEQURITY_FIELDS, ("text", "format"), stream)


def response_echo(body: Mapping[str, Any]) -> JsonObject:
    """The request fields a Response object echoes (``tools`` etc. are required by the client, §10.2)."""
    tools = body.get("tools")
    out: JsonObject = {
        "tools": [t for t in tools if isinstance(t, dict) and isinstance(t.get("type"), str)]
        if isinstance(tools, list)
        else [],
        "tool_choice": body.get("tool_choice")
        if isinstance(body.get("tool_choice"), (str, dict))
        else "auto",
        "parallel_tool_calls": body["parallel_tool_calls"]
        if isinstance(body.get("parallel_tool_calls"), bool)
        else True,
    }
    echoed: tuple[tuple[str, type | tuple[type, ...]], ...] = (
        ("instructions", str),
        ("previous_response_id", str),
        ("temperature", (int, float)),
        ("top_p", (int, float)),
        ("max_output_tokens", int),
        ("metadata", dict),
    )
    for key, types in echoed:
        value = body.get(key)
        if isinstance(value, types) and not isinstance(value, bool):
            out[key] = value
    return out


__all__ = ["API", "MESSAGE_ROLES", "SEQURITY_FIELDS", "TEXT_PART_TYPES", "ResponsesParams", "decode_input"]
__all__ += ["decode_request", "decode_tools", "item_kind", "parts_text", "response_echo", "upstream_body"]
