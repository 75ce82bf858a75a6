"""Waking the waiters of this process when something they follow changed (new entries, a
changed live segment), without losing a notification that comes between their look and
their wait."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    """`notify()` wakes every waiter. A waiter takes `current()` before it looks for news and
    then waits on it, so that a notification in between is not missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event


async def wait_for(event: asyncio.Event, seconds: float) -> None:
    """Waits until `event` is set or `seconds` have passed, whichever is first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(0.0, seconds))
