"""The fake upstream's stream counters belong to the test that started the stream.

``test_closing_the_relay_pump_cancels_upstream`` failed once in a full run: it waits for
``aborted_streams == 1``, and a stream left behind by ``test_stream_read_timeout_is_504`` (its client timed out
while the fake slept 1 s between two events) noticed that its client was gone only at its next write, about
0.7 s later, after ``reset()``: in whichever test ran then. When that was the pump test, the count was 2.
Streams now count only for the test (``reset()`` epoch) that started them.
"""

import asyncio
import time

from relay import providers
from relay.providers import UpstreamError, stream_events
from tests.fake_upstream import text

CHAT = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "x"}], "stream": True}


def test_a_stream_abandoned_in_an_earlier_test_does_not_count_in_the_next(fake_upstream):
    fake_upstream.push(text("a b c d e f", chunk_delay=0.6))

    async def go():
        try:
            async for _ in stream_events(
                "openai", "chat", CHAT, "k", settings=fake_upstream.settings(timeout=0.2)
            ):
                pass
        except UpstreamError as exc:
            return exc.status
        finally:
            await providers.aclose_clients()

    assert asyncio.run(go()) == 504
    fake_upstream.reset()  # what the fixture does between two tests
    time.sleep(1.5)  # the abandoned stream writes again and fails meanwhile
    assert fake_upstream.aborted_streams == 0 and fake_upstream.completed_streams == 0
