"""The live engine: what the definition feed, ingest and profile upserts do to live segments.

Ingest calls `on_events` after a batch is stored in ClickHouse (before the call answers):
the batch is matched in memory against the index, page views are counted, the
past-behaviour part is checked for the qualifying users, and the entries are written with
the timers in one transaction of the live store, then published to this process's
subscribers. Every event of the batch is matched, including ids stored before: a batch
re-sent after a crash makes the entries the first attempt could not write, and the ones it
did write are not made twice (stable entry ids).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from libs.clickhouse.port import ClickHouse
from libs.common import metrics
from libs.common.errors import Unavailable
from libs.common.logging import get_logger
from libs.model.definition import (
    DateTrigger,
    PageCountTrigger,
    Reentry,
    referenced_segments,
)
from services.evaluator.adapters.live_store import LiveStore, Outbox
from services.evaluator.adapters.profile_store import ProfileStore
from services.evaluator.domain.clock import Clock, system_clock
from services.evaluator.domain.compiler import EvaluationContext, compile_members
from services.evaluator.domain.live_entries import (
    Entry,
    Occurrence,
    PageView,
    date_occurrence,
    page_count_occurrences,
)
from services.evaluator.domain.live_triggers import CompiledSegment, LiveIndex, LiveSegment
from services.evaluator.domain.ports import SegmentSource
from services.evaluator.domain.records import EventBatch
from services.evaluator.live.delivery import EntryBroadcast

_log = get_logger("segments.live")


@dataclass(frozen=True)
class LiveSettings:
    #: events older than this when they arrive are stored but trigger nothing
    max_event_age: timedelta = timedelta(days=1)
    #: entries, finished timers and checked days are deleted after this long
    retention: timedelta = timedelta(days=30)
    #: how long ingest waits for the first list of live segments before answering UNAVAILABLE
    ready_timeout: float = 10.0
    #: how often subscribers and workers look for what other processes wrote
    poll_seconds: float = 0.25


class LiveEngine:
    def __init__(
        self,
        store: LiveStore,
        ch: ClickHouse,
        segments: SegmentSource,
        profiles: ProfileStore,
        settings: LiveSettings | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.ch = ch
        self.segments = segments
        self.profiles = profiles
        self.settings = settings or LiveSettings()
        self.clock = clock
        self.index = LiveIndex()
        self.ready = asyncio.Event()
        self.broadcast = EntryBroadcast()
        #: set when something may have made a timer due sooner (new timers, new definitions)
        self.timers_changed = asyncio.Event()

    # --- the definition feed ------------------------------------------------------------------

    def apply(self, reset: bool, changes: Iterable[tuple[str, LiveSegment | None]]) -> None:
        """Applies a page of the live-segment feed (`None`: deleted or no longer live)."""
        if reset:
            self.index.reset([])
        for name, segment in changes:
            if segment is None:
                self.index.remove(name)
            else:
                self.index.put(segment)
        self.ready.set()
        self.timers_changed.set()

    async def wait_ready(self) -> None:
        if self.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.ready.wait(), self.settings.ready_timeout)
        except TimeoutError:
            raise Unavailable(
                "the live segments are not loaded yet (the definition service cannot be "
                "reached); retry",
                reason="LIVE_SEGMENTS_NOT_LOADED",
            ) from None

    def policies(self) -> dict[str, Reentry]:
        return {c.name: c.segment.definition.reentry for c in self.index.segments()}

    # --- ingest and profiles ------------------------------------------------------------------

    async def on_events(
        self, project: str, batch: EventBatch, stored: Awaitable[bool] | None = None
    ) -> None:
        """Matches a batch against the project's live segments and writes what it made.

        `stored` (when given) is True once the batch is in the events store (False: storing
        failed, the call fails and the batch will be sent again). Entries that need no query
        of the events (segments without a past-behaviour part) are written at once, while the
        batch is being stored; timers (whose B may be in this very batch) and entries of
        segments with a past-behaviour part (checked with the batch's events in view) after.
        """
        await self.wait_ready()
        now = self.clock()
        matches = self.index.match_batch(project, batch, now, self.settings.max_event_age)
        if not matches:
            return
        occurrences = list(matches.occurrences)
        if matches.page_views:
            occurrences += await self._page_counts(matches.page_views)
        at_once, later = self._split(occurrences)
        if at_once:
            await self.commit(Outbox(occurrences=at_once), now)
        if not (later or matches.timers):
            return
        if stored is not None and not await stored:
            return
        later = await self.qualified(later, now)
        await self.commit(Outbox(timers=matches.timers, occurrences=later), now)
        if matches.timers:
            self.timers_changed.set()

    def _split(
        self, occurrences: Sequence[Occurrence]
    ) -> tuple[list[Occurrence], list[Occurrence]]:
        """(occurrences of segments without a past-behaviour part, the others)."""
        plain: list[Occurrence] = []
        checked: list[Occurrence] = []
        for o in occurrences:
            compiled = self.index.get(o.segment)
            if compiled is None:
                continue  # deleted meanwhile
            has_past = compiled.segment.definition.past_behavior is not None
            (checked if has_past else plain).append(o)
        return plain, checked

    async def on_profiles(self, project: str, user_ids: Sequence[str]) -> None:
        """Checks the project's date triggers for profiles just written."""
        if not self.ready.is_set():
            return  # the day check covers them once the segments are known
        dated = [
            c for c in self.index.segments()
            if c.segment.project == project and isinstance(c.trigger, DateTrigger)
        ]  # fmt: skip
        if not dated or not user_ids:
            return
        now = self.clock()
        profiles = await self.profiles.get_many(project, list(dict.fromkeys(user_ids)))
        occurrences: list[Occurrence] = []
        for compiled in dated:
            trigger = compiled.trigger
            assert isinstance(trigger, DateTrigger)
            for profile in profiles.values():
                found = date_occurrence(
                    compiled.name, profile.user_id, profile.properties.get(trigger.property),
                    trigger.days_from_today, compiled.segment.time_zone, now,
                )  # fmt: skip
                if found is not None:
                    occurrences.append(found)
        if occurrences:
            await self.commit(Outbox(occurrences=await self.qualified(occurrences, now)), now)

    async def _page_counts(self, views: Sequence[PageView]) -> list[Occurrence]:
        stored = await self.store.record_page_views(views)
        grouped: dict[tuple[str, str, str], list[PageView]] = {}
        for view in views:
            grouped.setdefault((view.segment, view.user_id, view.scope), []).append(view)
        found: list[Occurrence] = []
        for key, new_views in grouped.items():
            compiled = self.index.get(key[0])
            if compiled is None or not isinstance(compiled.trigger, PageCountTrigger):
                continue
            found += page_count_occurrences(
                key[0], compiled.trigger, compiled.segment.time_zone, new_views, stored[key]
            )
        return found

    # --- qualification and writing ------------------------------------------------------------

    async def qualified(self, occurrences: Sequence[Occurrence], now: datetime) -> list[Occurrence]:
        """The occurrences whose user also satisfies the segment's past-behaviour part, checked
        as of `now` for those users only (one query per segment)."""
        by_segment: dict[str, list[Occurrence]] = {}
        for o in occurrences:
            by_segment.setdefault(o.segment, []).append(o)
        kept: list[Occurrence] = []
        for name, found in by_segment.items():
            compiled = self.index.get(name)
            if compiled is None:
                continue  # deleted meanwhile
            if compiled.segment.definition.past_behavior is None:
                kept += found
                continue
            users = await self._past_members(compiled, {o.user_id for o in found}, now)
            kept += [o for o in found if o.user_id in users]
        return kept

    async def _past_members(
        self, compiled: CompiledSegment, user_ids: set[str], now: datetime
    ) -> set[str]:
        past = compiled.segment.definition.past_behavior
        assert past is not None
        references = {}
        if referenced_segments(past):
            references = dict((await self.segments.resolve(compiled.name)).references)
        ctx = EvaluationContext(compiled.segment.project, now, compiled.segment.time_zone,
                                references)  # fmt: skip
        query = compile_members(past, ctx, user_ids=sorted(user_ids))
        return {r[0] for r in await self.ch.query(query.sql, query.params)}

    async def commit(self, outbox: Outbox, now: datetime) -> list[Entry]:
        """Writes the outbox, then hands what it wrote to this process's subscribers."""
        committed = await self.store.commit(outbox, self.policies(), now)
        if committed is None:
            return []
        self.broadcast.publish(committed)
        record_entries(committed.entries)
        return committed.entries


def record_entries(entries: Sequence[Entry]) -> None:
    """The entries written, and for each how long after the user qualified it was stored."""
    metrics.LIVE_ENTRIES.inc(len(entries))
    for entry in entries:
        delay = (entry.create_time - entry.entry_time).total_seconds()
        metrics.LIVE_ENTRY_LATENCY_SECONDS.observe(max(0.0, delay))


class LiveChain:
    """The live matching of one ingest call's stored batches: in order, one after the other,
    each overlapping the store of the batches after it (at most `depth` waiting)."""

    def __init__(self, engine: LiveEngine | None, depth: int = 2) -> None:
        self._engine = engine
        self._depth = depth
        self._tasks: deque[asyncio.Task[None]] = deque()

    async def add(self, project: str, batch: EventBatch) -> asyncio.Future[bool]:
        """Starts matching `batch`; the caller sets the returned future to True once the batch
        is stored (False when storing failed)."""
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._engine is None:
            return stored
        while len(self._tasks) >= self._depth:
            await self._tasks.popleft()
        previous = self._tasks[-1] if self._tasks else None
        self._tasks.append(asyncio.create_task(self._run(previous, project, batch, stored)))
        return stored

    async def _run(
        self,
        previous: asyncio.Task[None] | None,
        project: str,
        batch: EventBatch,
        stored: asyncio.Future[bool],
    ) -> None:
        if previous is not None:
            await asyncio.shield(previous)  # in order; a failure before stops the rest
        assert self._engine is not None
        await self._engine.on_events(project, batch, asyncio.shield(stored))

    async def finish(self) -> None:
        """Waits until every batch added is matched and written; raises the first failure."""
        try:
            while self._tasks:
                await self._tasks[0]
                self._tasks.popleft()
        finally:
            await self.close()

    async def close(self) -> None:
        """Waits for what was added, whatever its outcome (the call failed anyway)."""
        tasks, self._tasks = list(self._tasks), deque()
        await asyncio.gather(*tasks, return_exceptions=True)
