"""Provider clients against the fake upstream over real HTTP."""

import asyncio
import json
import time

import pytest

from relay import providers
from relay.formats import chat, messages, pump, responses
from relay.providers import UpstreamError, UpstreamSettings, complete, post_json, stream_events
from tests.fake_upstream import drop, error, raw, structured, text, tool_calls
from tests.formats.sdk_check import check_chat_stream, check_messages_stream, check_responses_stream

CHAT = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "What is 2+2?"}]}
MSG = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
RESP = {"model": "gpt-5-mini", "input": "hello"}


def run(coro_fn, *args, **kw):
    async def main():
        try:
            return await coro_fn(*args, **kw)
        finally:
            await providers.aclose_clients()

    return asyncio.run(main())


async def collect(agen, limit=None):
    out = []
    async for ev in agen:
        out.append(ev)
        if limit and len(out) >= limit:
            break
    return out


# ---------------------------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "provider, kind, body, path, auth",
    [
        ("openai", "chat", CHAT, "/v1/chat/completions", ("authorization", "Bearer sk-byok")),
        ("openai", "responses", RESP, "/v1/responses", ("authorization", "Bearer sk-byok")),
        ("openrouter", "chat", CHAT, "/api/v1/chat/completions", ("authorization", "Bearer sk-byok")),
        ("anthropic", "messages", MSG, "/v1/messages", ("x-api-key", "sk-byok")),
        ("sequrity_azure", "chat", CHAT, "/azure/openai/v1/chat/completions", ("api-key", "sk-byok")),
        ("sequrity_azure", "responses", RESP, "/azure/openai/v1/responses", ("api-key", "sk-byok")),
    ],
)
def test_post_json_routes_and_auth(fake_upstream, upstream_settings, provider, kind, body, path, auth):
    answer = run(post_json, provider, kind, body, "sk-byok")
    req = fake_upstream.requests[-1]
    assert req.path == path and req.provider == provider
    assert req.headers[auth[0]] == auth[1] and req.api_key == "sk-byok"
    assert req.headers["content-type"] == "application/json"
    if provider == "anthropic":
        assert req.headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in req.headers
        assert answer["content"][0]["text"] == "Echo: hello"
    elif kind == "responses":
        assert responses.extract_text(answer) == "Echo: hello"
    else:
        assert chat.extract_text(answer) == "Echo: What is 2+2?"


def test_openrouter_model_mapping(fake_upstream, upstream_settings):
    for model, sent in [
        ("gpt-5-mini", "openai/gpt-5-mini"),
        ("o3-mini", "openai/o3-mini"),
        ("openai/gpt-5-mini", "openai/gpt-5-mini"),
        ("google/gemini-3-flash-preview", "google/gemini-3-flash-preview"),
    ]:
        run(post_json, "openrouter", "chat", {**CHAT, "model": model}, "k")
        assert fake_upstream.requests[-1].json["model"] == sent
    run(post_json, "openai", "chat", CHAT, "k")
    assert fake_upstream.requests[-1].json["model"] == "gpt-5-mini"  # only OpenRouter maps


def test_settings_from_mapping_and_urls():
    s = UpstreamSettings.from_mapping(
        {
            "RELAY_SEQURITY_AZURE_BASE_URL": "https://az.example/openai/v1/?api-version=x",
            "RELAY_UPSTREAM_TIMEOUT": "12",
        }
    )
    assert s.url("openai", "chat") == "https://api.openai.com/v1/chat/completions"
    assert s.url("openrouter", "chat") == "https://openrouter.ai/api/v1/chat/completions"
    assert s.url("anthropic", "messages") == "https://api.anthropic.com/v1/messages"
    assert s.url("sequrity_azure", "responses") == "https://az.example/openai/v1/responses?api-version=x"
    assert s.httpx_timeout.read == 12 and s.httpx_timeout.connect == 5
    with pytest.raises(ValueError):
        s.url("anthropic", "chat")
    with pytest.raises(ValueError):
        UpstreamSettings().url("sequrity_azure", "chat")


def test_unconfigured_azure_is_a_502(fake_upstream):
    with pytest.raises(UpstreamError) as info:
        run(post_json, "sequrity_azure", "chat", CHAT, "k", settings=UpstreamSettings())
    assert info.value.status == 502 and info.value.kind == "config" and "Sequrity Azure" in info.value.message


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "provider, kind, body",
    [("openai", "chat", CHAT), ("anthropic", "messages", MSG), ("openai", "responses", RESP)],
)
@pytest.mark.parametrize(
    "status, expected", [(400, 400), (401, 401), (404, 404), (422, 422), (500, 502), (503, 502), (529, 502)]
)
def test_error_status_mapping(fake_upstream, upstream_settings, provider, kind, body, status, expected):
    fake_upstream.push(error(status, f"provider says {status}"))
    with pytest.raises(UpstreamError) as info:
        run(post_json, provider, kind, body, "k")
    err = info.value
    assert err.status == expected and err.upstream_status == status
    assert f"provider says {status}" in err.message
    assert ("Anthropic" if provider == "anthropic" else "OpenAI") in err.message
    assert err.body("messages" if provider == "anthropic" else "chat")["detail"] == err.message


