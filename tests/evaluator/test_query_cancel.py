"""A caller that goes away (cancelled, or its deadline passed) stops its ClickHouse query: the
engine is free for the next call (issue 13), on chDB and over HTTP alike."""

from __future__ import annotations

import asyncio

import pytest

from libs.clickhouse.port import ClickHouse

#: A count that runs for minutes.
HEAVY = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) % 7 = 1"
#: The heavy statements still running (the probe's own text must not match itself).
RUNNING = (
    "SELECT count() FROM system.processes "
    "WHERE position(query, concat('sipHash', '64(number)')) > 0"
)


async def _until_running(ch: ClickHouse) -> None:
    async with asyncio.timeout(60):
        while True:
            if (await ch.query(RUNNING))[0][0]:
                return
            await asyncio.sleep(0.05)


async def test_a_cancelled_query_stops(ch: ClickHouse) -> None:
    heavy = asyncio.create_task(ch.query(HEAVY))
    await _until_running(ch)
    heavy.cancel()
    with pytest.raises(asyncio.CancelledError):
        await heavy
    # the cancelled call returned only once its statement stopped
    assert (await ch.query(RUNNING))[0][0] == 0
    assert await ch.query("SELECT 1") == [(1,)]


async def test_a_passed_deadline_stops_a_stream(ch: ClickHouse) -> None:
    async def read_all() -> int:
        blocks = 0
        async for _ in ch.query_stream(HEAVY):
            blocks += 1
        return blocks

    reading = asyncio.create_task(read_all())
    await _until_running(ch)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reading, 0.2)
    assert (await ch.query(RUNNING))[0][0] == 0
    assert await ch.query("SELECT 1") == [(1,)]
