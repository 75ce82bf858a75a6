"""Reading the live store's entries: following them by cursor, counting and listing the
members of a window (the reading half of `live_store.LiveStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from libs.sqlstore import SqlDatabase
from services.evaluator.adapters.live_rows import entry_from_row, to_ms
from services.evaluator.adapters.live_tables import live_counter, live_entries
from services.evaluator.domain.live_entries import Entry

E = live_entries.c


class LiveReads:
    database: SqlDatabase

    async def last_cursor(self) -> int:
        counter = live_counter.c
        async with self.database.read() as conn:
            result = await conn.execute(sa.select(counter.value).where(counter.name == "entries"))
            return int(result.scalar_one())

    async def entries_after(
        self, project: str, segment_id: str | None, after: int, limit: int
    ) -> tuple[list[Entry], int]:
        """The project's (or segment's) entries after cursor `after`, in cursor order, at most
        `limit`; and the cursor up to which the page covers every committed entry (the last
        entry's when the page is full)."""
        counter = live_counter.c
        query = (
            sa.select(live_entries)
            .where(E.project == project, E.cursor > after)
            .order_by(E.cursor)
            .limit(limit)
        )
        if segment_id is not None:
            query = query.where(E.segment_id == segment_id)
        async with self.database.read() as conn:
            # the counter first: the transaction that set it has committed, and so has every
            # one with smaller cursors (they held its lock before), whatever commits meanwhile
            read = sa.select(counter.value).where(counter.name == "entries")
            committed = int((await conn.execute(read)).scalar_one())
            rows = await conn.execute(query.where(E.cursor <= committed))
            page = [entry_from_row(r) for r in rows]
        if len(page) == limit:
            return page, page[-1].cursor
        return page, max(after, committed)

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
