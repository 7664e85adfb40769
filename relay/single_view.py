"""Single-LLM mode: forward to the provider in its own format, police the tool calls and results.

Tool results the client sends are checked against the pending calls (result / session-after blocks,
manual wrapper, guardrails) and rewritten before they reach the model; every other tool result and tool call
of the history the client resends is guarded too (``SessionGuardrails.guard_request``: whoever produced it,
on every turn, from the session's memo when seen before). Proposed tool calls are checked (session-before and
check rules, guardrails) before they reach the client, and get ``tc-`` ids that we map back to the upstream's
ids when the conversation returns.

Metering: a streamed answer is metered and its session saved as soon as the upstream's end is known and
before the client receives the final event (``pump(..., on_done=)``), so a client that drops the connection
right after ``data: [DONE]`` is metered like any other; a client that goes away earlier leaves a request
marked cancelled (499) with the usage the upstream had reported by then.
"""

from __future__ import annotations

import asyncio

from . import session_store
from .formats import FORMATS, pump
from .formats import chat as chat_format
from .formats import responses as responses_format
from .formats.model import ToolCall, Usage
from .guardrails_glue import SessionGuardrails
from .meta import DEFAULT_META
from .pipeline import (
    Call,
    RelayError,
    finish,
    json_response,
    meta_of,
    session_event,
    sse_response,
    tool_call_id,
)
from .providers import generation_params, open_stream, post_json
from .single import apply_tool_results, build_engine, check_proposed_calls, wrapped_value_text
from .streaming import shielded

PATH_KIND = {"chat": "chat", "messages": "messages", "responses": "responses"}


def _start_turn(call: Call) -> None:
    """A user message after a completed turn starts the next turn (max_n_turns is checked here)."""
    st = call.state
    decoded = call.decoded
    if decoded.trailing_tool_results and st.get("pending"):
        return
    max_turns = st["config"]["fsm"].get("max_n_turns")
    if max_turns is not None and st["turns"] >= max_turns:
        raise RelayError(400, f"Session {call.session_id} has used all of its {max_turns} turns", "max_turns")
    query = decoded.user_query
    if query is not None:
        session_event(call, "user_message", text=query[:4000])
    clear = st["config"]["fsm"].get("clear_session_meta")
    if clear == "every_attempt" or (clear == "every_turn" and not st.get("pending")):
        st["session_meta"] = DEFAULT_META.to_json()  # sqrt.md §8 (a single-LLM request is one attempt)


async def _apply_results(call: Call, engine, guards: SessionGuardrails) -> dict:
    """Record tool results for pending calls; returns the body as the model may see it: those results as
    the policy and guardrails decided, and every other tool result and tool call of the history guarded
    too (``SessionGuardrails.guard_request``)."""
    st = call.state
    results = [r for r in call.decoded.trailing_tool_results if r.call_id in st["pending"]]
    delivered: dict[str, str] = {}
    if results:
        # A caller's metadata wrapper (sqrt.md §7) is for us: the model gets (and the guardrails scan) its value.
        scans = {r.call_id: await guards.scan_result(call, r.call_id, wrapped_value_text(r.content) or r.content)
                 for r in results}
        session_meta, _ = apply_tool_results(engine, st["pending"], results, meta_of(st),
                                             {cid: scan.meta for cid, scan in scans.items()})
        st["session_meta"] = session_meta.to_json()
        for r in results:
            text = scans[r.call_id].text
            delivered[r.call_id] = text
            guards.remember_delivered(r.content, scans[r.call_id])
            pending = st["pending"].pop(r.call_id)
            session_event(call, "tool_result", call_id=r.call_id, tool=pending["tool"], content=text[:4000],
                          meta=scans[r.call_id].meta.to_json())
    return await guards.guard_request(call, call.body, delivered)


def _upstream_request(call: Call, body: dict, stream: bool) -> tuple[str, dict]:
    """(path kind, body) for the provider: model set, our ids mapped back, Responses→Chat for azure."""
    api, provider = call.route.api, call.route.provider
    fmt = FORMATS[api]
    body = fmt.rewrite_ids_in_request(body, call.state["id_map"])
    body = {**body, "model": call.models[0]}
    if api != "responses":
        # X-Config llm.pllm applies to the single LLM (control-api.md §6) where the request leaves a field unset.
        defaults = generation_params(provider, (call.state["config"].get("llm") or {}).get("pllm"))
        body = {**defaults, **body}
    if api == "responses" and provider == "sequrity_azure":
        return "chat", responses_format.to_chat_request(body, stream=stream)
    return PATH_KIND[api], fmt.upstream_body(body, stream=stream)


def _new_id_factory(call: Call, proposed: dict[str, ToolCall]):
    def new_id(upstream_id: str) -> str:
        ours = tool_call_id(call.session_id)
        call.state["id_map"][ours] = upstream_id
        src = proposed.get(upstream_id)
        if src is not None:
            call.state["pending"][ours] = {"tool": src.name, "args": src.arguments}
        return ours

    return new_id


