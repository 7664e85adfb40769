"""Single-LLM mode: forward to the provider in its own format, police the tool calls and results.

Tool results the client sends are checked against the pending calls (result / session-after blocks,
manual wrapper, guardrails) and rewritten before they reach the model; every other tool result and tool call
of the history the client resends is guarded too (``ToolGuard.guard_request``: whoever produced it, on every
turn, from the session's memo when seen before). Proposed tool calls are checked (session-before and check
rules, guardrails) before they reach the client, and get ``tc-`` ids that we map back to the upstream's ids
when the conversation returns.

Metering: a streamed answer is metered and its session saved as soon as the upstream's end is known and
before the client receives the final event (``pump(..., on_done=)``), so a client that drops the connection
right after ``data: [DONE]`` is metered like any other; a client that goes away earlier leaves a request
marked cancelled (499) with the usage the upstream had reported by then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse

from ..formats import FORMATS, pump
from ..formats import chat as chat_format
from ..formats import responses as responses_format
from ..formats.model import ToolCall, Usage
from ..guardrails import ClassifierRequest
from ..lifecycle.answers import StreamFinish, json_response, remember_response_id, sse_response
from ..lifecycle.call import Call, RelayError
from ..lifecycle.state import SessionState
from ..meta import DEFAULT_META
from ..providers import UpstreamError, complete, generation_params, open_stream, post_json
from ..sqrt import PolicyEngine
from ..toolcalls import selection
from ..toolcalls.guard import ToolGuard
from ..toolcalls.ids import new_tool_call_id
from ..toolcalls.policy import (
    CalledTool,
    apply_tool_results,
    check_proposed_calls,
    policy_engine,
    wrapped_value_text,
)

PATH_KIND = {"chat": "chat", "messages": "messages", "responses": "responses"}


@dataclass
class Turn:
    """One single-LLM request: its call, the session's policy and guardrails, and the usage of the calls the
    relay makes itself (classifiers, tool selection) on top of the answer's."""

    call: Call
    state: SessionState
    engine: PolicyEngine
    guard: ToolGuard
    side_usage: Usage = field(default_factory=Usage)

    @classmethod
    def start(cls, call: Call) -> Turn:
        state = call.state
        assert state is not None
        turn = cls(call, state, policy_engine(state.config["policy"], dual_llm=False), ToolGuard())
        turn.guard = ToolGuard.for_session(
            state.config["features"], state.memo_holder, ask=turn.classify, log=call.log_step
        )
        return turn

    async def classify(self, req: ClassifierRequest) -> Any:
        """A guardrail classifier's question, on the session's model."""
        call = self.call
        reply = await complete(
            call.route.provider,
            call.models[0],
            call.api_key,
            system=req.system_prompt,
            messages=[{"role": "user", "content": req.user_prompt}],
            json_schema=req.json_schema,
            schema_name="classification",
        )
        self.side_usage.add(reply.usage)
        return reply.parsed


async def run_single(call: Call, request: HttpRequest) -> HttpResponse:
    """The architecture stage: one request to the provider, policed both ways."""
    api = call.route.api
    fmt = FORMATS[api]
    turn = Turn.start(call)
    answer_usage = Usage()
    try:
        _start_turn(turn)
        body = await _apply_results(turn)
        body = await _select_tools(turn, body)
        assert call.decoded is not None
        stream = bool(call.decoded.stream)
        path_kind, upstream = _upstream_request(turn, body, stream)
        azure_responses = api == "responses" and path_kind == "chat"
        if stream:
            events = await open_stream(call.route.provider, path_kind, upstream, call.api_key)
            return _stream(turn, events, azure_responses)
        answer = await post_json(call.route.provider, path_kind, upstream, call.api_key)
        answer_usage = fmt.extract_usage(answer)
        return await _answer(turn, answer, azure_responses)
    except asyncio.CancelledError:
        # The client went away (Django cancels the request's task): the LLM calls made so far are metered.
        call.cancelled(answer_usage + turn.side_usage)
        raise


def _start_turn(turn: Turn) -> None:
    """A user message after a completed turn starts the next turn (max_n_turns is checked here)."""
    call, st = turn.call, turn.state
    decoded = call.decoded
    assert decoded is not None
    if decoded.trailing_tool_results and st.pending:
        return
    max_turns = st.fsm.get("max_n_turns")
    if max_turns is not None and st.turns >= max_turns:
        raise RelayError(400, f"Session {call.session_id} has used all of its {max_turns} turns", "max_turns")
    query = decoded.user_query
    if query is not None:
        call.log_step("user_message", text=query[:4000])
    clear = st.fsm.get("clear_session_meta")
    if clear == "every_attempt" or (clear == "every_turn" and not st.pending):
        st.session_meta = DEFAULT_META  # sqrt.md §8 (a single-LLM request is one attempt)


