"""Handing entries to subscribers from memory (`live.delivery`), over gRPC with the live tables
on SQLite and PostgreSQL: whatever this process hands over, and in whatever order, a subscriber
receives exactly the stored entries after its cursor, in cursor order. The subscribers here
poll the store only every 30 s, so entries that arrive sooner came from memory or from a read
the subscriber made because what it was handed did not follow on from its position."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc

from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.adapters.live_rows import event_to_json
from services.evaluator.adapters.live_store import Outbox
from services.evaluator.domain.live_entries import Committed, LiveEvent, Occurrence
from services.evaluator.live.delivery import EntryBroadcast

from ..grpc_stack import TIMEOUT
from .conftest import T0
from .helpers import Live, single, users


@asynccontextmanager
async def subscribed(live: Live, segment: str, per_message: int = 0) -> AsyncIterator[Any]:
    """A subscriber following `segment` from now on (the store polled every 30 s only)."""
    live.engine.settings = replace(live.engine.settings, poll_seconds=30.0)
    call = live.stack.evaluator.StreamLiveEntries(
        pb.StreamLiveEntriesRequest(segment=segment, max_entries_per_message=per_message),
        timeout=TIMEOUT,
    )
    try:
        await call.initial_metadata()  # following from here on
        yield call
    finally:
        call.cancel()


async def received(call: Any, count: int, quiet: float = 0.3) -> list[pb.LiveEntry]:
    """`count` entries (each within 5 s), then `quiet` seconds more for any extra one."""
    found: list[pb.LiveEntry] = []
    while True:
        try:
            response = await asyncio.wait_for(call.read(), 5 if len(found) < count else quiet)
        except TimeoutError:
            assert len(found) >= count, f"only {len(found)} of {count} entries arrived"
            return found
        assert isinstance(response, pb.StreamLiveEntriesResponse)
        found.append(response.entry)


def outbox(segment: str, *user_ids: str) -> Outbox:
    return Outbox(occurrences=[Occurrence(segment, u, f"event:{u}", T0) for u in user_ids])


async def stored(live: Live, segment: str, *user_ids: str) -> Committed:
    """Writes entries without handing them to subscribers (as another process does)."""
    committed = await live.engine.store.commit(outbox(segment, *user_ids), {}, T0)
    assert committed is not None
    return committed


def in_order(entries: Sequence[pb.LiveEntry]) -> bool:
    cursors = [int(e.cursor) for e in entries]
    return cursors == sorted(set(cursors))


async def test_entries_this_process_writes_reach_a_subscriber_from_memory(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    async with subscribed(live, seg) as call:
        await live.engine.commit(outbox(seg, "u1", "u2"), T0)
        await live.engine.commit(outbox(seg, "u3"), T0)
        await live.engine.commit(outbox(seg, "u1"), T0)  # written before: no entry
        await live.engine.commit(outbox(seg, "u4"), T0)
        got = await received(call, 4)
    assert users(got) == ["u1", "u2", "u3", "u4"]
    assert in_order(got)


async def test_entries_another_process_wrote_in_between_are_read_from_the_store(
    live: Live,
) -> None:
    seg = await live.define("buyers", single("Buy"))
    async with subscribed(live, seg) as call:
        await stored(live, seg, "other1", "other2")
        await live.engine.commit(outbox(seg, "mine"), T0)
        got = await received(call, 3)
    assert users(got) == ["other1", "other2", "mine"]
    assert in_order(got)


async def test_transactions_handed_over_out_of_order_are_sent_in_cursor_order_once(
    live: Live,
) -> None:
    seg = await live.define("buyers", single("Buy"))
    async with subscribed(live, seg) as call:
        first = await stored(live, seg, "u1")
        second = await stored(live, seg, "u2", "u3")
        live.engine.broadcast.publish(second)
        live.engine.broadcast.publish(first)
        await live.engine.commit(outbox(seg, "u4"), T0)
        got = await received(call, 4)
    assert users(got) == ["u1", "u2", "u3", "u4"]
    assert in_order(got)


async def test_a_subscriber_too_far_behind_reads_the_store(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    live.engine.broadcast = EntryBroadcast(max_queued=2)
    async with subscribed(live, seg) as call:
        batches = [await stored(live, seg, f"u{i}", f"v{i}") for i in range(4)]
        for committed in batches:  # at once: more than the subscriber's queue holds
            live.engine.broadcast.publish(committed)
        await live.engine.commit(outbox(seg, "w"), T0)
        got = await received(call, 9)
    assert users(got) == ["u0", "v0", "u1", "v1", "u2", "v2", "u3", "v3", "w"]
    assert in_order(got)


async def test_a_subscriber_of_one_segment_gets_only_its_entries(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    other = await live.define("viewers", single("View"))
    async with subscribed(live, seg) as call:
        await live.engine.commit(Outbox(occurrences=[
            *outbox(other, "x1").occurrences, *outbox(seg, "u1").occurrences,
            *outbox(other, "x2").occurrences,
        ]), T0)  # fmt: skip
        got = await received(call, 1)
    assert users(got) == ["u1"]


async def test_an_entry_handed_over_carries_its_event_as_a_read_of_the_store_does(
    live: Live,
) -> None:
    seg = await live.define("abandoned", single("Added to Cart"))
    event = LiveEvent("a1", "u1", "Added to Cart", T0, {"amount": 5.0, "sku": "x"})
    # a timer's occurrence carries its A event as stored (JSON), not as a record
    timer = Occurrence(seg, "u1", "timer:t1", T0, event_json=event_to_json(event))
    async with subscribed(live, seg) as call:
        await live.engine.commit(Outbox(occurrences=[timer]), T0)
        handed = (await received(call, 1))[0]
    read = (await live.entries(1, segment=seg))[0]
    assert handed == read
    assert handed.trigger_event.event_id == "a1"
    assert handed.trigger_event.properties["sku"].string_value == "x"


async def test_shutdown_lets_subscribers_go_and_they_resume_from_their_cursor(
    live: Live,
) -> None:
    """A following stream never ends by itself: when the process shuts down
    (`EntryBroadcast.close`, from the service's drain) it ends with OK, and the subscriber
    resumes after its last cursor."""
    seg = await live.define("leavers", single("Buy"))
    async with subscribed(live, seg) as call:
        await live.engine.commit(outbox(seg, "u1"), T0)
        first = await call.read()  # (a read that times out would cancel the call)
        assert isinstance(first, pb.StreamLiveEntriesResponse)
        live.engine.broadcast.close()
        rest = await asyncio.wait_for(call.read(), 10)
        assert rest is grpc.aio.EOF  # type: ignore[attr-defined]
        assert await call.code() == grpc.StatusCode.OK
    await stored(live, seg, "u2")
    live.engine.broadcast = EntryBroadcast()  # the process back (or another one)
    resumed = live.stack.evaluator.StreamLiveEntries(
        pb.StreamLiveEntriesRequest(segment=seg, resume_after=first.entry.cursor), timeout=TIMEOUT
    )
    try:
        entries = await received(resumed, 1)
        assert [e.user_id for e in entries] == ["u2"]
    finally:
        resumed.cancel()


async def messages(call: Any, count: int, quiet: float = 0.3) -> list[list[str]]:
    """The users of each message's `entries` until `count` entries arrived (and `quiet`
    seconds more for any extra message); `entry` must be unset in each."""
    found: list[list[str]] = []
    while True:
        try:
            total = sum(map(len, found))
            response = await asyncio.wait_for(call.read(), 5 if total < count else quiet)
        except TimeoutError:
            assert sum(map(len, found)) >= count
            return found
        assert not response.HasField("entry") and response.entries
        assert in_order(response.entries)
        found.append([e.user_id for e in response.entries])


async def test_entries_ready_together_travel_in_one_message_up_to_the_limit(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    async with subscribed(live, seg, per_message=2) as call:
        await live.engine.commit(outbox(seg, "u1", "u2", "u3"), T0)
        await live.engine.commit(outbox(seg, "u4"), T0)
        assert await messages(call, 4) == [["u1", "u2"], ["u3"], ["u4"]]
    # stored ones as read from the store: a page at a time
    replay = live.stack.evaluator.StreamLiveEntries(
        pb.StreamLiveEntriesRequest(segment=seg, resume_after="0", max_entries_per_message=1000),
        timeout=TIMEOUT,
    )
    try:
        assert await messages(replay, 4) == [["u1", "u2", "u3", "u4"]]
    finally:
        replay.cancel()
    single_entries = await live.entries(4, segment=seg)  # 0: one entry per message, in `entry`
    assert users(single_entries) == ["u1", "u2", "u3", "u4"]


async def test_a_max_entries_per_message_out_of_range_is_invalid_argument(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    for bad in (-1, 1001):
        call = live.stack.evaluator.StreamLiveEntries(
            pb.StreamLiveEntriesRequest(segment=seg, max_entries_per_message=bad),
            timeout=TIMEOUT,
        )
        try:
            await call.read()
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "max_entries_per_message" in (exc.details() or "")
        else:
            raise AssertionError(f"{bad} accepted")
