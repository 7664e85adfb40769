"""Settlements that run as tasks after the answer was sent, kept referenced until they finish.

Shared by the pipeline's hooks and the Redis store (a script reloaded after ``NOSCRIPT``); :func:`drain` lets
tests and shutdown wait for them.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__package__)

_background: set[asyncio.Task] = set()


def _spawn(loop, coro) -> None:
    task = loop.create_task(coro)
    _background.add(task)
    task.add_done_callback(_settled)


def _settled(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not settle a reservation", exc_info=task.exception())


async def drain() -> None:
    """Wait for the settlements under way (tests, shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
