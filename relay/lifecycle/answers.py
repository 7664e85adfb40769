"""How answers leave the relay, the same for every architecture: JSON, errors, and streams that finish the
request exactly once (when their end is known, or when they stop early)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.http import HttpResponse, JsonResponse

from .. import session_store
from ..formats import error_body
from ..formats._json import dumps
from ..streaming import ClosingStreamingResponse, shielded
from .call import Call
from .finish import finish

logger = logging.getLogger(__name__)


def error_response(
    status: int, message: str, api: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    resp = JsonResponse(error_body(status, message, api), status=status)
    for k, v in (headers or {}).items():
        resp[k] = v
    return resp


def json_response(data: dict[str, Any], call: Call) -> HttpResponse:
    resp = HttpResponse(dumps(data), content_type="application/json")
    resp["X-Session-ID"] = call.session_id
    return resp


def sse_response(chunks: AsyncIterator[bytes], call: Call) -> ClosingStreamingResponse:
    """An event stream; ``chunks`` is closed at once when the client goes away (``relay.streaming``)."""
    resp = ClosingStreamingResponse(chunks, content_type="text/event-stream")
    resp["Cache-Control"] = "no-cache"
    resp["X-Accel-Buffering"] = "no"
    resp["X-Session-ID"] = call.session_id
    return resp


async def remember_response_id(call: Call, response_id: Any) -> None:
    """Responses API: the id of an answer leads back to its session (``previous_response_id``)."""
    if call.route.api == "responses" and isinstance(response_id, str) and response_id:
        assert call.session_id is not None
        await session_store.aremember_response(response_id, call.session_id)


class StreamFinish:
    """Finishes a streamed request exactly once (``relay.lifecycle.finish``): ``at_end`` when the answer's end
    is known, before the client receives its last event (so a client that drops the connection right after
    it is metered like any other); ``if_stopped_early`` from the stream's ``finally``, marking the request
    as its early end deserves (the client went away, or the stream was cut) first."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.done = False

    async def at_end(
        self, before: Callable[[], Awaitable[None]] | None = None, *, swallow: bool = False
    ) -> None:
        """Finish now; ``before`` (the architecture's own bookkeeping) runs first. ``swallow``: a failed
        finish is logged and does not cut the client's answer short."""
        self.done = True
        try:
            if before is not None:
                await before()
        finally:
            try:
                await shielded(finish(self.call))
            except Exception:
                if not swallow:
                    raise
                logger.exception("finishing a stream failed")

    async def if_stopped_early(self, mark: Callable[[], None]) -> None:
        """The stream ended before ``at_end``: ``mark`` the call (cancelled, cut), then finish."""
        if self.done:
            return
        self.done = True
        mark()
        await shielded(finish(self.call))
