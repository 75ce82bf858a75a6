"""SQL for listings (keyset pagination) and for the usage registry."""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection
from typing import Any, cast

import sqlalchemy as sa

from services.definition.adapters import rows
from services.definition.adapters.sql_base import SqlBase
from services.definition.adapters.tables import segment_references, segment_usages, segments
from services.definition.domain.filtering import Clause
from services.definition.domain.paging import SortField
from services.definition.domain.ports import SegmentQuery, UsageQuery
from services.definition.domain.segment import (
    ENGAGEMENT_KINDS,
    LIVE_STATUSES,
    Segment,
    Usage,
    UsageKind,
    name_key,
)

S = segments.c
U = segment_usages.c

_SORT_COLUMNS: dict[SortField, sa.ColumnElement[Any]] = {
    SortField.DISPLAY_NAME: S.name_key,
    SortField.CREATE_TIME: S.create_time,
    SortField.UPDATE_TIME: S.update_time,
    SortField.ENGAGEMENT_COUNT: S.engagement_count,
    SortField.DEPENDENT_SEGMENT_COUNT: S.dependent_segment_count,
}


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(column: sa.ColumnElement[Any], op: str, value: Any) -> sa.ColumnElement[bool]:
    return cast(sa.ColumnElement[bool], _OPERATORS[op](column, value))


def _storable(value: Any) -> bool:
    """Whether a text can be stored at all: no stored text holds a NUL (PostgreSQL refuses
    one, SQLite ends a LIKE pattern at one; writes refuse control characters). A value that
    cannot be stored is compared in Python instead, so that both backends agree: it equals
    nothing and contains nothing."""
    return not (isinstance(value, str) and "\x00" in value)


