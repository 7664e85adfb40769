"""Streaming responses that always run their generator's cleanup, and a cancellation-proof finish.

Django's ASGI handler iterates a ``StreamingHttpResponse`` through ``aclosing(aiter(response))``: when the
client goes away it cancels the task and closes *that* wrapper generator, but not the async generator the
view passed in. The view's generator (which meters the request and releases the session lock in its
``finally``) was then left suspended at a ``yield`` until the garbage collector finalised it: sometimes
seconds later, sometimes never (a worker restart), and the request was not metered. ``ClosingStreamingResponse``
closes the view's generator itself, at once, from the task that served the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from django.http import StreamingHttpResponse

logger = logging.getLogger(__name__)


class ClosingStreamingResponse(StreamingHttpResponse):
    """A ``StreamingHttpResponse`` over an async iterator that is ``aclose()``d when iteration stops,
    whether it ran to its end, failed, or the server stopped reading (client disconnect, cancellation)."""

    def __init__(self, streaming_content=(), *args, **kwargs) -> None:
        self._source = streaming_content
        super().__init__(streaming_content, *args, **kwargs)

    async def __aiter__(self):
        try:
            async for part in super().__aiter__():
                yield part
        finally:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                await aclose()


async def shielded(awaitable: Awaitable) -> None:
    """Await ``awaitable`` to its end even if the awaiting task is cancelled meanwhile (the cancellation is
    re-raised after it finished): for the bookkeeping that must happen once a request reached a provider."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            logger.error("cleanup after a cancelled request failed", exc_info=task.exception())
        raise