async def _decide(call: Call, engine, guards: SessionGuardrails, calls: list[ToolCall]
                  ) -> tuple[list[str], str | None]:
    """Guardrails, then the policy, on the calls the model proposes: (allowed upstream ids, denial text)."""
    scans = {c.id: await guards.scan_arguments(call, c) for c in calls}
    check = check_proposed_calls(engine, calls, meta_of(call.state), {cid: s.meta for cid, s in scans.items()})
    call.state["session_meta"] = check.session_meta.to_json()
    allowed = list(check.allowed_ids)
    texts = [check.denial_text] if check.denial_text else []
    for c, record in zip(calls, check.records, strict=False):
        verdict = check.verdicts.get(c.id)
        blocked = scans[c.id].block_reason
        if blocked and c.id in allowed:
            allowed.remove(c.id)
            texts.append(blocked)
            verdict = "hard_denied"
        meta = scans[c.id].meta.to_json()
        shown = guards.pending_argument_rewrites.get(c.id, c.arguments) or {}
        session_event(call, "tool_call", call_id=c.id, tool=c.name,
                      args={k: {"value": v, "meta": meta} for k, v in shown.items()},
                      verdict=verdict, record=record, blocked=blocked, rule=check.decided_by.get(c.id),
                      session_meta=check.session_meta_before[c.id].to_json())
    if len(allowed) < len(calls):
        call.state["denied_in_turn"] = True
    return allowed, (" ".join(texts) or None)


def _end_of_answer(call: Call, has_tool_calls: bool, text: str) -> None:
    st = call.state
    if has_tool_calls:
        st["status"] = "open"
        return
    st["turns"] += 1
    st["status"] = "denied" if st.pop("denied_in_turn", False) else "success"
    session_event(call, "assistant_message", text=text[:4000])
    max_turns = st["config"]["fsm"].get("max_n_turns")
    if max_turns is not None and st["turns"] >= max_turns:
        st["closed"] = True


TOOL_FILTER_SYSTEM = (
    "You select the tools an assistant needs for the user's request. Reply with the names of the relevant "
    "tools only, chosen from the list; when unsure, include the tool."
)


def _tool_name(tool) -> str | None:
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = fn.get("name")
    return name if isinstance(name, str) else None


async def _filter_tools(call: Call, body: dict, guards: SessionGuardrails) -> dict:
    """``fsm.min_num_tools_for_filtering``: with that many tools or more, the model first picks the relevant
    ones for the turn (structured output); the choice is kept for the rest of the turn. A failed or empty
    selection keeps every tool."""
    from .providers import complete

    tools = body.get("tools")
    st = call.state
    threshold = st["config"]["fsm"].get("min_num_tools_for_filtering") or 10
    if not isinstance(tools, list) or len(tools) < threshold:
        return body
    if not st.get("pending"):  # a new turn chooses; a continuation keeps the turn's choice
        described = [d for d in call.decoded.tools]
        listing = "\n".join(f"- {t.name}: {t.description[:200]}" for t in described)
        schema = {"type": "object", "properties": {"tools": {"type": "array", "items": {
            "type": "string", "enum": [t.name for t in described]}}}, "required": ["tools"],
            "additionalProperties": False}
        try:
            reply = await complete(call.route.provider, call.models[0], call.api_key, system=TOOL_FILTER_SYSTEM,
                                   messages=[{"role": "user", "content": f"Request: {call.decoded.user_query}"
                                                                         f"\n\nTools:\n{listing}"}],
                                   json_schema=schema, schema_name="tool_selection")
            guards.usage.add(reply.usage)
            chosen = reply.parsed.get("tools") if isinstance(reply.parsed, dict) else None
        except Exception:  # noqa: BLE001 - filtering is an optimisation; without it every tool is offered
            chosen = None
        st["tool_filter"] = [n for n in chosen if isinstance(n, str)] if chosen else None
        session_event(call, "tool_filter", selected=st["tool_filter"], offered=len(tools))
    selected = st.get("tool_filter")
    if not selected:
        return body
    return {**body, "tools": [t for t in tools if _tool_name(t) in selected]}


async def run_single(call: Call, request):
    api = call.route.api
    fmt = FORMATS[api]
    engine = build_engine(call.state["config"], dual_llm=False)
    guards = SessionGuardrails.for_state(call.state)
    answer_usage = Usage()
    try:
        _start_turn(call)
        body = await _apply_results(call, engine, guards)
        body = await _filter_tools(call, body, guards)
        stream = bool(call.decoded.stream)
        path_kind, upstream = _upstream_request(call, body, stream)
        azure_responses = api == "responses" and path_kind == "chat"
        if stream:
            events = await open_stream(call.route.provider, path_kind, upstream, call.api_key)
            return _stream(call, engine, guards, events, azure_responses)
        answer = await post_json(call.route.provider, path_kind, upstream, call.api_key)
        answer_usage = fmt.extract_usage(answer)
        return await _answer(call, engine, guards, answer, azure_responses)
    except asyncio.CancelledError:
        # The client went away (Django cancels the request's task): the LLM calls made so far are metered.
        _cancelled(call, answer_usage + guards.usage)
        raise


