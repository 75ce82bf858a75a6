"""Retention over gRPC: entries, fired timers and checked days are deleted once the retention
period has passed; pending timers never are."""

from __future__ import annotations

from datetime import timedelta

from ..support import event
from .conftest import T0
from .helpers import Live, inaction, single, users


async def test_entries_and_fired_timers_go_after_the_retention_period(live: Live) -> None:
    await live.define("buyers", single("Buy"))
    await live.define("abandoned", inaction("Added to Cart", "Charged", 600))
    await live.ingest(event("b1", "u1", "Buy", T0), event("a1", "u1", "Added to Cart", T0))
    live.clock.set(T0 + timedelta(minutes=11))
    await live.workers.fire_due_timers()
    assert len(await live.entries(2)) == 2
    await live.ingest(event("a2", "u2", "Added to Cart", T0 + timedelta(minutes=11)))
    retention = live.engine.settings.retention
    await live.workers.prune(T0 + retention)  # not yet past it: all kept
    assert len(await live.entries(2)) == 2
    await live.workers.prune(T0 + timedelta(minutes=12) + retention)
    assert await live.entries(0) == []
    assert await live.engine.store.next_due() is not None  # u2's pending timer is kept
    live.clock.set(T0 + timedelta(minutes=30))
    await live.workers.fire_due_timers()
    assert users(await live.entries(1)) == ["u2"]
