"""run_blocking: bounded by the caller's deadline, and tells the thread to stop."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from libs.common.config import Config
from libs.common.deadline import run_blocking

from .conftest import FakeService, raw_method, running

observed: dict[str, threading.Event] = {}


async def _blocking(request: bytes, context: Any) -> bytes:
    def work(cancelled: threading.Event) -> bytes:
        if request == b"quick":
            return b"done"
        observed["cancelled"] = cancelled
        # Waits until told to stop: the deadline passing must be what sets it.
        cancelled.wait(30)
        return b"stopped" if cancelled.is_set() else b"ran out"

    return await run_blocking(context, work)


HANDLERS = {"blocking": grpc.unary_unary_rpc_method_handler(_blocking)}


async def test_quick_work_returns(config: Config) -> None:
    async with running([FakeService(HANDLERS)], config) as (_, channel):
        method = raw_method(channel, "unary_unary", "blocking")
        assert await method(b"quick", timeout=10) == b"done"
        assert await method(b"quick") == b"done"  # no deadline at all


async def test_deadline_stops_the_thread(config: Config) -> None:
    async with running([FakeService(HANDLERS)], config) as (_, channel):
        method = raw_method(channel, "unary_unary", "blocking")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(b"slow", timeout=0.3)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert observed["cancelled"].wait(10)