async def _apply_results(turn: Turn) -> dict[str, Any]:
    """Record tool results for pending calls; returns the body as the model may see it: those results as
    the policy and guardrails decided, and every other tool result and tool call of the history guarded
    too (``ToolGuard.guard_request``)."""
    call, st, guard = turn.call, turn.state, turn.guard
    assert call.decoded is not None
    results = [r for r in call.decoded.trailing_tool_results if r.call_id in st.pending]
    delivered: dict[str, str] = {}
    if results:
        # A caller's metadata wrapper (sqrt.md §7) is for us: the model gets (and the guardrails scan) its value.
        scans = {
            r.call_id: await guard.scan_result(r.call_id, wrapped_value_text(r.content) or r.content)
            for r in results
        }
        st.session_meta, _ = apply_tool_results(
            turn.engine, st.pending, results, st.session_meta, {cid: scan.meta for cid, scan in scans.items()}
        )
        for r in results:
            text = scans[r.call_id].text
            delivered[r.call_id] = text
            guard.remember_delivered(r.content, scans[r.call_id])
            pending = st.pending.pop(r.call_id)
            call.log_step(
                "tool_result",
                call_id=r.call_id,
                tool=pending.tool,
                content=text[:4000],
                meta=scans[r.call_id].meta.to_json(),
            )
    return await guard.guard_request(FORMATS[call.route.api], call.body, delivered)


async def _select_tools(turn: Turn, body: dict[str, Any]) -> dict[str, Any]:
    """``fsm.min_num_tools_for_filtering``: with that many tools or more, the model first picks the relevant
    ones for the turn (structured output); the choice is kept for the rest of the turn. A failed or empty
    selection keeps every tool."""
    call, st = turn.call, turn.state
    tools = body.get("tools")
    if not isinstance(tools, list) or not selection.needs_selection(
        len(tools), st.fsm.get("min_num_tools_for_filtering")
    ):
        return body
    assert call.decoded is not None
    if not st.pending:  # a new turn chooses; a continuation keeps the turn's choice
        messages, schema = selection.selection_request(call.decoded.user_query, call.decoded.tools)
        try:
            reply = await complete(
                call.route.provider,
                call.models[0],
                call.api_key,
                system=selection.SELECTION_SYSTEM,
                messages=messages,
                json_schema=schema,
                schema_name="tool_selection",
            )
            turn.side_usage.add(reply.usage)
            chosen = selection.chosen_names(reply.parsed)
        except Exception:  # noqa: BLE001 - filtering is an optimisation; without it every tool is offered
            chosen = None
        st.tool_filter = chosen
        call.log_step("tool_filter", selected=st.tool_filter, offered=len(tools))
    if not st.tool_filter:
        return body
    return {**body, "tools": selection.keep_selected(tools, st.tool_filter)}


def _upstream_request(turn: Turn, body: dict[str, Any], stream: bool) -> tuple[str, dict[str, Any]]:
    """(path kind, body) for the provider: model set, our ids mapped back, Responses→Chat for azure."""
    call = turn.call
    api, provider = call.route.api, call.route.provider
    fmt = FORMATS[api]
    body = fmt.rewrite_ids_in_request(body, turn.state.id_map)
    body = {**body, "model": call.models[0]}
    if api != "responses":
        # X-Config llm.pllm applies to the single LLM (control-api.md §6) where the request leaves a field unset.
        defaults = generation_params(provider, (turn.state.config.get("llm") or {}).get("pllm"))
        body = {**defaults, **body}
    if api == "responses" and provider == "sequrity_azure":
        return "chat", responses_format.to_chat_request(body, stream=stream)
    return PATH_KIND[api], fmt.upstream_body(body, stream=stream)


def _new_id_factory(turn: Turn, proposed: dict[str, ToolCall]) -> Callable[[str], str]:
    """Gives each call let through a ``tc-`` id, remembered with the upstream's id and as pending."""
    st = turn.state

    def new_id(upstream_id: str) -> str:
        assert turn.call.session_id is not None
        ours = new_tool_call_id(turn.call.session_id)
        st.id_map[ours] = upstream_id
        src = proposed.get(upstream_id)
        if src is not None:
            st.pending[ours] = CalledTool(src.name, src.arguments)
        return ours

    return new_id


async def _decide(turn: Turn, calls: list[ToolCall]) -> tuple[list[str], str | None]:
    """Guardrails, then the policy, on the calls the model proposes: (allowed upstream ids, denial text)."""
    call, st, guard = turn.call, turn.state, turn.guard
    scans = {c.id: await guard.scan_arguments(c) for c in calls}
    check = check_proposed_calls(
        turn.engine, calls, st.session_meta, {cid: s.meta for cid, s in scans.items()}
    )
    st.session_meta = check.session_meta
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
        shown = guard.pending_argument_rewrites.get(c.id, c.arguments) or {}
        call.log_step(
            "tool_call",
            call_id=c.id,
            tool=c.name,
            args={k: {"value": v, "meta": meta} for k, v in shown.items()},
            verdict=verdict,
            record=record,
            blocked=blocked,
            rule=check.decided_by.get(c.id),
            session_meta=check.session_meta_before[c.id].to_json(),
        )
    if len(allowed) < len(calls):
        st.denied_in_turn = True
    return allowed, (" ".join(texts) or None)


