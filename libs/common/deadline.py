"""Blocking work in threads, bounded by the caller's deadline.

grpc ends a call with DEADLINE_EXCEEDED when the client's deadline passes, and cancels the
handler's task; a thread running blocking work (a chDB query, a file write) cannot be
cancelled that way. `run_blocking()` does not start the work when the deadline has already
passed, stops waiting when it expires, and hands the work a `threading.Event` it can poll
(`cancelled.is_set()`) to stop early instead of outliving the call uselessly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from libs.common.errors import DeadlineExceeded

T = TypeVar("T")


def time_remaining(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """Seconds left before the caller's deadline; None when the caller set none."""
    remaining = context.time_remaining()
    return None if remaining is None else max(0.0, remaining)


async def run_blocking(
    context: grpc.aio.ServicerContext[Any, Any],
    work: Callable[[threading.Event], T],
) -> T:
    """Runs `work(cancelled)` in a thread; raises `DeadlineExceeded` when time runs out.

    `cancelled` is set when the deadline passes or the call is cancelled, so that long work
    can check it between steps and return early.
    """
    remaining = time_remaining(context)
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the deadline passed before the work started")
    cancelled = threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(work, cancelled))
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout=remaining)
    except TimeoutError as exc:
        raise DeadlineExceeded("the deadline passed before the work finished") from exc
    finally:
        if not future.done():
            cancelled.set()