def test_429_keeps_retry_after(fake_upstream, upstream_settings):
    fake_upstream.push(error(429, "Rate limit reached", retry_after="17"))
    with pytest.raises(UpstreamError) as info:
        run(post_json, "openrouter", "chat", CHAT, "k")
    assert info.value.status == 429 and info.value.retry_after == "17" and info.value.kind == "rate_limited"
    assert info.value.headers() == {"Retry-After": "17"}
    assert "OpenRouter" in info.value.message and "Rate limit reached" in info.value.message


def test_timeout_is_504(fake_upstream):
    fake_upstream.push(text("late", delay=1.5))
    t0 = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        run(post_json, "openai", "chat", CHAT, "k", settings=fake_upstream.settings(timeout=0.4))
    assert info.value.status == 504 and info.value.kind == "timeout"
    assert time.monotonic() - t0 < 1.4
    assert "OpenAI" in info.value.message


def test_connection_drop_is_502(fake_upstream, upstream_settings):
    fake_upstream.push(drop())
    with pytest.raises(UpstreamError) as info:
        run(post_json, "anthropic", "messages", MSG, "k")
    assert info.value.status == 502 and info.value.kind == "connection" and "Anthropic" in info.value.message


def test_connection_refused_is_502():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings = UpstreamSettings(openai_base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(UpstreamError) as info:
        run(post_json, "openai", "chat", CHAT, "k", settings=settings)
    assert info.value.status == 502 and info.value.kind == "connection"


def test_bad_answers_are_502(fake_upstream, upstream_settings):
    fake_upstream.push(raw("<html>gateway</html>", content_type="text/html"))
    with pytest.raises(UpstreamError) as info:
        run(post_json, "openai", "chat", CHAT, "k")
    assert info.value.status == 502 and info.value.kind == "bad_response"
    fake_upstream.push(raw("upstream exploded", status=500))
    with pytest.raises(UpstreamError) as info:
        run(post_json, "openai", "chat", CHAT, "k")
    assert info.value.status == 502 and "upstream exploded" in info.value.message
    fake_upstream.push(raw('{"id": "x"}', content_type="application/json"))
    with pytest.raises(UpstreamError) as info:
        run(collect, stream_events("openai", "chat", {**CHAT, "stream": True}, "k"))
    assert info.value.status == 502 and "without a stream" in info.value.message


# -------------------------------------------------------------------------------------------- streaming


def test_stream_events_arrive_incrementally(fake_upstream, upstream_settings):
    fake_upstream.push(text("one two three four five six", chunk_delay=0.15))

    async def go():
        times = []
        t0 = time.monotonic()
        async for ev in stream_events("openai", "chat", {**CHAT, "stream": True}, "k"):
            times.append((time.monotonic() - t0, ev))
        return times

    times = run(go)
    assert times[-1][1].data == "[DONE]"
    # the first event arrived long before the last one: no buffering
    assert times[-1][0] - times[0][0] > 0.5
    assert fake_upstream.requests[-1].json["stream"] is True


def test_stream_error_status_raises_before_first_event(fake_upstream, upstream_settings):
    fake_upstream.push(error(401, "Incorrect API key provided"))
    with pytest.raises(UpstreamError) as info:
        run(collect, stream_events("openai", "chat", {**CHAT, "stream": True}, "bad"))
    assert info.value.status == 401 and "Incorrect API key" in info.value.message

    fake_upstream.push(error(429, "slow", retry_after="3"))

    async def opened():
        return await providers.open_stream("anthropic", "messages", MSG, "k")

    with pytest.raises(UpstreamError) as info:
        run(opened)
    assert info.value.status == 429 and info.value.retry_after == "3"


def test_stream_cancel_by_aclose_cancels_upstream(fake_upstream, upstream_settings):
    fake_upstream.push(text("never ends", forever=True, chunk_delay=0.01))

    async def go():
        gen = stream_events("openai", "chat", {**CHAT, "stream": True}, "k")
        first = await gen.__anext__()
        await gen.aclose()
        return first

    first = run(go)
    assert json.loads(first.data)["object"] == "chat.completion.chunk"
    assert fake_upstream.wait_for(lambda: fake_upstream.aborted_streams == 1, 3)


def test_stream_cancel_by_task_cancellation(fake_upstream, upstream_settings):
    """A client disconnect cancels the task that iterates the stream; the upstream request must end."""
    fake_upstream.push(text("never ends", forever=True, chunk_delay=0.01))

    async def consume(started):
        async for _ in stream_events("anthropic", "messages", {**MSG, "stream": True}, "k"):
            started.set()

    async def go():
        started = asyncio.Event()
        task = asyncio.create_task(consume(started))
        await asyncio.wait_for(started.wait(), 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go)
    assert fake_upstream.wait_for(lambda: fake_upstream.aborted_streams == 1, 3)


def test_stream_drop_mid_way_raises_502(fake_upstream, upstream_settings):
    fake_upstream.push(text("a b c d e f g", drop_after=3))
    with pytest.raises(UpstreamError) as info:
        run(collect, stream_events("openai", "responses", {**RESP, "stream": True}, "k"))
    assert info.value.status == 502


def test_stream_read_timeout_is_504(fake_upstream):
    fake_upstream.push(text("a b c d e f", chunk_delay=1.0))
    with pytest.raises(UpstreamError) as info:
        run(
            collect,
            stream_events(
                "openai", "chat", {**CHAT, "stream": True}, "k", settings=fake_upstream.settings(timeout=0.3)
            ),
        )
    assert info.value.status == 504


def test_pools_per_loop_and_concurrency(fake_upstream, upstream_settings):
    async def many():
        first = providers.get_client("openai")
        results = await asyncio.gather(*[post_json("openai", "chat", CHAT, "k") for _ in range(64)])
        assert providers.get_client("openai") is first
        assert providers.get_client("anthropic") is not first
        return len(results)

    assert run(many) == 64
    assert run(many) == 64  # a second event loop gets its own clients
    assert len(fake_upstream.requests) == 128


# --------------------------------------------------------------------------- relaying streams end to end


def test_relay_chat_stream_end_to_end(fake_upstream, upstream_settings):
    fake_upstream.push(
        tool_calls(("get_weather", {"city": "London"}), ("send_email", {"to": "x"}), text="Checking")
    )

    async def decide(pending):
        return [c.id for c in pending if c.name != "send_email"], "Tool call to 'send_email' is denied."

    async def go():
        relay = chat.ChatStreamRelay(lambda u: "tc-" + u)
        body = chat.upstream_body({**CHAT, "stream": True})
        out = [b async for b in pump(relay, stream_events("openai", "chat", body, "k"), decide)]
        return relay, out

    relay, out = run(go)
    assert fake_upstream.requests[-1].json["stream_options"] == {"include_usage": True}
    _, final = check_chat_stream(out)
    assert [c.function.name for c in final.choices[0].message.tool_calls] == ["get_weather"]
    assert relay.usage.total_tokens == 19


def test_relay_messages_and_responses_streams_end_to_end(fake_upstream, upstream_settings):
    fake_upstream.push(text("Hello in one word"), text("Hi there"), text("Hey you"))

    async def go():
        m = messages.MessagesStreamRelay(lambda u: u)
        out_m = [
            b async for b in pump(m, stream_events("anthropic", "messages", {**MSG, "stream": True}, "k"))
        ]
        r = responses.ResponsesStreamRelay(lambda u: u)
        out_r = [
            b async for b in pump(r, stream_events("openai", "responses", {**RESP, "stream": True}, "k"))
        ]
        a = responses.ChatToResponsesRelay(lambda u: u, model="gpt-5-mini")
        body = responses.to_chat_request({**RESP, "stream": True})
        out_a = [b async for b in pump(a, stream_events("sequrity_azure", "chat", body, "k"))]
        return out_m, out_r, out_a

    out_m, out_r, out_a = run(go)
    _, snap = check_messages_stream(out_m)
    assert snap.content[0].text == "Hello in one word"
    assert check_responses_stream(out_r)[-1]["type"] == "response.completed"
    assert check_responses_stream(out_a)[-1]["response"]["output"][0]["content"][0]["text"] == "Hey you"


def test_relay_stream_upstream_failure_mid_stream(fake_upstream, upstream_settings):
    fake_upstream.push(text("a b c d e f g h", drop_after=3))

    async def go():
        relay = chat.ChatStreamRelay(lambda u: u)
        return [b async for b in pump(relay, stream_events("openai", "chat", {**CHAT, "stream": True}, "k"))]

    _, final = check_chat_stream(run(go))
    assert "Could not reach OpenAI" in final.choices[0].message.content


# ------------------------------------------------------------------------------------------- complete()


def test_complete_openai_structured(fake_upstream, upstream_settings):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fake_upstream.push(structured({"answer": 4}, usage=(100, 9)))
    c = run(
        complete,
        "openai",
        "gpt-5-mini",
        "k",
        system="You are a planner.",
        messages=[{"role": "user", "content": "2+2?"}],
        json_schema=schema,
        schema_name="plan",
        params={"reasoning_effort": "minimal"},
    )
    assert c.parsed == {"answer": 4} and json.loads(c.text) == {"answer": 4}
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (100, 9)
    sent = fake_upstream.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "You are a planner."}
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "plan", "schema": schema, "strict": True},
    }
    assert sent["reasoning_effort"] == "minimal"


