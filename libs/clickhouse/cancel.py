"""Cancelling a running statement when its caller goes away.

A query runs in a worker thread, which asyncio cannot interrupt: a call cancelled by its
client, or whose deadline passed, would leave the engine busy until the query finished by
itself. So every query carries a tag (the `log_comment` setting, which `system.processes`
shows), and when the awaiting task is cancelled the tag's query is killed with
`KILL QUERY` from another connection; the cancelled task waits (briefly) for the worker to
give its connection back, so that the next call finds the engine free. The same works on
chDB and on a ClickHouse server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: The setting that carries a statement's tag.
TAG_SETTING = "log_comment"
#: Kills the statements carrying the tag `{tag:String}` (without waiting for them to stop).
KILL_SQL = "KILL QUERY WHERE Settings['log_comment'] = {tag:String} ASYNC"
#: How long a cancelled call waits for its killed statement to stop.
STOP_WAIT_SECONDS = 10.0


_TRAILING_SETTINGS = re.compile(r"\bSETTINGS\b[^()'`]*$", re.IGNORECASE | re.DOTALL)


def new_tag() -> str:
    return f"segments_{uuid.uuid4().hex}"


def with_tag(sql: str, tag: str) -> str | None:
    """`sql` with the tag in its own SETTINGS clause (cheaper than a SET statement before it),
    or None when the clause cannot be placed safely (a SETTINGS word elsewhere)."""
    setting = f"{TAG_SETTING} = '{tag}'"
    if _TRAILING_SETTINGS.search(sql):
        return f"{sql}\n, {setting}"
    if "settings" in sql.lower():
        return None
    return f"{sql}\nSETTINGS {setting}"


async def stop_on_cancel(work: Callable[[], T], kill: Callable[[], Any]) -> T:
    """`work()` in a worker thread; when the caller is cancelled meanwhile, `kill()` (also in a
    worker thread) stops it and the worker is waited for before the cancellation goes on."""
    running = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        if not running.done():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(kill)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(running), STOP_WAIT_SECONDS)
        if running.done() and not running.cancelled():
            running.exception()  # retrieved: the killed statement's error is expected
        raise