def _segment_clause(clause: Clause) -> sa.ColumnElement[bool]:
    if not _storable(clause.value):
        return sa.true() if clause.operator == "!=" else sa.false()
    if clause.field == "has_goals":
        has_goals = (S.goal_count + S.intent_goal_count) > 0
        wanted = clause.value if clause.operator == "=" else not clause.value
        return has_goals if wanted else sa.not_(has_goals)
    if clause.field == "display_name":
        return _compare(S.name_key, clause.operator, name_key(str(clause.value)))
    column = S.segment_type if clause.field == "type" else S[clause.field]
    return _compare(column, clause.operator, clause.value)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ListingSql(SqlBase):
    async def list_segments(self, query: SegmentQuery) -> tuple[list[Segment], int]:
        """One page of segments (in order, after the cursor) and the total matching count."""
        conditions: list[sa.ColumnElement[bool]] = [S.project_id == query.project_id]
        conditions += [_segment_clause(c) for c in query.clauses]
        if query.search and not _storable(query.search):
            conditions.append(sa.false())
        elif query.search:
            conditions.append(
                sa.or_(
                    S.name_key.like(_like_pattern(name_key(query.search)), escape="\\"),
                    S.segment_id == query.search,
                )
            )
        total = await self.conn.scalar(
            sa.select(sa.func.count()).select_from(segments).where(*conditions)
        )
        column = _SORT_COLUMNS[query.order.field]
        descending = query.order.descending
        if query.cursor is not None:
            key, last_id = query.cursor.key, query.cursor.last_id
            if descending:
                after = sa.or_(column < key, sa.and_(column == key, S.segment_id < last_id))
            else:
                after = sa.or_(column > key, sa.and_(column == key, S.segment_id > last_id))
            conditions.append(after)
        ordering = (
            [column.desc(), S.segment_id.desc()] if descending else [column.asc(), S.segment_id]
        )
        result = await self.conn.execute(
            sa.select(segments).where(*conditions).order_by(*ordering).limit(query.limit)
        )
        return [rows.segment_from_row(r) for r in result], int(total or 0)

    async def list_dependents(
        self, project_id: str, segment_id: str, after_id: str | None, limit: int
    ) -> list[Segment]:
        refs = segment_references.c
        dependent_ids = sa.select(refs.segment_id).where(
            refs.project_id == project_id, refs.referenced_id == segment_id
        )
        conditions = [S.project_id == project_id, S.segment_id.in_(dependent_ids)]
        if after_id is not None:
            conditions.append(S.segment_id > after_id)
        result = await self.conn.execute(
            sa.select(segments).where(*conditions).order_by(S.segment_id).limit(limit)
        )
        return [rows.segment_from_row(r) for r in result]

    # --- usages -----------------------------------------------------------------------------

    def _usage_key(
        self, project_id: str, segment_id: str, kind: UsageKind, external_id: str
    ) -> list[sa.ColumnElement[bool]]:
        return [
            U.project_id == project_id,
            U.segment_id == segment_id,
            U.kind == kind.value,
            U.external_id == external_id,
        ]

    async def get_usage(
        self, project_id: str, segment_id: str, kind: UsageKind, external_id: str
    ) -> Usage | None:
        row = (
            await self.conn.execute(
                sa.select(segment_usages).where(
                    *self._usage_key(project_id, segment_id, kind, external_id)
                )
            )
        ).first()
        return rows.usage_from_row(row) if row is not None else None

    async def put_usage(self, usage: Usage) -> None:
        """Insert or replace (call with the segment row locked)."""
        await self.conn.execute(
            sa.delete(segment_usages).where(
                *self._usage_key(usage.project_id, usage.segment_id, usage.kind, usage.external_id)
            )
        )
        await self.conn.execute(sa.insert(segment_usages).values(rows.usage_values(usage)))

    async def delete_usage(
        self, project_id: str, segment_id: str, kind: UsageKind, external_id: str
    ) -> bool:
        result = await self.conn.execute(
            sa.delete(segment_usages).where(
                *self._usage_key(project_id, segment_id, kind, external_id)
            )
        )
        return bool(result.rowcount)

    async def list_usages(self, query: UsageQuery) -> list[Usage]:
        conditions: list[sa.ColumnElement[bool]] = [
            U.project_id == query.project_id,
            U.segment_id == query.segment_id,
        ]
        for clause in query.clauses:
            conditions.append(_compare(U[clause.field], clause.operator, clause.value))
        if query.engagements_only:
            conditions += _engagement_conditions()
        if query.after is not None:
            kind, external_id = query.after
            conditions.append(
                sa.or_(U.kind > kind, sa.and_(U.kind == kind, U.external_id > external_id))
            )
        result = await self.conn.execute(
            sa.select(segment_usages)
            .where(*conditions)
            .order_by(U.kind, U.external_id)
            .limit(query.limit)
        )
        return [rows.usage_from_row(r) for r in result]

    async def live_engagements(self, project_id: str, segment_ids: Collection[str]) -> list[Usage]:
        """Active or scheduled campaigns and journeys using any of `segment_ids`."""
        if not segment_ids:
            return []
        result = await self.conn.execute(
            sa.select(segment_usages)
            .where(
                U.project_id == project_id,
                U.segment_id.in_(sorted(set(segment_ids))),
                *_engagement_conditions(),
            )
            .order_by(U.segment_id, U.kind, U.external_id)
        )
        return [rows.usage_from_row(r) for r in result]

    async def refresh_usage_counts(self, project_id: str, segment_id: str) -> None:
        """Recount goals, intent goals and engagements (call with the segment row locked)."""
        live = [s.value for s in LIVE_STATUSES]

        def count(kinds: Collection[UsageKind]) -> sa.ScalarSelect[Any]:
            inner = segment_usages.alias("u")
            return (
                sa.select(sa.func.count())
                .select_from(inner)
                .where(
                    inner.c.project_id == project_id,
                    inner.c.segment_id == segment_id,
                    inner.c.kind.in_([k.value for k in kinds]),
                    inner.c.status.in_(live),
                )
                .scalar_subquery()
            )

        await self.conn.execute(
            sa.update(segments)
            .where(S.project_id == project_id, S.segment_id == segment_id)
            .values(
                goal_count=count([UsageKind.GOAL]),
                intent_goal_count=count([UsageKind.INTENT_GOAL]),
                engagement_count=count(ENGAGEMENT_KINDS),
            )
        )


def _engagement_conditions() -> list[sa.ColumnElement[bool]]:
    return [
        U.kind.in_(sorted(k.value for k in ENGAGEMENT_KINDS)),
        U.status.in_(sorted(s.value for s in LIVE_STATUSES)),
    ]
