"""Background work of the live engine: firing due inaction timers, checking date triggers
when a day starts, and deleting what the retention period has passed.

Timers: a worker claims due timers in batches (a claim is a lease: timers of a process that
died mid-way are claimed again once it lapses), drops those whose segment was deleted or
whose trigger changed, cancels those a B followed within T (looked up in the events store,
so a B stored before the timer fires cancels it whatever order A and B arrived in), checks
the past-behaviour part, and writes the entries and the timers' new state in one
transaction. Several processes sharing the store fire each timer once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta

from libs.common import metrics
from libs.common.errors import DomainError
from libs.common.logging import get_logger
from libs.common.wakeup import wait_for
from libs.model.definition import DateTrigger, InactionWithinTrigger, PageCountTrigger
from services.evaluator.adapters.live_queries import event_times, profiles_on_day
from services.evaluator.adapters.live_store import Outbox
from services.evaluator.domain.live_entries import (
    Occurrence,
    Timer,
    date_occurrence,
    followed_by_b,
    local_day,
    timer_occurrence,
)
from services.evaluator.live.engine import LiveEngine

_log = get_logger("segments.live")
#: Timers claimed per transaction.
TIMER_BATCH = 2000
#: A claim lapses after this long (then another process may fire the timers).
TIMER_LEASE = timedelta(seconds=30)
#: How often retention runs.
PRUNE_EVERY = timedelta(minutes=10)
#: How often the pending-timer gauge is read from the store.
GAUGE_EVERY = timedelta(seconds=15)


class LiveWorkers:
    """Runs the timer, day and retention loops of one process until stopped."""

    def __init__(self, engine: LiveEngine) -> None:
        self.engine = engine
        self.claim = uuid.uuid4().hex
        self._tasks: list[asyncio.Task[None]] = []
        self._checked_days: set[tuple[str, str]] = set()
        self._pruned_at: datetime | None = None
        self._gauged_at: datetime | None = None

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop("timers", self._timer_step)),
            asyncio.create_task(self._loop("days", self._day_step)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self, name: str, step: object) -> None:
        await self.engine.ready.wait()
        while True:
            try:
                pause = await step()  # type: ignore[operator]
            except DomainError as exc:  # a store or peer away: try again shortly
                _log.warning("live_worker_retry", worker=name, error=exc.message)
                pause = 1.0
            except Exception as exc:
                _log.error("live_worker_failed", worker=name, exc_info=exc)
                pause = 1.0
            if pause > 0:
                changed = self.engine.timers_changed if name == "timers" else asyncio.Event()
                await wait_for(changed, pause)
                changed.clear()

    # --- timers -------------------------------------------------------------------------------

    async def _timer_step(self) -> float:
        """Fires what is due; returns how long to wait before looking again."""
        await self._prune_if_due()
        await self._gauge_if_due()
        poll = self.engine.settings.poll_seconds
        due = await self.engine.store.next_due()  # a read: no write lock while nothing is due
        if due is None:
            return poll
        wait = (due - self.engine.clock()).total_seconds()
        if wait > 0:
            return min(poll, wait)
        # claimed elsewhere (another process, a lease not lapsed): look again after a poll
        return 0.0 if await self.fire_due_timers() else poll

    async def fire_due_timers(self) -> int:
        """Fires the timers due now (one batch); returns how many were claimed."""
        engine = self.engine
        now = engine.clock()
        timers = await engine.store.claim_due_timers(now, self.claim, TIMER_LEASE, TIMER_BATCH)
        if not timers:
            return 0
        outbox = Outbox(claim=self.claim)
        occurrences: list[Occurrence] = []
        by_segment: dict[str, list[Timer]] = {}
        for timer in timers:
            by_segment.setdefault(timer.segment, []).append(timer)
        for name, group in by_segment.items():
            compiled = engine.index.get(name)
            # a timer of a deleted segment or of a trigger changed since is dropped
            current = compiled.segment.trigger_key if compiled is not None else None
            outbox.dropped += [t.timer_id for t in group if t.trigger_key != current]
            group = [t for t in group if t.trigger_key == current]
            if compiled is None or not group:
                continue
            trigger = compiled.trigger
            assert isinstance(trigger, InactionWithinTrigger)  # the same trigger made them
            b_times = await event_times(
                engine.ch, compiled.segment.project, trigger.did_not,
                [t.user_id for t in group], min(t.a_time for t in group),
                max(t.due for t in group), now, compiled.segment.time_zone,
            )  # fmt: skip
            for timer in group:
                if followed_by_b(timer, b_times.get(timer.user_id, [])):
                    outbox.cancelled.append(timer.timer_id)
                else:
                    outbox.fired.append(timer.timer_id)
                    occurrences.append(timer_occurrence(timer))
        outbox.occurrences = await engine.qualified(occurrences, now)
        await engine.commit(outbox, now)
        return len(timers)

    # --- days ---------------------------------------------------------------------------------

    async def _day_step(self) -> float:
        await self.check_days()
        return 1.0

    async def check_days(self) -> None:
        """Checks each date-trigger segment once per local day, when the day starts (or when
        the segment first appears during the day)."""
        engine = self.engine
        now = engine.clock()
        for compiled in engine.index.segments():
            trigger = compiled.trigger
            if not isinstance(trigger, DateTrigger):
                continue
            zone = compiled.segment.time_zone
            today = local_day(now, zone).isoformat()
            if (compiled.name, today) in self._checked_days:
                continue
            if compiled.name in await engine.store.days_checked(today):
                self._checked_days.add((compiled.name, today))
                continue
            target = local_day(now, zone) + timedelta(days=trigger.days_from_today)
            found = await profiles_on_day(
                engine.ch, compiled.segment.project, trigger.property, target, zone
            )
            occurrences = [
                o for user_id, value in found
                if (o := date_occurrence(compiled.name, user_id, value, trigger.days_from_today,
                                         zone, now)) is not None
            ]  # fmt: skip
            outbox = Outbox(
                occurrences=await engine.qualified(occurrences, now), days=[(compiled.name, today)]
            )
            await engine.commit(outbox, now)
            self._checked_days.add((compiled.name, today))

    # --- retention ----------------------------------------------------------------------------

    async def _prune_if_due(self) -> None:
        engine = self.engine
        now = engine.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        await self.prune(now)

    async def _gauge_if_due(self) -> None:
        now = self.engine.clock()
        if self._gauged_at is not None and now - self._gauged_at < GAUGE_EVERY:
            return
        self._gauged_at = now
        await self.gauge_pending()

    async def gauge_pending(self) -> None:
        """Reads how many timers wait into the pending-timer gauge."""
        metrics.LIVE_TIMERS_PENDING.set(await self.engine.store.pending_timers())

    async def prune(self, now: datetime) -> None:
        engine = self.engine
        windows = [
            c.trigger.window for c in engine.index.segments()
            if isinstance(c.trigger, PageCountTrigger) and c.trigger.window is not None
        ]  # fmt: skip
        longest = timedelta(days=31) if windows else timedelta(0)
        before = now - engine.settings.retention
        await engine.store.prune(before, before - longest)
