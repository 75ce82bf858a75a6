"""SQL for segments, references between segments and request ids."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from libs.common.errors import AlreadyExists
from services.definition.adapters import rows
from services.definition.adapters.sql_base import SqlBase
from services.definition.adapters.tables import request_ids, segment_references, segments
from services.definition.domain.ports import REQUEST_ID_RETENTION, RequestIdTaken, StoredRequest
from services.definition.domain.segment import Segment

S = segments.c
R = segment_references.c


class SegmentSql(SqlBase):
    # --- segments ---------------------------------------------------------------------------

    async def get_segment(
        self, project_id: str, segment_id: str, *, lock: bool = False
    ) -> Segment | None:
        found = await self.get_segments(project_id, [segment_id], lock=lock)
        return found.get(segment_id)

    async def get_segments(
        self, project_id: str, segment_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Segment]:
        """The segments that exist among `segment_ids`; `lock` takes row locks in id order."""
        if not segment_ids:
            return {}
        query = (
            sa.select(segments)
            .where(S.project_id == project_id, S.segment_id.in_(sorted(set(segment_ids))))
            .order_by(S.segment_id)
        )
        if lock:
            query = query.with_for_update()
        result = await self.conn.execute(query)
        return {row.segment_id: rows.segment_from_row(row) for row in result}

    async def name_owner(self, project_id: str, name_key: str) -> str | None:
        owner = await self.conn.scalar(
            sa.select(S.segment_id).where(S.project_id == project_id, S.name_key == name_key)
        )
        return str(owner) if owner is not None else None

    async def insert_segment(self, segment: Segment) -> None:
        try:
            await self.conn.execute(sa.insert(segments).values(rows.segment_values(segment)))
        except IntegrityError as exc:
            raise _conflict(exc, segment) from exc

    async def update_segment(self, segment: Segment, expected_etag: str) -> bool:
        """Compare-and-set on the etag: False when another write came first."""
        values = rows.segment_values(segment)
        for fixed in ("project_id", "segment_id", "creator", "create_time"):
            values.pop(fixed)
        for derived in (
            "goal_count",
            "intent_goal_count",
            "engagement_count",
            "dependent_segment_count",
        ):
            values.pop(derived)
        try:
            result = await self.conn.execute(
                sa.update(segments)
                .where(
                    S.project_id == segment.project_id,
                    S.segment_id == segment.segment_id,
                    S.etag == expected_etag,
                )
                .values(values)
            )
        except IntegrityError as exc:
            raise _conflict(exc, segment) from exc
        return bool(result.rowcount == 1)

    async def delete_segments(self, project_id: str, segment_ids: Collection[str]) -> None:
        ids = sorted(set(segment_ids))
        await self.conn.execute(
            sa.delete(segment_references).where(R.project_id == project_id, R.segment_id.in_(ids))
        )
        await self.conn.execute(
            sa.delete(segments).where(S.project_id == project_id, S.segment_id.in_(ids))
        )

    # --- references -------------------------------------------------------------------------

    async def references_of(
        self, project_id: str, segment_ids: Collection[str]
    ) -> dict[str, list[str]]:
        """Direct references of each segment (segments without any are left out)."""
        if not segment_ids:
            return {}
        result = await self.conn.execute(
            sa.select(R.segment_id, R.referenced_id)
            .where(R.project_id == project_id, R.segment_id.in_(sorted(set(segment_ids))))
            .order_by(R.segment_id, R.referenced_id)
        )
        found: dict[str, list[str]] = {}
        for segment_id, referenced_id in result:
            found.setdefault(segment_id, []).append(referenced_id)
        return found

    async def reference_graph(
        self, project_id: str, start_ids: Collection[str]
    ) -> dict[str, list[str]]:
        """Every edge reachable from `start_ids`, one query per level of the graph."""
        graph: dict[str, list[str]] = {}
        frontier = set(start_ids)
        seen = set(frontier)
        while frontier:
            level = await self.references_of(project_id, frontier)
            graph.update(level)
            frontier = {r for refs in level.values() for r in refs} - seen
            seen |= frontier
        return graph

    async def replace_references(
        self, project_id: str, segment_id: str, referenced_ids: Collection[str]
    ) -> None:
        await self.conn.execute(
            sa.delete(segment_references).where(
                R.project_id == project_id, R.segment_id == segment_id
            )
        )
        if referenced_ids:
            await self.conn.execute(
                sa.insert(segment_references),
                [
                    {"project_id": project_id, "segment_id": segment_id, "referenced_id": r}
                    for r in sorted(set(referenced_ids))
                ],
            )

    async def refresh_dependent_counts(self, project_id: str, segment_ids: Collection[str]) -> None:
        """Recount dependants of `segment_ids` (call with their rows locked)."""
        if not segment_ids:
            return
        inner = segment_references.alias("r")
        count = (
            sa.select(sa.func.count())
            .select_from(inner)
            .where(inner.c.project_id == S.project_id, inner.c.referenced_id == S.segment_id)
            .scalar_subquery()
        )
        await self.conn.execute(
            sa.update(segments)
            .where(S.project_id == project_id, S.segment_id.in_(sorted(set(segment_ids))))
            .values(dependent_segment_count=count)
        )

    async def dependents_of(
        self, project_id: str, segment_ids: Collection[str]
    ) -> list[tuple[str, str]]:
        """(dependent, referenced) pairs for every segment referencing one of `segment_ids`."""
        if not segment_ids:
            return []
        result = await self.conn.execute(
            sa.select(R.segment_id, R.referenced_id)
            .where(R.project_id == project_id, R.referenced_id.in_(sorted(set(segment_ids))))
            .order_by(R.referenced_id, R.segment_id)
        )
        return [(str(a), str(b)) for a, b in result]

    # --- request ids ------------------------------------------------------------------------

    async def find_request(
        self, project_id: str, request_id: str, not_before: datetime
    ) -> StoredRequest | None:
        row = (
            await self.conn.execute(
                sa.select(
                    request_ids.c.method, request_ids.c.resource_id, request_ids.c.body_hash
                ).where(
                    request_ids.c.project_id == project_id,
                    request_ids.c.request_id == request_id,
                    request_ids.c.create_time >= not_before,
                )
            )
        ).first()
        if row is None:
            return None
        return StoredRequest(row.method, row.resource_id, row.body_hash or "")

    async def save_request(
        self, project_id: str, request_id: str, stored: StoredRequest, now: datetime
    ) -> None:
        # Expired ids of the project go first: the retention bounds the table, and an expired
        # id may then be used again.
        await self.conn.execute(
            sa.delete(request_ids).where(
                request_ids.c.project_id == project_id,
                request_ids.c.create_time < now - REQUEST_ID_RETENTION,
            )
        )
        try:
            await self.conn.execute(
                sa.insert(request_ids).values(
                    project_id=project_id,
                    request_id=request_id,
                    method=stored.method,
                    resource_id=stored.resource_id,
                    create_time=now,
                    body_hash=stored.body or None,
                )
            )
        except IntegrityError as exc:
            raise RequestIdTaken(request_id) from exc


def _conflict(exc: IntegrityError, segment: Segment) -> Exception:
    text = str(exc.orig)
    if "name_key" in text:
        return AlreadyExists(
            f"a segment named {segment.display_name!r} already exists in "
            f"projects/{segment.project_id} (names are case-insensitive)",
            reason="SEGMENT_NAME_TAKEN",
        )
    if "segments" in text and ("pkey" in text or "segment_id" in text):
        return AlreadyExists(f"{segment.name} already exists", reason="SEGMENT_ID_TAKEN")
    return exc
