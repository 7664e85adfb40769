"""The end of a relayed stream is known before the client gets it (issue #12, part 2).

``pump(..., on_done=...)`` runs the caller's bookkeeping (metering, saving the session) once the relay has
produced its final event(s) and before the first of them is yielded; ``ClosingStreamingResponse`` closes the
view's generator when the server stops iterating (client gone), so its cleanup runs at once.
"""

import asyncio
import json
from contextlib import aclosing

import pytest

from relay.formats import SSEEvent, chat, messages, pump, responses
from tests import fake_upstream as fu


def upstream(api: str, reply=None) -> list[SSEEvent]:
    reply = reply or fu.text("one two three", usage=(21, 5))
    body = {"stream": True, "stream_options": {"include_usage": True}}
    build = {"chat": fu.chat_stream, "messages": fu.messages_stream, "responses": fu.responses_stream}[api]
    return [SSEEvent(e, d) for e, d in build(reply, body, "m")]


def relay_for(api: str):
    return {
        "chat": lambda: chat.ChatStreamRelay(lambda u: "tc-" + u),
        "messages": lambda: messages.MessagesStreamRelay(lambda u: "tc-" + u),
        "responses": lambda: responses.ResponsesStreamRelay(lambda u: "tc-" + u),
        "azure": lambda: responses.ChatToResponsesRelay(lambda u: "tc-" + u, model="m"),
    }[api]()


FINAL = {
    "chat": b"data: [DONE]",
    "messages": b"event: message_stop",
    "responses": b"event: response.completed",
    "azure": b"event: response.completed",
}


async def _events(evs, fail_after=None):
    for i, ev in enumerate(evs):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("upstream went away")
        await asyncio.sleep(0)
        yield ev


@pytest.mark.parametrize("api", ["chat", "messages", "responses", "azure"])
@pytest.mark.parametrize("reply", ["text", "tool_calls"])
def test_on_done_runs_once_before_the_final_event(api, reply):
    r = (
        fu.text("one two three", usage=(21, 5))
        if reply == "text"
        else fu.tool_calls(("f", {"a": 1}), usage=(21, 5))
    )
    relay = relay_for(api)
    seen: list = []

    async def on_done():
        seen.append(("done", relay.usage.prompt_tokens, relay.usage.completion_tokens, len(relay.tool_calls)))

    async def run():
        async for chunk in pump(
            relay, _events(upstream("chat" if api == "azure" else api, r)), on_done=on_done
        ):
            seen.append(chunk)

    asyncio.run(run())
    done = [i for i, x in enumerate(seen) if isinstance(x, tuple)]
    final = [i for i, x in enumerate(seen) if isinstance(x, bytes) and x.startswith(FINAL[api])]
    assert len(done) == 1 and final and done[0] < final[0]
    assert seen[done[0]][1:] == (21, 5, 1 if reply == "tool_calls" else 0)


def test_on_done_is_not_called_when_the_stream_is_closed_early():
    called = []

    async def on_done():
        called.append(1)

    async def run():
        gen = pump(relay_for("chat"), _events(upstream("chat")), on_done=on_done)
        await gen.__anext__()
        await gen.aclose()

    asyncio.run(run())
    assert called == []


def test_on_done_runs_on_an_upstream_failure_and_its_errors_do_not_cut_the_stream():
    relay = relay_for("chat")
    calls = []

    async def on_done():
        calls.append(relay.done)
        raise RuntimeError("bookkeeping bug")

    async def run():
        return [c async for c in pump(relay, _events(upstream("chat"), fail_after=2), on_done=on_done)]

    out = asyncio.run(run())
    assert calls == [True] and out[-1] == b"data: [DONE]\n\n" and b"upstream went away" in b"".join(out)


def test_closing_streaming_response_closes_the_view_generator_on_disconnect(settings):
    """Django iterates ``aclosing(aiter(response))``; a client disconnect cancels that task while it is
    sending. The view's own generator must be closed too (its ``finally`` meters the request)."""
    from relay.streaming import ClosingStreamingResponse

    cleaned = []

    async def view_chunks():
        try:
            for i in range(100):
                yield f"data: {json.dumps({'i': i})}\n\n".encode()
        finally:
            await asyncio.sleep(0)  # cleanup may await (saving the session)
            cleaned.append("finally")

    async def serve(resp, sent):
        async with aclosing(aiter(resp)) as content:  # what django.core.handlers.asgi does
            async for part in content:
                sent.append(part)
                await asyncio.sleep(10)  # the client stopped reading: send() blocks

    async def run():
        sent: list = []
        resp = ClosingStreamingResponse(view_chunks())
        task = asyncio.create_task(serve(resp, sent))
        await asyncio.sleep(0.05)
        task.cancel()  # the disconnect listener cancels the response task
        with pytest.raises(asyncio.CancelledError):
            await task
        # At once, in the request's own task: not whenever the garbage collector finalises the generator
        # (``resp`` is still referenced here, as it is in Django's handler until the end).
        return sent, list(cleaned)

    sent, cleaned_in_time = asyncio.run(run())
    assert len(sent) == 1 and cleaned_in_time == ["finally"]
