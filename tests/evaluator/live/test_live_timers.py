"""Inaction timers over gRPC, on SQLite and PostgreSQL: the boundary of T, late and
out-of-order events, a definition changed while timers are pending, and two evaluators
sharing one store firing each timer once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from google.protobuf import field_mask_pb2

from libs.common import metrics
from libs.common.server import RunningServer
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import segment_pb2
from services.evaluator.service import EvaluatorService

from ..support import event
from .conftest import T0
from .helpers import Live, inaction, until, users

MS = timedelta(milliseconds=1)
T = 600.0  # seconds


async def test_b_at_exactly_t_cancels_and_b_one_millisecond_later_does_not(live: Live) -> None:
    await live.define("abandoned", inaction("Added to Cart", "Charged", T))
    due = T0 + timedelta(seconds=T)
    await live.ingest(*[event(f"a{u}", f"u{u}", "Added to Cart", T0) for u in (1, 2, 3)])
    live.clock.set(due - MS)
    await live.ingest(event("b1", "u1", "Charged", due), event("b2", "u2", "Charged", due + MS))
    await live.workers.fire_due_timers()
    assert await live.entries(0) == []  # nothing is due yet
    live.clock.set(due + timedelta(seconds=1))
    # the background worker or this call fires them, whichever claims them first
    await live.workers.fire_due_timers()
    found = await live.entries(2)
    assert sorted(users(found)) == ["u2", "u3"]
    assert all(e.entry_time.ToDatetime() == due.replace(tzinfo=None) for e in found)
    assert not any(e.late for e in found)
    assert {e.trigger_event.event_name for e in found} == {"Added to Cart"}
    await live.workers.fire_due_timers()
    assert len(await live.entries(2)) == 2  # each timer fires once


async def test_out_of_order_and_late_events(live: Live) -> None:
    await live.define("abandoned", inaction("Added to Cart", "Charged", T))
    later = T0 + timedelta(hours=1)
    live.clock.set(later)
    # u1: its B (within T) arrived before its A; u2: its A arrives after its T elapsed
    await live.ingest(event("b1", "u1", "Charged", T0 + timedelta(minutes=5)))
    await live.ingest(
        event("a1", "u1", "Added to Cart", T0), event("a2", "u2", "Added to Cart", T0)
    )
    await live.workers.fire_due_timers()
    found = await live.entries(1)
    assert [(e.user_id, e.late) for e in found] == [("u2", True)]
    # a B arriving after the timer fired does not take the entry back
    await live.ingest(event("b2", "u2", "Charged", T0 + timedelta(minutes=1)))
    assert users(await live.entries(1)) == ["u2"]


async def test_a_changed_trigger_drops_pending_timers(live: Live) -> None:
    seg = await live.define("abandoned", inaction("Added to Cart", "Charged", T))
    await live.ingest(event("a1", "u1", "Added to Cart", T0))
    changed = segment_pb2.Segment(name=seg, definition=inaction("Added to Cart", "Charged", 2 * T))
    await live.stack.definitions.UpdateSegment(
        dpb.UpdateSegmentRequest(
            segment=changed, update_mask=field_mask_pb2.FieldMask(paths=["definition"])
        )
    )
    await until(lambda: live.engine.index.get(seg).segment.definition.trigger.within  # type: ignore[union-attr]
                == timedelta(seconds=2 * T))  # fmt: skip
    await live.ingest(event("a2", "u2", "Added to Cart", T0))
    live.clock.set(T0 + timedelta(seconds=3 * T))
    await live.workers.fire_due_timers()
    assert users(await live.entries(1)) == ["u2"]  # u1's timer was of the old trigger


async def test_two_evaluators_sharing_one_store_fire_each_timer_once(live: Live) -> None:
    first = live.stack.evaluator_service
    assert first is not None
    other = EvaluatorService(first.config, clock=live.clock)
    server = RunningServer([other], first.config, port=0)
    await server.start()
    try:
        assert other.workers is not None and other.evaluator is not None
        seg = await live.define("abandoned", inaction("Added to Cart", "Charged", T))
        second_engine = other.evaluator.live
        assert second_engine is not None
        await until(lambda: second_engine.index.get(seg) is not None)
        await live.ingest(*[event(f"a{i}", f"u{i:03d}", "Added to Cart", T0) for i in range(300)])
        live.clock.set(T0 + timedelta(seconds=T + 1))
        # both background workers run too: four claimants race for the same timers
        for _ in range(5):
            await asyncio.gather(live.workers.fire_due_timers(), other.workers.fire_due_timers())
        found = await live.entries(300)
        assert len(found) == 300
        assert len({e.entry_id for e in found}) == 300
        assert await live.engine.store.next_due() is None  # none left pending
    finally:
        await server.stop()


async def test_a_late_a_and_its_b_in_one_batch_make_no_entry(live: Live) -> None:
    await live.define("abandoned", inaction("Added to Cart", "Charged", T))
    live.clock.set(T0 + timedelta(hours=1))  # both arrive after A's T elapsed
    await live.ingest(
        event("a1", "u1", "Added to Cart", T0),
        event("b1", "u1", "Charged", T0 + timedelta(minutes=5)),
        event("a2", "u2", "Added to Cart", T0),
    )
    await live.workers.fire_due_timers()
    assert users(await live.entries(1)) == ["u2"]


async def test_live_metrics_count_entries_their_delay_and_pending_timers(live: Live) -> None:
    def sample(name: str) -> float:
        return metrics.REGISTRY.get_sample_value(name) or 0.0

    entries, observed = (
        sample("segments_live_entries_total"),
        sample("segments_live_entry_latency_seconds_count"),
    )
    await live.define("quiet", inaction("Added to Cart", "Charged", T))
    await live.ingest(*[event(f"a{u}", f"u{u}", "Added to Cart", T0) for u in (1, 2)])
    await live.workers.gauge_pending()
    assert sample("segments_live_timers_pending") >= 2  # the gauge is process-wide
    live.clock.set(T0 + timedelta(seconds=T + 3))
    await live.workers.fire_due_timers()
    await live.entries(2)
    assert sample("segments_live_entries_total") - entries == 2
    assert sample("segments_live_entry_latency_seconds_count") - observed == 2
