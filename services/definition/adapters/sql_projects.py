"""SQL for projects: creation with their system segments, reads, listing and deletion."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from libs.common.errors import AlreadyExists
from services.definition.adapters import rows
from services.definition.adapters.sql_base import SqlBase
from services.definition.adapters.tables import (
    api_key_grants,
    deleted_projects,
    projects,
    request_ids,
    segment_references,
    segment_usages,
    segments,
)
from services.definition.domain.keys import ALL_PROJECTS
from services.definition.domain.segment import SYSTEM_SEGMENTS, Project, Segment, new_etag

P = projects.c
S = segments.c
G = api_key_grants.c


def _segment_count() -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(segments)
        .where(S.project_id == P.project_id)
        .scalar_subquery()
    )


class ProjectSql(SqlBase):
    async def get_project(self, project_id: str) -> Project | None:
        row = (
            await self.conn.execute(
                sa.select(projects, _segment_count().label("segment_count")).where(
                    P.project_id == project_id
                )
            )
        ).first()
        return rows.project_from_row(row, row.segment_count) if row is not None else None

    async def existing_projects(self, project_ids: Collection[str]) -> frozenset[str]:
        if not project_ids:
            return frozenset()
        result = await self.conn.execute(
            sa.select(P.project_id).where(P.project_id.in_(sorted(set(project_ids))))
        )
        return frozenset(str(r[0]) for r in result)

    async def project_was_deleted(self, project_id: str) -> bool:
        found = await self.conn.scalar(
            sa.select(deleted_projects.c.project_id).where(
                deleted_projects.c.project_id == project_id
            )
        )
        return found is not None

    async def insert_project(self, project: Project) -> None:
        """The project and its system segments; ALREADY_EXISTS when the id is taken."""
        try:
            await self.conn.execute(
                sa.insert(projects).values(
                    project_id=project.project_id,
                    time_zone=project.time_zone,
                    create_time=project.create_time,
                    update_time=project.update_time,
                    etag=project.etag,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(
                f"{project.name} already exists", reason="PROJECT_ID_TAKEN"
            ) from exc
        now = project.create_time
        system_rows = [
            rows.segment_values(
                Segment(
                    project_id=project.project_id,
                    segment_id=s.segment_id,
                    display_name=s.display_name,
                    description=s.description,
                    definition=s.definition,
                    creator="",
                    updater="",
                    create_time=now,
                    update_time=now,
                    etag=new_etag(),
                )
            )
            for s in SYSTEM_SEGMENTS
        ]
        await self.conn.execute(sa.insert(segments), system_rows)

    async def update_project(self, project: Project, expected_etag: str) -> bool:
        result = await self.conn.execute(
            sa.update(projects)
            .where(P.project_id == project.project_id, P.etag == expected_etag)
            .values(time_zone=project.time_zone, update_time=project.update_time, etag=project.etag)
        )
        return bool(result.rowcount == 1)

    async def count_segments(self, project_id: str) -> int:
        count = await self.conn.scalar(
            sa.select(sa.func.count()).select_from(segments).where(S.project_id == project_id)
        )
        return int(count or 0)

    async def list_projects(
        self, key_id: str | None, after_id: str | None, limit: int
    ) -> list[Project]:
        """Projects by id after `after_id`; with `key_id`, only those it holds a grant on
        (all of them when it holds one on all projects)."""
        query = sa.select(projects, _segment_count().label("segment_count"))
        if key_id is not None:
            granted = sa.select(G.project_id).where(G.key_id == key_id)
            everything = sa.exists().where(G.key_id == key_id, G.project_id == ALL_PROJECTS)
            query = query.where(sa.or_(everything, P.project_id.in_(granted)))
        if after_id is not None:
            query = query.where(P.project_id > after_id)
        result = await self.conn.execute(query.order_by(P.project_id).limit(limit))
        return [rows.project_from_row(row, row.segment_count) for row in result]

    async def delete_project(self, project_id: str, now: datetime) -> None:
        """The project, everything in it and every grant on it; its id is kept as deleted."""
        for table in (request_ids, segment_usages, segment_references, segments):
            await self.conn.execute(sa.delete(table).where(table.c.project_id == project_id))
        await self.conn.execute(sa.delete(api_key_grants).where(G.project_id == project_id))
        await self.conn.execute(sa.delete(projects).where(P.project_id == project_id))
        await self.conn.execute(
            self.insert_ignoring_conflicts(
                deleted_projects, [{"project_id": project_id, "delete_time": now}]
            )
        )
