"""The live store: the evaluator's own SQL tables (PostgreSQL, or the embedded SQLite file),
through `libs.sqlstore`.

Every entry is written in the transaction of the state change that made it (`commit`: new
timers, fired or dropped timers, checked days, and the entries), so a crash can delay an
entry but never lose it or make it twice. Entries take their cursors from one counter row
locked for the rest of the transaction: cursors become visible in order, so a reader that
has seen cursor N will never later find a smaller one. Timers are claimed with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's BEGIN IMMEDIATE serialises the claim), and
a claim holds for a lease: a process that dies mid-way leaves its timers to be claimed again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.model.definition import Reentry, ReentryMode
from libs.sqlstore import SqlDatabase
from services.evaluator.adapters.live_migrations import MIGRATIONS_DIR
from services.evaluator.adapters.live_rows import (
    entry_from_row,
    event_to_json,
    from_ms,
    segment_id_of,
    timer_from_row,
    to_ms,
)
from services.evaluator.adapters.live_tables import (
    live_counter,
    live_day_checks,
    live_entries,
    live_members,
    live_page_views,
    live_timers,
)
from services.evaluator.domain.live_entries import (
    Entry,
    Occurrence,
    PageView,
    Timer,
    TimerStart,
    admit,
    is_late,
)

T = TypeVar("T")
E = live_entries.c
TM = live_timers.c
M = live_members.c
PV = live_page_views.c
#: Values per IN list or multi-row INSERT (well under both backends' parameter limits).
CHUNK = 500


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _project_of(segment: str) -> str:
    return segment.split("/")[1]


@dataclass
class Outbox:
    """What one transaction of the live engine writes."""

    timers: list[TimerStart] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)  # timer ids whose occurrence is included
    cancelled: list[str] = field(default_factory=list)  # timers a B followed in time
    dropped: list[str] = field(default_factory=list)  # timers of a changed or deleted trigger
    claim: str = ""  # the claim the finished timers were taken with
    days: list[tuple[str, str]] = field(default_factory=list)  # (segment, yyyy-mm-dd) checked


class LiveStore:
    def __init__(self, url: str) -> None:
        self.database = SqlDatabase(url, MIGRATIONS_DIR, label="the evaluator's live store")

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    def _upsert(self) -> Any:
        return (postgresql if self.database.dialect == "postgresql" else sqlite).insert

    async def _insert_ignoring(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        """INSERT ... ON CONFLICT DO NOTHING of many rows: one statement executed for all of
        them (compiled once; the driver batches the rows)."""
        if rows:
            await conn.execute(self._upsert()(table).on_conflict_do_nothing(), list(rows))

    # --- writing ------------------------------------------------------------------------------

    async def record_page_views(
        self, views: Sequence[PageView]
    ) -> dict[tuple[str, str, str], list[tuple[str, datetime]]]:
        """Stores the views (idempotently) and returns every stored view of their users and
        scopes: {(segment, user, scope): [(event id, event time)]}."""
        rows = [
            {
                "project": _project_of(v.segment), "segment_id": segment_id_of(v.segment),
                "user_id": v.user_id, "event_id": v.event.event_id, "scope": v.scope,
                "event_ms": to_ms(v.event.event_time),
            }
            for v in views
        ]  # fmt: skip
        wanted = {(v.segment, v.user_id, v.scope) for v in views}
        found: dict[tuple[str, str, str], list[tuple[str, datetime]]] = {k: [] for k in wanted}
        async with self.database.begin() as conn:
            await self._insert_ignoring(conn, live_page_views, rows)
            by_project: dict[str, set[str]] = {}
            for segment, user, _ in wanted:
                by_project.setdefault(_project_of(segment), set()).add(user)
            for project, users in by_project.items():
                for chunk_users in _chunks(sorted(users)):
                    result = await conn.execute(
                        sa.select(PV.segment_id, PV.user_id, PV.scope, PV.event_id, PV.event_ms)
                        .where(PV.project == project, PV.user_id.in_(chunk_users))
                    )  # fmt: skip
                    for r in result:
                        key = (f"projects/{project}/segments/{r.segment_id}", r.user_id, r.scope)
                        if key in found:
                            found[key].append((r.event_id, from_ms(int(r.event_ms))))
        return found

    async def commit(
        self, outbox: Outbox, policies: Mapping[str, Reentry], now: datetime
    ) -> list[Entry]:
        """Writes the outbox in one transaction; returns the entries written (occurrences the
        re-entry policy refuses make none, and a re-sent occurrence adds nothing: its entry
        is the one written the first time)."""
        async with self.database.begin() as conn:
            await self._insert_timers(conn, outbox.timers)
            now_ms = to_ms(now)
            for state, ids in (
                ("fired", outbox.fired), ("cancelled", outbox.cancelled),
                ("dropped", outbox.dropped),
            ):  # fmt: skip
                for chunk in _chunks(ids):
                    await conn.execute(
                        sa.update(live_timers)
                        .where(TM.timer_id.in_(chunk), TM.state == "pending",
                               TM.claim == outbox.claim)
                        .values(state=state, done_ms=now_ms)
                    )  # fmt: skip
            if outbox.days:
                rows = [
                    {"project": _project_of(s), "segment_id": segment_id_of(s), "day": day,
                     "done_ms": now_ms}
                    for s, day in outbox.days
                ]  # fmt: skip
                await self._insert_ignoring(conn, live_day_checks, rows)
            if not outbox.occurrences:
                return []
            return await self._write_entries(conn, outbox.occurrences, policies, now)

    async def _insert_timers(self, conn: AsyncConnection, timers: Sequence[TimerStart]) -> None:
        rows = [
            {
                "timer_id": t.timer_id, "project": _project_of(t.segment),
                "segment_id": segment_id_of(t.segment), "user_id": t.user_id,
                "trigger_key": t.trigger_key, "due_ms": to_ms(t.due),
                "event_json": event_to_json(t.event), "state": "pending", "claim": "",
                "event_id": t.event.event_id, "a_ms": to_ms(t.event.event_time),
            }
            for t in timers
        ]  # fmt: skip
        await self._insert_ignoring(conn, live_timers, rows)

    async def _write_entries(
        self,
        conn: AsyncConnection,
        occurrences: Sequence[Occurrence],
        policies: Mapping[str, Reentry],
        now: datetime,
    ) -> list[Entry]:
        # the counter's row lock first: every entry writer queues here, so what is read
        # below cannot change before this transaction commits
        counter = live_counter.c
        cursor = (
            await conn.execute(
                sa.update(live_counter).where(counter.name == "entries")
                .values(value=counter.value).returning(counter.value)
            )
        ).scalar_one()  # fmt: skip
        unique = {o.entry_id: o for o in occurrences}
        # an occurrence made before is no entry again: for policies that remember users, it
        # must not count as their last entry either, so those are looked up; the others are
        # left to the entry id's unique index (ON CONFLICT DO NOTHING)
        remembering = [
            entry_id for entry_id, o in unique.items()
            if policies.get(o.segment, Reentry()).mode is not ReentryMode.EVERY_OCCURRENCE
        ]  # fmt: skip
        existing: set[str] = set()
        for chunk in _chunks(remembering):
            result = await conn.execute(sa.select(E.entry_id).where(E.entry_id.in_(chunk)))
            existing.update(r[0] for r in result)
        by_segment: dict[str, list[Occurrence]] = {}
        for entry_id, o in unique.items():
            if entry_id not in existing:
                by_segment.setdefault(o.segment, []).append(o)
        admitted: list[tuple[Occurrence, bool]] = []  # (occurrence, remember for its user)
        for segment, found in by_segment.items():
            policy = policies.get(segment, Reentry())
            if policy.mode is ReentryMode.EVERY_OCCURRENCE:
                admitted += [(o, False) for o in admit(found, policy, {})]
                continue
            last = await self._last_entries(conn, segment, {o.user_id for o in found})
            admitted += [(o, True) for o in admit(found, policy, last)]
        if not admitted:
            return []
        admitted.sort(key=lambda item: item[0].entry_time)  # ties keep the order of arrival
        entries: list[Entry] = []
        stored_json: dict[str, str] = {}
        for o, _ in admitted:
            if o.event_json is not None:
                stored_json[o.entry_id] = o.event_json
            cursor += 1
            entries.append(
                Entry(cursor, o.entry_id, _project_of(o.segment), o.segment, o.user_id,
                      o.entry_time, now, is_late(o.entry_time, now), o.event)
            )  # fmt: skip
        rows = [
            {
                "cursor": e.cursor, "entry_id": e.entry_id, "project": e.project,
                "segment_id": segment_id_of(e.segment), "user_id": e.user_id,
                "entry_ms": to_ms(e.entry_time), "create_ms": to_ms(now), "late": e.late,
                "event_json": stored_json.get(e.entry_id) or event_to_json(e.event),
            }
            for e in entries
        ]  # fmt: skip
        await self._insert_ignoring(conn, live_entries, rows)
        await self._remember(conn, [o for o, remember in admitted if remember])
        await conn.execute(
            sa.update(live_counter).where(counter.name == "entries").values(value=cursor)
        )
        return entries

    async def _last_entries(
        self, conn: AsyncConnection, segment: str, users: set[str]
    ) -> dict[str, datetime]:
        last: dict[str, datetime] = {}
        for chunk in _chunks(sorted(users)):
            result = await conn.execute(
                sa.select(M.user_id, M.last_entry_ms).where(
                    M.project == _project_of(segment),
                    M.segment_id == segment_id_of(segment),
                    M.user_id.in_(chunk),
                )
            )
            last.update((r.user_id, from_ms(int(r.last_entry_ms))) for r in result)
        return last

    async def _remember(self, conn: AsyncConnection, admitted: Sequence[Occurrence]) -> None:
        latest: dict[tuple[str, str], int] = {}
        for o in admitted:
            key = (o.segment, o.user_id)
            latest[key] = max(latest.get(key, 0), to_ms(o.entry_time))
        rows = [
            {"project": _project_of(s), "segment_id": segment_id_of(s), "user_id": u,
             "last_entry_ms": ms}
            for (s, u), ms in latest.items()
        ]  # fmt: skip
        if not rows:
            return
        statement = self._upsert()(live_members)
        newer = statement.excluded.last_entry_ms
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["project", "segment_id", "user_id"],
                set_={"last_entry_ms": sa.case(
                    (newer > M.last_entry_ms, newer), else_=M.last_entry_ms
                )},
            ),
            rows,
        )  # fmt: skip

    # --- timers -------------------------------------------------------------------------------

    async def claim_due_timers(
        self, now: datetime, claim: str, lease: timedelta, limit: int
    ) -> list[Timer]:
        """Claims up to `limit` pending timers due at `now`, unclaimed or whose claim lapsed
        (rows another process is claiming right now are skipped)."""
        now_ms = to_ms(now)
        async with self.database.begin() as conn:
            due = (
                sa.select(TM.timer_id)
                .where(TM.state == "pending", TM.due_ms <= now_ms,
                       sa.or_(TM.claim_until_ms.is_(None), TM.claim_until_ms < now_ms))
                .order_by(TM.due_ms).limit(limit).with_for_update(skip_locked=True)
            )  # fmt: skip
            ids = [r[0] for r in await conn.execute(due)]
            if not ids:
                return []
            await conn.execute(
                sa.update(live_timers).where(TM.timer_id.in_(ids))
                .values(claim=claim, claim_until_ms=now_ms + int(lease / timedelta(milliseconds=1)))
            )  # fmt: skip
            rows = await conn.execute(sa.select(live_timers).where(TM.timer_id.in_(ids)))
            return [timer_from_row(r) for r in rows]

    async def next_due(self) -> datetime | None:
        """When the earliest pending timer is due (None: no pending timer)."""
        async with self.database.read() as conn:
            value = (
                await conn.execute(sa.select(sa.func.min(TM.due_ms)).where(TM.state == "pending"))
            ).scalar_one()
        return None if value is None else from_ms(int(value))

    async def pending_timers(self) -> int:
        """How many timers wait to fire, all projects together."""
        async with self.database.read() as conn:
            count = sa.select(sa.func.count()).select_from(live_timers).where(TM.state == "pending")
            return int((await conn.execute(count)).scalar_one())

    async def days_checked(self, day: str) -> set[str]:
        """Segments whose start of `day` (yyyy-mm-dd) has been checked."""
        D = live_day_checks.c
        async with self.database.read() as conn:
            rows = await conn.execute(sa.select(D.project, D.segment_id).where(D.day == day))
            return {f"projects/{r.project}/segments/{r.segment_id}" for r in rows}

    # --- reading ------------------------------------------------------------------------------

    async def last_cursor(self) -> int:
        counter = live_counter.c
        async with self.database.read() as conn:
            result = await conn.execute(sa.select(counter.value).where(counter.name == "entries"))
            return int(result.scalar_one())

    async def entries_after(
        self, project: str, segment_id: str | None, after: int, limit: int
    ) -> list[Entry]:
        query = (
            sa.select(live_entries)
            .where(E.project == project, E.cursor > after)
            .order_by(E.cursor)
            .limit(limit)
        )
        if segment_id is not None:
            query = query.where(E.segment_id == segment_id)
        async with self.database.read() as conn:
            return [entry_from_row(r) for r in await conn.execute(query)]

    def _in_window(self, project: str, segment_id: str, start: int | None, end: int) -> Any:
        where = [E.project == project, E.segment_id == segment_id, E.entry_ms <= end]
        if start is not None:
            where.append(E.entry_ms >= start)
        return sa.and_(*where)

    async def entered_per_bucket(
        self, project: str, segment_id: str, start: datetime, end: datetime, bucket: timedelta
    ) -> dict[int, int]:
        """Distinct users who entered in each bucket of [start, end): {bucket index: count}."""
        start_ms, size = to_ms(start), int(bucket / timedelta(milliseconds=1))
        index = (E.entry_ms - start_ms) // size
        query = (
            sa.select(index.label("bucket"), sa.func.count(sa.distinct(E.user_id)))
            .where(self._in_window(project, segment_id, start_ms, to_ms(end) - 1))
            .group_by(index)
        )
        async with self.database.read() as conn:
            return {int(r[0]): int(r[1]) for r in await conn.execute(query)}

    async def member_ids(
        self,
        project: str,
        segment_id: str,
        start: datetime | None,
        end: datetime,
        user_ids: Sequence[str] | None = None,
        after: str = "",
        limit: int = 10_000,
    ) -> list[str]:
        """Users with an entry in [start, end] (inclusive), by user id after `after`."""
        where = self._in_window(
            project, segment_id, None if start is None else to_ms(start), to_ms(end)
        )
        query = sa.select(E.user_id).where(where, E.user_id > after).distinct()
        if user_ids is not None:
            query = query.where(E.user_id.in_(list(user_ids)))
        async with self.database.read() as conn:
            rows = await conn.execute(query.order_by(E.user_id).limit(limit))
            return [r[0] for r in rows]

    async def member_count(
        self, project: str, segment_id: str, start: datetime | None, end: datetime
    ) -> int:
        where = self._in_window(
            project, segment_id, None if start is None else to_ms(start), to_ms(end)
        )
        query = sa.select(sa.func.count(sa.distinct(E.user_id))).where(where)
        async with self.database.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    # --- retention ----------------------------------------------------------------------------

    async def prune(self, before: datetime, views_before: datetime) -> None:
        """Deletes entries made, timers finished and days checked before `before`, and page
        views older than `views_before`. Pending timers are never deleted."""
        cutoff = to_ms(before)
        async with self.database.begin() as conn:
            await conn.execute(sa.delete(live_entries).where(E.create_ms < cutoff))
            await conn.execute(
                sa.delete(live_timers).where(TM.state != "pending", TM.done_ms < cutoff)
            )
            await conn.execute(sa.delete(live_day_checks).where(live_day_checks.c.done_ms < cutoff))
            await conn.execute(sa.delete(live_page_views).where(PV.event_ms < to_ms(views_before)))
