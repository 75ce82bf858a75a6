"""SQL of the live-segment change feed: sequences taken in commit order, each live segment's
latest change, and the listing a watcher starts from."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from libs.model.definition import SegmentType
from services.definition.adapters import rows
from services.definition.adapters.sql_base import SqlBase
from services.definition.adapters.tables import (
    live_change_sequence,
    live_segment_changes,
    projects,
    segments,
)
from services.definition.domain.live_feed import LiveChange

S = segments.c
C = live_segment_changes.c
_LIVE = SegmentType.LIVE.value


class LiveChangeSql(SqlBase):
    async def note_live_changes(self, project_id: str, segment_ids: Collection[str]) -> None:
        """Gives each segment a new change sequence. The counter's row stays locked until the
        transaction commits, so sequences become visible in the order they were taken."""
        ids = sorted(set(segment_ids))
        if not ids:
            return
        counter = live_change_sequence.c
        last = (
            await self.conn.execute(
                sa.update(live_change_sequence)
                .where(counter.id == 1)
                .values(value=counter.value + len(ids))
                .returning(counter.value)
            )
        ).scalar_one()
        values = [
            {"project_id": project_id, "segment_id": segment_id, "sequence": last - len(ids) + i}
            for i, segment_id in enumerate(ids, 1)
        ]
        insert = (postgresql if self.dialect == "postgresql" else sqlite).insert
        statement = insert(live_segment_changes).values(values)
        await self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=["project_id", "segment_id"],
                set_={"sequence": statement.excluded.sequence},
            )
        )

    async def live_segment_ids(self, project_id: str) -> list[str]:
        result = await self.conn.execute(
            sa.select(S.segment_id).where(S.project_id == project_id, S.segment_type == _LIVE)
        )
        return [r[0] for r in result]

    async def live_sequence(self) -> int:
        counter = live_change_sequence.c
        result = await self.conn.execute(sa.select(counter.value).where(counter.id == 1))
        return int(result.scalar_one())

    async def live_segments(
        self, project_id: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[LiveChange]:
        """Current live segments (of one project or all), by (project, segment) after `after`."""
        query = (
            sa.select(segments, projects.c.time_zone)
            .join(projects, projects.c.project_id == S.project_id)
            .where(S.segment_type == _LIVE)
            .order_by(S.project_id, S.segment_id)
            .limit(limit)
        )
        if project_id is not None:
            query = query.where(S.project_id == project_id)
        if after is not None:
            query = query.where(sa.tuple_(S.project_id, S.segment_id) > sa.tuple_(*after))
        result = await self.conn.execute(query)
        return [
            LiveChange(r.project_id, r.segment_id, 0, rows.segment_from_row(r), r.time_zone)
            for r in result
        ]

    async def live_changes_after(
        self, project_id: str | None, after: int, limit: int
    ) -> list[LiveChange]:
        """Changes with a sequence above `after`, in order, with each segment's current state."""
        query = (
            sa.select(
                C.project_id.label("change_project"),
                C.segment_id.label("change_segment"),
                C.sequence,
                segments,
                projects.c.time_zone,
            )
            .select_from(live_segment_changes)
            .outerjoin(
                segments, sa.and_(S.project_id == C.project_id, S.segment_id == C.segment_id)
            )
            .outerjoin(projects, projects.c.project_id == C.project_id)
            .where(C.sequence > after)
            .order_by(C.sequence)
            .limit(limit)
        )
        if project_id is not None:
            query = query.where(C.project_id == project_id)
        found: list[LiveChange] = []
        for r in await self.conn.execute(query):
            live = r.segment_id is not None and r.segment_type == _LIVE
            segment = rows.segment_from_row(r) if live else None
            found.append(
                LiveChange(
                    r.change_project, r.change_segment, r.sequence, segment, r.time_zone or "UTC"
                )
            )
        return found
