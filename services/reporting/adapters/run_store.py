"""The run log: PostgreSQL (asyncpg) or an embedded SQLite file (aiosqlite), through
`libs.sqlstore` (engine, Alembic migrations, error mapping).

Every read-modify-write of a run happens inside one transaction holding the run's row (FOR
UPDATE on PostgreSQL; SQLite runs one writer at a time), so that two processes claiming one
project's day never both win.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.sqlstore import SqlDatabase
from services.reporting.adapters.migrations import MIGRATIONS_DIR
from services.reporting.adapters.tables import backfills as b
from services.reporting.adapters.tables import daily_run_segments as s
from services.reporting.adapters.tables import daily_runs as t
from services.reporting.adapters.tables import figure_versions as v
from services.reporting.domain.backfill import Backfill, BackfillState
from services.reporting.domain.runs import (
    DailyRun,
    PartState,
    RunState,
    SegmentFailure,
    SegmentPart,
)


def _values(run: DailyRun) -> dict[str, Any]:
    return {
        "project_id": run.project,
        "day": run.day,
        "state": run.state.value,
        "attempt_count": run.attempt_count,
        "succeeded_count": run.succeeded_count,
        "failures_json": json.dumps(
            [
                {"segment": f.segment, "reason": f.reason, "attempts": f.attempts}
                for f in run.failures
            ],
            ensure_ascii=False,
        ),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "lease_owner": run.lease_owner,
        "lease_expires": run.lease_expires,
    }


def _run(row: Any) -> DailyRun:
    m = row._mapping
    failures = tuple(
        SegmentFailure(f["segment"], f["reason"], int(f["attempts"]))
        for f in json.loads(m["failures_json"])
    )
    return DailyRun(
        project=m["project_id"],
        day=m["day"],
        state=RunState(m["state"]),
        attempt_count=int(m["attempt_count"]),
        start_time=m["start_time"],
        end_time=m["end_time"],
        succeeded_count=int(m["succeeded_count"]),
        failures=failures,
        lease_owner=m["lease_owner"],
        lease_expires=m["lease_expires"],
    )


def _key(project: str, day: date) -> Any:
    return sa.and_(t.c.project_id == project, t.c.day == day)


def _backfill_values(f: Backfill) -> dict[str, Any]:
    return {
        "project_id": f.project, "segment": f.segment,
        "definition_version": f.definition_version, "start_day": f.start_day,
        "end_day": f.end_day, "next_day": f.next_day, "state": f.state.value,
        "attempts": f.attempts, "reason": f.reason, "lease_owner": f.lease_owner,
        "lease_expires": f.lease_expires, "not_before": f.not_before,
    }  # fmt: skip


def _backfill(row: Any) -> Backfill:
    m = row._mapping
    return Backfill(
        project=m["project_id"], segment=m["segment"],
        definition_version=m["definition_version"], start_day=m["start_day"],
        end_day=m["end_day"], next_day=m["next_day"], state=BackfillState(m["state"]),
        attempts=int(m["attempts"]), reason=m["reason"], lease_owner=m["lease_owner"],
        lease_expires=m["lease_expires"], not_before=m["not_before"],
    )  # fmt: skip


class BackfillOps:
    """Back-fill rows, inside the same transactions as the runs."""

    conn: AsyncConnection
    dialect: str

    async def get_backfill(
        self, project: str, segment: str, *, lock: bool = False
    ) -> Backfill | None:
        query = sa.select(b).where(b.c.project_id == project, b.c.segment == segment)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _backfill(row) if row is not None else None

    async def backfills(self, project: str) -> list[Backfill]:
        query = sa.select(b).where(b.c.project_id == project).order_by(b.c.segment)
        return [_backfill(r) for r in (await self.conn.execute(query)).all()]

    async def put_backfill(self, backfill: Backfill) -> None:
        values = _backfill_values(backfill)
        key = sa.and_(b.c.project_id == backfill.project, b.c.segment == backfill.segment)
        updated = await self.conn.execute(sa.update(b).where(key).values(**values))
        if updated.rowcount == 0:
            await self.conn.execute(sa.insert(b).values(**values))


class RunTransaction(BackfillOps):
    """The run log's operations inside one open transaction (domain.ports.RunTransaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    async def get(self, project: str, day: date, *, lock: bool = False) -> DailyRun | None:
        query = sa.select(t).where(_key(project, day))
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def put(self, run: DailyRun) -> None:
        """Inserts or updates the run (the caller holds its row, or it does not exist)."""
        values = _values(run)
        updated = await self.conn.execute(
            sa.update(t).where(_key(run.project, run.day)).values(**values)
        )
        if updated.rowcount == 0:
            await self.conn.execute(sa.insert(t).values(**values))

    async def parts(self, project: str, day: date) -> list[SegmentPart]:
        query = sa.select(s).where(s.c.project_id == project, s.c.day == day).order_by(s.c.segment)
        return [
            SegmentPart(r.segment, PartState(r.state), int(r.attempts), r.reason)
            for r in (await self.conn.execute(query)).all()
        ]

    async def replace_parts(self, project: str, day: date, parts: Sequence[SegmentPart]) -> None:
        await self.conn.execute(sa.delete(s).where(s.c.project_id == project, s.c.day == day))
        if parts:
            await self.conn.execute(
                sa.insert(s),
                [
                    {"project_id": project, "day": day, "segment": p.segment,
                     "state": p.state.value, "attempts": p.attempts, "reason": p.reason}
                    for p in parts
                ],
            )  # fmt: skip

    async def put_part(self, project: str, day: date, part: SegmentPart) -> None:
        await self.conn.execute(
            sa.update(s)
            .where(s.c.project_id == project, s.c.day == day, s.c.segment == part.segment)
            .values(state=part.state.value, attempts=part.attempts, reason=part.reason)
        )

    async def figures_version(self, project: str, segment: str) -> int:
        query = sa.select(v.c.version).where(v.c.project_id == project, v.c.segment == segment)
        found = (await self.conn.execute(query)).scalar()
        return int(found) if found is not None else 0

    async def bump_figures(self, project: str, segments: Sequence[str]) -> None:
        if not segments:
            return
        insert = (postgresql if self.dialect == "postgresql" else sqlite).insert(v)
        await self.conn.execute(
            insert.on_conflict_do_update(
                index_elements=["project_id", "segment"], set_={"version": v.c.version + 1}
            ),
            [{"project_id": project, "segment": s, "version": 1} for s in sorted(set(segments))],
        )

    async def page(self, project: str, size: int, before: date | None) -> list[DailyRun]:
        query = sa.select(t).where(t.c.project_id == project)
        if before is not None:
            query = query.where(t.c.day < before)
        query = query.order_by(t.c.day.desc()).limit(size)
        return [_run(r) for r in (await self.conn.execute(query)).all()]


class RunStore:
    """Opens the database named by an SQLAlchemy async URL and hands out transactions."""

    def __init__(self, url: str) -> None:
        self.database = SqlDatabase(url, MIGRATIONS_DIR, label="the reporting store")

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RunTransaction]:
        async with self.database.begin() as conn:
            yield RunTransaction(conn)