def test_complete_anthropic_forced_tool(fake_upstream, upstream_settings):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    fake_upstream.push(structured({"answer": 4}))
    c = run(
        complete,
        "anthropic",
        "claude-sonnet-4-5",
        "k",
        system="sys",
        messages=[{"role": "system", "content": "more"}, {"role": "user", "content": "2+2?"}],
        json_schema=schema,
        schema_name="plan",
        params={"thinking": {"type": "adaptive"}},
    )
    assert c.parsed == {"answer": 4}
    sent = fake_upstream.requests[-1].json
    assert sent["tools"][0]["name"] == "plan" and sent["tools"][0]["input_schema"] == schema
    assert sent["tool_choice"] == {"type": "tool", "name": "plan"}
    assert sent["system"] == "sys\n\nmore" and sent["messages"] == [{"role": "user", "content": "2+2?"}]
    assert sent["max_tokens"] == 8192 and "thinking" not in sent


def test_complete_wraps_non_object_schema_and_plain_text(fake_upstream, upstream_settings):
    fake_upstream.push(structured({"value": ["a", "b"]}), structured({"value": True}), text("just text"))
    c = run(
        complete,
        "openrouter",
        "gpt-5-mini",
        "k",
        system=None,
        messages=[{"role": "user", "content": "q"}],
        json_schema={"type": "array", "items": {"type": "string"}},
    )
    assert c.parsed == ["a", "b"]
    assert fake_upstream.requests[-1].json["model"] == "openai/gpt-5-mini"
    wrapped = fake_upstream.requests[-1].json["response_format"]["json_schema"]["schema"]
    assert wrapped["properties"]["value"] == {"type": "array", "items": {"type": "string"}}
    c = run(
        complete,
        "anthropic",
        "claude",
        "k",
        system=None,
        messages=[{"role": "user", "content": "q"}],
        json_schema={"type": "boolean"},
    )
    assert c.parsed is True
    c = run(
        complete,
        "sequrity_azure",
        "gpt-5-mini",
        "k",
        system=None,
        messages=[{"role": "user", "content": "q"}],
    )
    assert c.text == "just text" and c.parsed is None
    assert fake_upstream.requests[-1].provider == "sequrity_azure"


