"""The live store: the evaluator's own SQL tables (PostgreSQL, or the embedded SQLite file),
through `libs.sqlstore`.

Every entry is written in the transaction of the state change that made it (`commit`: new
timers, fired or dropped timers, checked days, and the entries), so a crash can delay an
entry but never lose it or make it twice. A transaction takes its entries' cursors from one
counter row (a range of them, one per occurrence; an occurrence written before leaves its
cursor unused) and keeps the row locked until it commits: cursors become visible in order,
so a reader that has seen cursor N will never later find a smaller one. Timers are claimed with
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
from sqlalchemy.engine import Connection

from libs.model.definition import Reentry, ReentryMode
from libs.sqlstore import SqlDatabase
from services.evaluator.adapters.live_migrations import MIGRATIONS_DIR
from services.evaluator.adapters.live_reads import LiveReads
from services.evaluator.adapters.live_rows import (
    event_from_json,
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
    Committed,
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


class LiveStore(LiveReads):
    """The live tables: writing here, reading in `LiveReads`."""

    def __init__(self, url: str) -> None:
        self.database = SqlDatabase(url, MIGRATIONS_DIR, label="the evaluator's live store")

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    def _upsert(self) -> Any:
        return (postgresql if self.database.dialect == "postgresql" else sqlite).insert

    def _insert_ignoring(
        self, conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        """INSERT ... ON CONFLICT DO NOTHING of many rows: one statement executed for all of
        them (compiled once; the driver batches the rows)."""
        if rows:
            conn.execute(self._upsert()(table).on_conflict_do_nothing(), list(rows))

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

        def work(conn: Connection) -> None:
            self._insert_ignoring(conn, live_page_views, rows)
            by_project: dict[str, set[str]] = {}
            for segment, user, _ in wanted:
                by_project.setdefault(_project_of(segment), set()).add(user)
            for project, users in by_project.items():
                for chunk_users in _chunks(sorted(users)):
                    result = conn.execute(
                        sa.select(PV.segment_id, PV.user_id, PV.scope, PV.event_id, PV.event_ms)
                        .where(PV.project == project, PV.user_id.in_(chunk_users))
                    )  # fmt: skip
                    for r in result:
                        key = (f"projects/{project}/segments/{r.segment_id}", r.user_id, r.scope)
                        if key in found:
                            found[key].append((r.event_id, from_ms(int(r.event_ms))))

        await self.database.run_transaction(work)
        return found

    async def commit(
        self, outbox: Outbox, policies: Mapping[str, Reentry], now: datetime
    ) -> Committed | None:
        """Writes the outbox in one transaction; returns the cursors it took and the entries
        it wrote (None: it took none). Occurrences the re-entry policy refuses make none, and
        a re-sent occurrence adds nothing: its entry is the one written the first time."""
        return await self.database.run_transaction(
            lambda conn: self._commit(conn, outbox, policies, now)
        )

    def _commit(
        self, conn: Connection, outbox: Outbox, policies: Mapping[str, Reentry], now: datetime
    ) -> Committed | None:
        self._insert_timers(conn, outbox.timers)
        now_ms = to_ms(now)
        for state, ids in (
            ("fired", outbox.fired), ("cancelled", outbox.cancelled),
            ("dropped", outbox.dropped),
        ):  # fmt: skip
            for chunk in _chunks(ids):
                conn.execute(
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
            self._insert_ignoring(conn, live_day_checks, rows)
        if not outbox.occurrences:
            return None
        return self._write_entries(conn, outbox.occurrences, policies, now)

    def _insert_timers(self, conn: Connection, timers: Sequence[TimerStart]) -> None:
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
        self._insert_ignoring(conn, live_timers, rows)

    def _write_entries(
        self,
        conn: Connection,
        occurrences: Sequence[Occurrence],
        policies: Mapping[str, Reentry],
        now: datetime,
    ) -> Committed:
        unique = {o.entry_id: o for o in occurrences}
        # the counter's row lock first, taking a cursor for each occurrence: every entry
        # writer queues here, so what is read below cannot change before this transaction
        # commits, and transactions commit in the order of their cursors
        counter = live_counter.c
        last = (
            conn.execute(
                sa.update(live_counter).where(counter.name == "entries")
                .values(value=counter.value + len(unique)).returning(counter.value)
            )
        ).scalar_one()  # fmt: skip
        after = last - len(unique)
        # an occurrence made before is no entry again: for policies that remember users, it
        # must not count as their last entry either, so those are looked up; the others are
        # left to the entry id's unique index (ON CONFLICT DO NOTHING)
        remembering = [
            entry_id for entry_id, o in unique.items()
            if policies.get(o.segment, Reentry()).mode is not ReentryMode.EVERY_OCCURRENCE
        ]  # fmt: skip
        existing: set[str] = set()
        for chunk in _chunks(remembering):
            result = conn.execute(sa.select(E.entry_id).where(E.entry_id.in_(chunk)))
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
            known = self._last_entries(conn, segment, {o.user_id for o in found})
            admitted += [(o, True) for o in admit(found, policy, known)]
        if not admitted:
            return Committed(after, last, [])
        admitted.sort(key=lambda item: item[0].entry_time)  # ties keep the order of arrival
        entries: list[Entry] = []
        rows: list[dict[str, Any]] = []
        create_ms = to_ms(now)
        for cursor, (o, _) in enumerate(admitted, after + 1):
            # the entry as subscribers are handed it: with its event as a read gives it
            event = o.event if o.event is not None else event_from_json(o.event_json)
            entry = Entry(cursor, o.entry_id, _project_of(o.segment), o.segment, o.user_id,
                          o.entry_time, now, is_late(o.entry_time, now), event)  # fmt: skip
            entries.append(entry)
            rows.append({
                "cursor": cursor, "entry_id": o.entry_id, "project": entry.project,
                "segment_id": segment_id_of(o.segment), "user_id": o.user_id,
                "entry_ms": to_ms(o.entry_time), "create_ms": create_ms, "late": entry.late,
                "event_json": o.event_json or event_to_json(o.event),
            })  # fmt: skip
        # an entry id written before (a re-sent occurrence) is left out of what is returned
        insert = self._upsert()(live_entries).on_conflict_do_nothing().returning(E.cursor)
        written = {int(r[0]) for r in conn.execute(insert, rows)}
        self._remember(conn, [o for o, remember in admitted if remember])
        return Committed(after, last, [e for e in entries if e.cursor in written])

    def _last_entries(self, conn: Connection, segment: str, users: set[str]) -> dict[str, datetime]:
        last: dict[str, datetime] = {}
        for chunk in _chunks(sorted(users)):
            result = conn.execute(
                sa.select(M.user_id, M.last_entry_ms).where(
                    M.project == _project_of(segment),
                    M.segment_id == segment_id_of(segment),
                    M.user_id.in_(chunk),
                )
            )
            last.update((r.user_id, from_ms(int(r.last_entry_ms))) for r in result)
        return last

    def _remember(self, conn: Connection, admitted: Sequence[Occurrence]) -> None:
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
        conn.execute(
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

        def work(conn: Connection) -> list[Timer]:
            due = (
                sa.select(TM.timer_id)
                .where(TM.state == "pending", TM.due_ms <= now_ms,
                       sa.or_(TM.claim_until_ms.is_(None), TM.claim_until_ms < now_ms))
                .order_by(TM.due_ms).limit(limit).with_for_update(skip_locked=True)
            )  # fmt: skip
            claimed = conn.execute(
                sa.update(live_timers).where(TM.timer_id.in_(due))
                .values(claim=claim, claim_until_ms=now_ms + int(lease / timedelta(milliseconds=1)))
                .returning(*live_timers.c)
            )  # fmt: skip
            return sorted((timer_from_row(r) for r in claimed), key=lambda t: t.due)

        return await self.database.run_transaction(work)

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
