"""The SQL store of audit records (PostgreSQL, or an embedded SQLite file), newest first."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from libs.audit.migrations import MIGRATIONS_DIR
from libs.audit.records import AuditRecord
from libs.audit.tables import audit_records
from libs.sqlstore import SqlDatabase

A = audit_records.c


class AuditStore:
    def __init__(self, url: str) -> None:
        self.database = SqlDatabase(url, MIGRATIONS_DIR, label="the audit store")

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    async def insert(self, record: AuditRecord) -> None:
        """Stores the record (on a SQLite file in one trip to the store's writer thread: an
        audited call costs the event loop one hand-over, not one per statement)."""
        statement = sa.insert(audit_records).values(asdict(record))
        await self.database.run_transaction(lambda conn: conn.execute(statement))

    async def newest(
        self, project_id: str | None, before: tuple[datetime, str] | None, limit: int
    ) -> list[AuditRecord]:
        """Records newest first, of one project (or all when None), strictly older than the
        (time, record id) `before`."""
        query = sa.select(audit_records)
        if project_id is not None:
            query = query.where(A.project_id == project_id)
        if before is not None:
            when, record_id = before
            query = query.where(
                sa.or_(A.time < when, sa.and_(A.time == when, A.record_id < record_id))
            )
        query = query.order_by(A.time.desc(), A.record_id.desc()).limit(limit)
        async with self.database.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditRecord(**row._asdict()) for row in rows]
