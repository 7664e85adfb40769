"""Rewrite tool results and proposed tool-call arguments inside API bodies (framework-free).

Single-LLM guardrails and the manual metadata wrapper change what the LLM and the client see: a tool
result's text (redacted, masked, unwrapped) before it is forwarded upstream, and a proposed call's
arguments (redacted) before the answer reaches the client. One function per direction covers the three
API formats; unchanged bodies are returned as they are (copy-on-write).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

ResultFn = Callable[[str, str], str | None]
"""``fn(call_id, content) -> new content`` or None to keep it."""


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")]
        return "".join(parts)
    return None


def rewrite_tool_results(api: str, body: dict, fn: ResultFn) -> dict:
    if api == "chat":
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            return body
        out, changed = [], False
        for m in msgs:
            if isinstance(m, dict) and m.get("role") == "tool":
                text = _text_of(m.get("content"))
                new = fn(str(m.get("tool_call_id") or ""), text or "") if text is not None else None
                if new is not None and new != text:
                    m = {**m, "content": new}
                    changed = True
            out.append(m)
        return {**body, "messages": out} if changed else body
    if api == "messages":
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            return body
        out, changed = [], False
        for m in msgs:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):
                blocks = []
                for b in content:
                    if isinstance(b, dict) and b.get("type") == "tool_result":
                        text = _text_of(b.get("content")) if b.get("content") is not None else ""
                        new = fn(str(b.get("tool_use_id") or ""), text or "") if text is not None else None
                        if new is not None and new != text:
                            b = {**b, "content": new}
                            changed = True
                    blocks.append(b)
                m = {**m, "content": blocks}
            out.append(m)
        return {**body, "messages": out} if changed else body
    if api == "responses":
        items = body.get("input")
        if not isinstance(items, list):
            return body
        out, changed = [], False
        for it in items:
            if isinstance(it, dict) and it.get("type") == "function_call_output":
                text = _text_of(it.get("output"))
                new = fn(str(it.get("call_id") or ""), text or "") if text is not None else None
                if new is not None and new != text:
                    it = {**it, "output": new}
                    changed = True
            out.append(it)
        return {**body, "input": out} if changed else body
    return body


ArgsFn = Callable[[str, str, dict], dict | None]
"""``fn(call_id, tool_name, arguments) -> new arguments`` or None to keep them."""


def rewrite_answer_arguments(api: str, answer: dict, fn: ArgsFn) -> dict:
    """Rewrite proposed tool-call arguments in a (non-streaming) upstream answer, in place."""
    if api == "chat":
        for choice in answer.get("choices") or []:
            for call in (choice.get("message") or {}).get("tool_calls") or []:
                f = call.get("function") or {}
                try:
                    args = json.loads(f.get("arguments") or "{}")
                except ValueError:
                    continue
                new = fn(call.get("id", ""), f.get("name", ""), args) if isinstance(args, dict) else None
                if new is not None:
                    f["arguments"] = json.dumps(new)
    elif api == "messages":
        for block in answer.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
                new = fn(block.get("id", ""), block.get("name", ""), block["input"])
                if new is not None:
                    block["input"] = new
    elif api == "responses":
        for item in answer.get("output") or []:
            if isinstance(item, dict) and item.get("type") == "function_call":
                try:
                    args = json.loads(item.get("arguments") or "{}")
                except ValueError:
                    continue
                new = fn(item.get("call_id", ""), item.get("name", ""), args) if isinstance(args, dict) else None
                if new is not None:
                    item["arguments"] = json.dumps(new)
    return answer
