"""The export job store: PostgreSQL (asyncpg) or an embedded SQLite file (aiosqlite), through
`libs.sqlstore` (engine, Alembic migrations, error mapping).

Every read-modify-write of a job happens inside one transaction holding the job's row (FOR
UPDATE on PostgreSQL; SQLite runs one writer at a time). Claims take one more lock, so that
two processes checking the running-job limits never both pass: a transaction-scoped advisory
lock on PostgreSQL, the database write lock on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.sqlstore import SqlDatabase
from services.export.adapters.migrations import MIGRATIONS_DIR
from services.export.adapters.tables import export_jobs as t
from services.export.domain.jobs import Destination, ExportJob, JobError, JobState
from services.export.domain.ports import RequestIdTaken

#: key of the PostgreSQL advisory lock that serialises claims (any fixed 64-bit number)
_CLAIM_LOCK = 0x5E6E_E0B7


def _values(job: ExportJob) -> dict[str, Any]:
    error = job.error
    return {
        "project_id": job.project,
        "job_id": job.job_id,
        "segment": job.segment,
        "fields_json": json.dumps(list(job.fields), ensure_ascii=False),
        "destination": job.destination.value,
        "byte_order_mark": job.byte_order_mark,
        "state": job.state.value,
        "as_of": job.as_of,
        "creator": job.creator,
        "create_time": job.create_time,
        "update_time": job.update_time,
        "request_id": job.request_id or None,
        "exported_count": job.exported_count,
        "total_count": job.total_count,
        "blocked_skipped_count": job.blocked_skipped_count,
        "output_path": job.output_path,
        "error_code": error.code if error else None,
        "error_reason": error.reason if error else "",
        "error_message": error.message if error else "",
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "expire_time": job.expire_time,
        "expired": job.expired,
        "lease_owner": job.lease_owner,
        "lease_expires": job.lease_expires,
        "not_before": job.not_before,
    }


def _job(row: Any) -> ExportJob:
    m = row._mapping
    error = None
    if m["error_code"] is not None:
        error = JobError(m["error_code"], m["error_reason"], m["error_message"])
    return ExportJob(
        project=m["project_id"],
        job_id=m["job_id"],
        segment=m["segment"],
        fields=tuple(json.loads(m["fields_json"])),
        destination=Destination(m["destination"]),
        byte_order_mark=bool(m["byte_order_mark"]),
        as_of=m["as_of"],
        creator=m["creator"],
        create_time=m["create_time"],
        update_time=m["update_time"],
        state=JobState(m["state"]),
        request_id=m["request_id"] or "",
        exported_count=int(m["exported_count"]),
        total_count=int(m["total_count"]),
        blocked_skipped_count=int(m["blocked_skipped_count"]),
        output_path=m["output_path"],
        error=error,
        attempts=int(m["attempts"]),
        cancel_requested=bool(m["cancel_requested"]),
        expire_time=m["expire_time"],
        expired=bool(m["expired"]),
        lease_owner=m["lease_owner"],
        lease_expires=m["lease_expires"],
        not_before=m["not_before"],
    )


def _key(project: str, job_id: str) -> Any:
    return sa.and_(t.c.project_id == project, t.c.job_id == job_id)


class JobTransaction:
    """The store's operations inside one open transaction (see domain.ports.JobTransaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    async def get(self, project: str, job_id: str, *, lock: bool = False) -> ExportJob | None:
        query = sa.select(t).where(_key(project, job_id))
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _job(row) if row is not None else None

    async def by_request_id(self, project: str, request_id: str) -> ExportJob | None:
        query = sa.select(t).where(t.c.project_id == project, t.c.request_id == request_id)
        row = (await self.conn.execute(query)).first()
        return _job(row) if row is not None else None

    async def insert(self, job: ExportJob) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(sa.insert(t).values(**_values(job)))
        except IntegrityError as exc:
            raise RequestIdTaken(job.request_id) from exc

    async def update(self, job: ExportJob) -> None:
        values = _values(job)
        for key in ("project_id", "job_id"):
            del values[key]
        await self.conn.execute(sa.update(t).where(_key(job.project, job.job_id)).values(**values))

    async def unfinished_count(self, project: str) -> int:
        query = sa.select(sa.func.count()).where(
            t.c.project_id == project,
            t.c.state.in_([JobState.PENDING.value, JobState.RUNNING.value]),
        )
        return int((await self.conn.execute(query)).scalar_one())

    async def unfinished_of(self, creator: str) -> int:
        """PENDING and RUNNING jobs created by `creator`, over every project."""
        query = sa.select(sa.func.count()).where(
            t.c.creator == creator,
            t.c.state.in_([JobState.PENDING.value, JobState.RUNNING.value]),
        )
        return int((await self.conn.execute(query)).scalar_one())

    async def lock_claims(self) -> None:
        if self.dialect == "postgresql":
            await self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK)))

    async def running(self, now: datetime) -> list[ExportJob]:
        """RUNNING jobs whose worker holds a live lease."""
        query = sa.select(t).where(t.c.state == JobState.RUNNING.value, t.c.lease_expires > now)
        return [_job(r) for r in (await self.conn.execute(query)).all()]

    async def claimable(self, now: datetime, limit: int) -> list[ExportJob]:
        """Oldest first: FILE jobs waiting to run, and RUNNING jobs whose lease ran out."""
        waiting = sa.and_(
            t.c.state == JobState.PENDING.value,
            t.c.destination == Destination.FILE.value,
            sa.or_(t.c.not_before.is_(None), t.c.not_before <= now),
        )
        lapsed = sa.and_(t.c.state == JobState.RUNNING.value, t.c.lease_expires <= now)
        query = (
            sa.select(t)
            .where(sa.or_(waiting, lapsed))
            .order_by(t.c.create_time, t.c.job_id)
            .limit(limit)
        )
        return [_job(r) for r in (await self.conn.execute(query)).all()]

    async def page(
        self, project: str, size: int, after: tuple[datetime, str] | None
    ) -> list[ExportJob]:
        """Newest first, from strictly after (create_time, job_id) `after`."""
        query = sa.select(t).where(t.c.project_id == project)
        if after is not None:
            time, job_id = after
            query = query.where(
                sa.or_(
                    t.c.create_time < time, sa.and_(t.c.create_time == time, t.c.job_id < job_id)
                )
            )
        query = query.order_by(t.c.create_time.desc(), t.c.job_id.desc()).limit(size)
        return [_job(r) for r in (await self.conn.execute(query)).all()]

    async def expiring(self, now: datetime, limit: int) -> list[ExportJob]:
        """Succeeded FILE jobs whose file is due for deletion."""
        query = (
            sa.select(t)
            .where(
                t.c.state == JobState.SUCCEEDED.value,
                t.c.destination == Destination.FILE.value,
                t.c.expired.is_(False),
                t.c.expire_time <= now,
            )
            .order_by(t.c.expire_time)
            .limit(limit)
        )
        return [_job(r) for r in (await self.conn.execute(query)).all()]

    async def unread_streams(self, created_before: datetime, limit: int) -> list[ExportJob]:
        """PENDING STREAM jobs created before `created_before` (nobody streamed them)."""
        query = (
            sa.select(t)
            .where(
                t.c.state == JobState.PENDING.value,
                t.c.destination == Destination.STREAM.value,
                t.c.create_time < created_before,
            )
            .order_by(t.c.create_time)
            .limit(limit)
        )
        return [_job(r) for r in (await self.conn.execute(query)).all()]


class JobStore:
    """Opens the database named by an SQLAlchemy async URL and hands out transactions."""

    def __init__(self, url: str) -> None:
        self.database = SqlDatabase(url, MIGRATIONS_DIR, label="the export job store")

    async def open(self) -> None:
        """Migrates the schema to the latest revision, then opens the engine."""
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[JobTransaction]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        async with self.database.begin() as conn:
            yield JobTransaction(conn)