def _end_of_answer(turn: Turn, has_tool_calls: bool, text: str) -> None:
    st = turn.state
    if has_tool_calls:
        st.status = "open"
        return
    st.turns += 1
    st.status = "denied" if st.denied_in_turn else "success"
    st.denied_in_turn = False
    turn.call.log_step("assistant_message", text=text[:4000])
    max_turns = st.fsm.get("max_n_turns")
    if max_turns is not None and st.turns >= max_turns:
        st.closed = True


async def _answer(turn: Turn, answer: dict[str, Any], azure_responses: bool) -> HttpResponse:
    """A complete upstream answer: policy and guardrails on its tool calls, usage, session, response."""
    call = turn.call
    fmt = FORMATS[call.route.api]
    if azure_responses:
        answer = responses_format.from_chat_answer(
            answer, model=call.models[0], extra=responses_format.response_echo(call.body)
        )
    proposed = fmt.extract_tool_calls(answer)
    if proposed:
        allowed, denial = await _decide(turn, proposed)
        fmt.filter_tool_calls(answer, set(allowed), denial)
        redactions = turn.guard.pending_argument_rewrites
        if redactions:
            fmt.rewrite_answer_arguments(answer, lambda cid, name, args: redactions.get(cid))
        fmt.rewrite_answer_ids(
            answer, _new_id_factory(turn, {c.id: _redacted(c, redactions) for c in proposed})
        )
    call.usage = fmt.extract_usage(answer) + turn.side_usage
    remaining = fmt.extract_tool_calls(answer)
    _end_of_answer(turn, bool(remaining), fmt.extract_text(answer))
    await remember_response_id(call, answer.get("id"))
    return json_response(answer, call)


def _stream(turn: Turn, events: Any, azure_responses: bool) -> HttpResponse:
    """Relay the upstream stream; the request is metered and saved as soon as its end is known."""
    call = turn.call
    api = call.route.api
    fmt = FORMATS[api]
    proposed_by_id: dict[str, ToolCall] = {}
    new_id = _new_id_factory(turn, proposed_by_id)
    relay: Any
    if azure_responses:
        relay = responses_format.ChatToResponsesRelay(
            new_id, model=call.models[0], extra=responses_format.response_echo(call.body)
        )
    elif api == "chat":
        assert call.decoded is not None
        relay = chat_format.ChatStreamRelay(new_id, include_usage=call.decoded.include_usage)
    else:
        relay = getattr(fmt, {"messages": "MessagesStreamRelay", "responses": "ResponsesStreamRelay"}[api])(
            new_id
        )

    async def decide(pending: list[ToolCall]) -> tuple[list[str], str | None]:
        for c in pending:
            proposed_by_id[c.id] = c
        return await _decide(turn, pending)

    end = StreamFinish(call)
    aborted: list[BaseException] = []

    def abort_message(exc: BaseException) -> str:
        aborted.append(exc)  # the upstream failed mid-stream: pump ends the stream with an error event
        return str(exc)

    async def account() -> None:
        """The upstream's answer is complete (usage, tool calls, text): what the request comes to."""
        call.usage = relay.usage + turn.side_usage
        if aborted:  # a 200 and an error event, not an answer: logged as the failure it is, marked cut
            _cut(call, aborted[0])
        _end_of_answer(turn, bool(relay.tool_calls), relay.text)
        await remember_response_id(call, getattr(relay, "response_id", None))

    async def complete_stream() -> None:  # pump's ``on_done``: before the client receives the end
        await end.at_end(account)

    async def chunks() -> AsyncIterator[bytes]:
        call.streamed = True
        failure: BaseException | None = None

        def stopped_early() -> None:
            # The client went away before the end: what the upstream reported so far is metered, and the
            # request is marked cancelled (closing pump has closed the upstream request). Or the relay
            # failed mid-stream: marked cut.
            call.cancelled(relay.usage + turn.side_usage)
            if failure is not None:
                _cut(call, failure)

        try:
            async for chunk in pump(
                relay, events, decide, error_message=abort_message, on_done=complete_stream
            ):
                yield chunk
        except Exception as exc:
            failure = exc
            raise
        finally:
            await end.if_stopped_early(stopped_early)

    return sse_response(chunks(), call)


def _cut(call: Call, exc: BaseException) -> None:
    """The stream was cut after its 200 by a failure (the upstream's mid-stream, or the relay's): logged with
    the failure's status (the upstream's, else 502 / 500), ``error_kind="stream_cut"``."""
    if isinstance(exc, UpstreamError):
        status = exc.status if exc.status >= 400 else 502
    else:
        status = 502 if isinstance(exc, (OSError, TimeoutError)) else 500
    call.fail(status, "stream_cut", f"The stream was cut: {type(exc).__name__}: {exc}"[:500])


def _redacted(c: ToolCall, redactions: dict[str, dict[str, Any]]) -> ToolCall:
    if c.id in redactions:
        return ToolCall(c.id, c.name, redactions[c.id], None)
    return c
