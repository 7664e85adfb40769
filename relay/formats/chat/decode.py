"""Chat Completions requests: validate and decode into the conversation model; the provider's copy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import validation as check
from ..model import DecodedRequest, RequestError, ToolCall, ToolDef, ToolResult, Turn, parse_arguments
from ..validation import JsonObject
from ..wire import upstream_copy

API = "chat"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEQURITY_FIELDS = ("user_provided_program", "context_vars", "session_id")
"""Body fields that belong to the Sequrity API and must not reach a provider."""


class ChatParams(check.ProgramParams):
    stream_options: JsonObject | None = None


def content_text(content: Any, where: str) -> str:
    """String or array of parts -> concatenated text of the text (and refusal) parts."""
    return check.parts_text(content, where, ("text",), "content parts", refusals=True, bare_strings=True)


def _function_tool(where: str, tool: JsonObject) -> ToolDef | None:
    if tool.get("type", "function") != "function":
        return None  # custom/other tool kinds are forwarded untouched but are not function tools
    fn = tool.get("function")
    if not isinstance(fn, dict):
        raise RequestError(f"{where}.function: field required")
    name = check.req_str(fn, "name", f"{where}.function.")
    if not TOOL_NAME_RE.match(name):
        raise RequestError(f"{where}.function.name: must match ^[a-zA-Z0-9_-]{{1,64}}$")
    return check.tool_def(name, fn, f"{where}.function.", "parameters")


def decode_tools(tools: Any) -> list[ToolDef]:
    return check.tool_defs(tools, _function_tool)


def _tool_calls(message: JsonObject, where: str) -> list[ToolCall]:
    out: list[ToolCall] = []
    calls = message.get("tool_calls")
    for path, call in check.object_list(calls, f"{where}.tool_calls") if calls is not None else ():
        cid = check.req_str(call, "id", f"{path}.")
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise RequestError(f"{path}.function: field required")
        name = check.req_str(fn, "name", f"{path}.function.")
        out.append(ToolCall(cid, name, *parse_arguments(fn.get("arguments"))))
    legacy = message.get("function_call")
    if not out and isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        out.append(ToolCall(legacy["name"], legacy["name"], *parse_arguments(legacy.get("arguments"))))
    return out


def decode_messages(messages: Any) -> list[Turn]:
    turns: list[Turn] = []
    for where, msg in check.message_list(messages):
        role = check.role_of(msg, where, ROLES)
        if role in ("system", "developer", "user", "tool") and "content" not in msg:
            raise RequestError(f"{where}.content: field required")
        content = msg.get("content")
        text = content if isinstance(content, str) else content_text(content, f"{where}.content")
        if role in ("system", "developer"):
            turns.append(Turn("system", text))
        elif role == "user":
            turns.append(Turn("user", text))
        elif role == "assistant":
            turns.append(Turn("assistant", text, _tool_calls(msg, where)))
        else:  # tool / function
            call_id = check.req_str(msg, "tool_call_id" if role == "tool" else "name", f"{where}.")
            check.add_tool_result(turns, ToolResult(call_id, text))
    return turns


def decode_request(body: Any) -> DecodedRequest:
    """Validate a Chat Completions body and decode it (RequestError names the offending field)."""
    params = ChatParams.read(body)
    turns = decode_messages(body.get("messages"))
    tools = decode_tools(body.get("tools"))
    rf = body.get("response_format")
    so = params.stream_options
    response_format = check.normalise_json_schema_format(rf, "response_format") if rf is not None else None
    include_usage = bool(so and so.get("include_usage"))
    return params.decoded(
        API, body, turns, tools, response_format=response_format, include_usage=include_usage
    )


def upstream_body(body: Mapping[str, Any], *, stream: bool | None = None) -> JsonObject:
    """Copy of a client body fit for an OpenAI-style provider (single-LLM pass-through).

    Drops Sequrity-only fields, fixes the ``schema_`` alias, and for streams asks for usage
    (``stream_options.include_usage``) so the relay can account tokens.
    """
    out = upstream_copy(body, SEQURITY_FIELDS, ("response_format", "json_schema"), stream)
    if out.get("stream"):
        so = out.get("stream_options")
        out["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
    else:
        out.pop("stream_options", None)
    return out


__all__ = ["API", "ROLES", "SEQURITY_FIELDS", "TOOL_NAME_RE", "ChatParams", "content_text"]
__all__ += ["decode_messages", "decode_request", "decode_tools", "upstream_body"]
