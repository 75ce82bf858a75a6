"""Abuse limits: failed authentication per client address, and concurrent expensive calls
per principal; both RESOURCE_EXHAUSTED with a RetryInfo delay. And the audit trail's store
going away does not undo a write."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from libs.common.config import Config
from libs.common.errors import ResourceExhausted
from libs.common.limits import ConcurrencyLimiter, FailedAuthLimiter, client_address
from libs.common.logging import configure_logging
from libs.common.rpc_roles import Role
from libs.common.server import RunningServer
from libs.common.status import call_status
from tests.support.auth import ADMIN_KEY, StaticDecider, authorized_channel, bearer

from .conftest import TEST_ROLES, FakeService, make_server, raw_method

gate = asyncio.Event()


async def _held(request: bytes, context: Any) -> bytes:
    await gate.wait()
    return b"done"


HANDLERS = {
    "slow": grpc.unary_unary_rpc_method_handler(_held),
    "unary_unary": grpc.unary_unary_rpc_method_handler(lambda r, c: b"ok"),
}


def _retry_delay(error: grpc.aio.AioRpcError) -> float:
    status = call_status(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    raise AssertionError("no RetryInfo")


def test_client_addresses() -> None:
    assert client_address("ipv4:10.0.0.7:51234") == "10.0.0.7"
    assert client_address("ipv6:[::1]:51234") == "::1"
    assert client_address("unix:/tmp/s") == "unix:/tmp/s"


def test_failed_authentications_refill_per_address() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(per_minute=2, clock=lambda: now[0])
    limiter.admit("a")  # never failed: nothing tracked
    limiter.failed("a")
    limiter.failed("a")
    with pytest.raises(ResourceExhausted) as caught:
        limiter.admit("a")
    assert caught.value.retry_after_seconds == pytest.approx(30.0)
    limiter.admit("b")  # another address is not affected
    now[0] += 30.0  # one failure's worth refilled
    limiter.admit("a")
    unlimited = FailedAuthLimiter(per_minute=0)
    for _ in range(100):
        unlimited.failed("a")
    unlimited.admit("a")  # 0: no limit


def test_concurrent_slots_per_principal_and_peer_calls_sharing() -> None:
    limiter = ConcurrencyLimiter(limit=1)
    with limiter.slot("ana", "r1", "/S/Count"):
        # a peer call made by that call (same request id, another method) shares its slot
        with limiter.slot("ana", "r1", "/S/Stream"):
            assert limiter.in_flight("ana") == 1
        for request_id, method in (("r2", "/S/Count"), ("r1", "/S/Count")):
            with (
                pytest.raises(ResourceExhausted) as caught,
                limiter.slot("ana", request_id, method),
            ):
                pass
            assert caught.value.retry_after_seconds
        with limiter.slot("bo", "r3", "/S/Count"):  # another principal has its own
            pass
    assert limiter.in_flight("ana") == 0
    with limiter.slot("ana", "r2", "/S/Count"):
        pass


async def test_the_n_plus_first_expensive_call_is_refused_then_allowed(tmp_path: Any) -> None:
    config = replace(Config(), data_dir=tmp_path, max_concurrent_expensive_calls=2)
    server = make_server([FakeService(HANDLERS)], config, expensive={"/test.Fake/slow"})
    gate.clear()
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            slow = raw_method(channel, "unary_unary", "slow")
            running = [asyncio.ensure_future(slow(b"", timeout=30)) for _ in range(2)]
            await asyncio.sleep(0.2)  # let both reach the handler
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await slow(b"", timeout=30)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _retry_delay(caught.value) > 0
            cheap = raw_method(channel, "unary_unary", "unary_unary")
            assert await cheap(b"", timeout=10) == b"ok"  # other calls are not limited
            gate.set()
            assert await asyncio.gather(*running) == [b"done", b"done"]
            assert await slow(b"", timeout=10) == b"done"  # a slot is free again
    finally:
        await server.stop()


async def test_failed_authentications_block_the_address(tmp_path: Any) -> None:
    config = replace(Config(), data_dir=tmp_path, auth_failures_per_minute=3)
    server = make_server([FakeService(HANDLERS)], config)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            method = raw_method(channel, "unary_unary", "unary_unary")
            assert await method(b"", timeout=10) == b"ok"
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await method(b"", metadata=bearer("sgk_0000000000aa_" + "w" * 43), timeout=10)
                assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await method(b"", metadata=bearer(ADMIN_KEY), timeout=10)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert 0 < _retry_delay(caught.value) <= 20
    finally:
        await server.stop()


async def test_a_write_stays_done_when_the_audit_store_is_down(tmp_path: Any) -> None:
    dead = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"
    config = replace(Config(), data_dir=tmp_path, service_database_urls={"audit": dead})
    roles = {**TEST_ROLES, "/test.Fake/unary_unary": Role.EDITOR}  # a write: audited
    server = RunningServer(
        [FakeService(HANDLERS)],
        config,
        host="127.0.0.1",
        port=0,
        access=StaticDecider(),
        roles=roles,
    )
    logs = io.StringIO()
    configure_logging("INFO", stream=logs)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            method = raw_method(channel, "unary_unary", "unary_unary")
            assert await method(b"", timeout=30) == b"ok"
    finally:
        await server.stop()
        configure_logging("INFO")
    events = [json.loads(x)["event"] for x in logs.getvalue().splitlines() if x.startswith("{")]
    assert "audit" in events and "audit_record_not_stored" in events