def test_complete_propagates_upstream_errors(fake_upstream, upstream_settings):
    fake_upstream.push(error(401, "invalid x-api-key"))
    with pytest.raises(UpstreamError) as info:
        run(complete, "anthropic", "claude", "bad", system=None, messages=[{"role": "user", "content": "q"}])
    assert info.value.status == 401 and "invalid x-api-key" in info.value.message


def test_generation_params():
    gp = providers.generation_params
    llm = {
        "temperature": 0.3,
        "seed": 1,
        "max_completion_tokens": 100,
        "reasoning": {"enabled": True, "effort": "high", "adaptive": False},
    }
    assert gp("openai", llm) == {
        "temperature": 0.3,
        "seed": 1,
        "max_completion_tokens": 100,
        "reasoning_effort": "high",
    }
    assert gp("openrouter", llm)["reasoning"] == {"effort": "high"}
    a = gp("anthropic", llm)
    assert a["thinking"] == {"type": "enabled", "budget_tokens": 16384} and a["max_tokens"] > 16384
    assert "temperature" not in a and "seed" not in a
    assert gp("anthropic", {"reasoning": {"adaptive": True}}) == {"thinking": {"type": "adaptive"}}
    assert gp("openai", None) == {}


def test_closing_the_relay_pump_cancels_upstream(fake_upstream, upstream_settings):
    """The view's generator is closed when the client disconnects: the upstream request must end too."""
    fake_upstream.push(text("never ends", forever=True, chunk_delay=0.01))

    async def go():
        relay = chat.ChatStreamRelay(lambda u: u)
        gen = pump(relay, stream_events("openai", "chat", {**CHAT, "stream": True}, "k"))
        first = await gen.__anext__()
        await gen.aclose()
        return first

    assert run(go).startswith(b"data: ")
    assert fake_upstream.wait_for(lambda: fake_upstream.aborted_streams == 1, 3)


def test_call_from_sync_code(fake_upstream, upstream_settings):
    answer = providers.call_from_sync_code(post_json, "openai", "chat", CHAT, "k")
    assert chat.extract_text(answer) == "Echo: What is 2+2?"