async def _answer(call: Call, engine, guards: SessionGuardrails, answer: dict, azure_responses: bool):
    """A complete upstream answer: policy and guardrails on its tool calls, usage, session, response."""
    api = call.route.api
    fmt = FORMATS[api]
    if azure_responses:
        answer = responses_format.from_chat_answer(answer, model=call.models[0],
                                                   extra=responses_format.response_echo(call.body))
    proposed = fmt.extract_tool_calls(answer)
    if proposed:
        allowed, denial = await _decide(call, engine, guards, proposed)
        fmt.filter_tool_calls(answer, set(allowed), denial)
        redactions = guards.pending_argument_rewrites
        if redactions:
            fmt.rewrite_answer_arguments(answer, lambda cid, name, args: redactions.get(cid))
        fmt.rewrite_answer_ids(answer, _new_id_factory(call, {c.id: _redacted(c, redactions) for c in proposed}))
    call.usage = fmt.extract_usage(answer) + guards.usage
    remaining = fmt.extract_tool_calls(answer)
    _end_of_answer(call, bool(remaining), fmt.extract_text(answer))
    if api == "responses" and isinstance(answer.get("id"), str):
        await session_store.aremember_response(answer["id"], call.session_id)
    return json_response(answer, call)


def _stream(call: Call, engine, guards: SessionGuardrails, events, azure_responses: bool):
    """Relay the upstream stream; the request is metered and saved as soon as its end is known."""
    api = call.route.api
    fmt = FORMATS[api]
    proposed_by_id: dict[str, ToolCall] = {}
    if azure_responses:
        relay = responses_format.ChatToResponsesRelay(
            _new_id_factory(call, proposed_by_id), model=call.models[0],
            extra=responses_format.response_echo(call.body))
    elif api == "chat":
        relay = chat_format.ChatStreamRelay(_new_id_factory(call, proposed_by_id),
                                            include_usage=call.decoded.include_usage)
    else:
        relay = fmt.__dict__[{"messages": "MessagesStreamRelay", "responses": "ResponsesStreamRelay"}[api]](
            _new_id_factory(call, proposed_by_id))

    async def decide(pending: list[ToolCall]):
        for c in pending:
            proposed_by_id[c.id] = c
        return await _decide(call, engine, guards, pending)

    finished = False
    aborted: list[BaseException] = []

    def abort_message(exc: BaseException) -> str:
        aborted.append(exc)  # the upstream failed mid-stream: pump ends the stream with an error event
        return str(exc)

    async def complete() -> None:
        """The upstream's answer is complete (usage, tool calls, text): meter and save the request now,
        before the client receives the end of the stream (pump's ``on_done``)."""
        nonlocal finished
        finished = True
        call.usage = relay.usage + guards.usage
        if aborted:  # a 200 and an error event, not an answer: logged as the failure it is, marked cut
            _cut(call, aborted[0])
        try:
            _end_of_answer(call, bool(relay.tool_calls), relay.text)
            resp_id = getattr(relay, "response_id", None)
            if api == "responses" and resp_id:
                await session_store.aremember_response(resp_id, call.session_id)
        finally:
            await shielded(finish(call))

    async def chunks():
        nonlocal finished
        call.streamed = True
        failure: BaseException | None = None
        try:
            async for chunk in pump(relay, events, decide, error_message=abort_message, on_done=complete):
                yield chunk
        except Exception as exc:
            failure = exc
            raise
        finally:
            if not finished:
                # The client went away before the end: what the upstream reported so far is metered, and the
                # request is marked cancelled (closing pump has closed the upstream request). Or the relay
                # failed mid-stream: marked cut.
                finished = True
                _cancelled(call, relay.usage + guards.usage)
                if failure is not None:
                    _cut(call, failure)
                await shielded(finish(call))

    return sse_response(chunks(), call)


def _cancelled(call: Call, usage) -> None:
    """The client went away before the answer was complete: the request is logged as cancelled (HTTP 499,
    the usual "client closed request") with the usage the upstream reported until then."""
    call.usage = usage
    call.status, call.error_kind = 499, "cancelled"
    call.error_message = "The client closed the connection before the answer was complete"


def _cut(call: Call, exc: BaseException) -> None:
    """The stream was cut after its 200 by a failure (the upstream's mid-stream, or the relay's): logged with
    the failure's status (the upstream's, else 502 / 500), ``error_kind="stream_cut"``."""
    from .providers import UpstreamError

    if isinstance(exc, UpstreamError):
        status = exc.status if exc.status >= 400 else 502
    else:
        status = 502 if isinstance(exc, (OSError, TimeoutError)) else 500
    call.status, call.error_kind = status, "stream_cut"
    call.error_message = f"The stream was cut: {type(exc).__name__}: {exc}"[:500]


def _redacted(c: ToolCall, redactions: dict) -> ToolCall:
    if c.id in redactions:
        return ToolCall(c.id, c.name, redactions[c.id], None)
    return c
