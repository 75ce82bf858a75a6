"""Versioned snapshots of segment members.

A version's members are written first (`snapshot_members`); the version exists once its
`snapshots` row is written. Readers only look at versions listed in `snapshots`, so they see
a whole version or none. A failed attempt's member rows are deleted; if even that fails, the
next version number is taken above them, so leftovers never mix into a committed version.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.clickhouse.port import ClickHouse, Params, Row
from libs.common.errors import NotFound


@dataclass(frozen=True)
class SnapshotInfo:
    version: int
    as_of: datetime
    user_count: int
    create_time: datetime


_NEXT_VERSION = """
SELECT greatest(
    (SELECT max(version) FROM snapshots WHERE project = {sp:String} AND segment = {ss:String}),
    (SELECT max(version) FROM snapshot_members
     WHERE project = {sp:String} AND segment = {ss:String}))"""
_INSERT_MEMBERS = """
INSERT INTO snapshot_members (project, segment, version, user_id)
SELECT {sp:String}, {ss:String}, {sv:Int64}, user_id FROM """
_COUNT = """
SELECT count() FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}"""
_DISCARD = """
DELETE FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version IN {vs:Array(Int64)}"""
_MARK_DELETED = """
INSERT INTO snapshots (project, segment, version, as_of, user_count, create_time, deleted, revision)
SELECT project, segment, version, as_of, user_count, create_time, 1, 2 FROM snapshots FINAL
WHERE project = {sp:String} AND segment = {ss:String} AND version IN {vs:Array(Int64)}"""
_VERSIONS = """
SELECT version, as_of, user_count, create_time FROM snapshots FINAL
WHERE project = {sp:String} AND segment = {ss:String} AND deleted = 0
  AND version < {before:Int64}
ORDER BY version DESC LIMIT {n:UInt32}"""
_MEMBERS = """
SELECT user_id FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}"""
_MEMBERS_IN = _MEMBERS + " AND user_id IN {ids:Array(String)}"
_CHANGES = """
SELECT user_id, kind FROM (
    SELECT user_id, 1 AS kind FROM snapshot_members
    WHERE project = {sp:String} AND segment = {ss:String} AND version = {b:Int64}
      AND user_id NOT IN (SELECT user_id FROM snapshot_members
                          WHERE project = {sp:String} AND segment = {ss:String}
                            AND version = {a:Int64})
    UNION ALL
    SELECT user_id, 2 AS kind FROM snapshot_members
    WHERE project = {sp:String} AND segment = {ss:String} AND version = {a:Int64}
      AND user_id NOT IN (SELECT user_id FROM snapshot_members
                          WHERE project = {sp:String} AND segment = {ss:String}
                            AND version = {b:Int64}))
WHERE user_id > {after:String}
ORDER BY user_id LIMIT {n:UInt32}"""


class SnapshotStore:
    def __init__(self, ch: ClickHouse, keep: int = 3) -> None:
        self._ch = ch
        self._keep = max(keep, 1)

    @staticmethod
    def _key(project: str, segment: str) -> dict[str, str]:
        return {"sp": project, "ss": segment}

    async def next_version(self, project: str, segment: str) -> int:
        rows = await self._ch.query(_NEXT_VERSION, self._key(project, segment))
        return int(rows[0][0] or 0) + 1

    async def write(
        self,
        project: str,
        segment: str,
        version: int,
        members_sql: str,
        members_params: Params,
        as_of: datetime,
        now: datetime,
    ) -> SnapshotInfo:
        key = self._key(project, segment)
        try:
            # the compiled query is generated SQL text with every value bound as a parameter
            insert = _INSERT_MEMBERS + "(" + members_sql + ")"
            await self._ch.command(insert, {**members_params, **key, "sv": version})
            rows = await self._ch.query(_COUNT, {**key, "sv": version})
            count = int(rows[0][0])
            await self._ch.insert(
                "snapshots",
                ["project", "segment", "version", "as_of", "user_count", "create_time",
                 "deleted", "revision"],
                [[project, segment, version, as_of, count, now, 0, 1]],
            )  # fmt: skip
        except BaseException:
            await self._discard_members(project, segment, [version])
            raise
        await self._prune(project, segment)
        return SnapshotInfo(version, as_of, count, now)

    async def _discard_members(self, project: str, segment: str, versions: Sequence[int]) -> None:
        with contextlib.suppress(Exception):  # leftovers stay invisible (no snapshots row)
            await self._ch.command(_DISCARD, {**self._key(project, segment), "vs": list(versions)})

    async def _prune(self, project: str, segment: str) -> None:
        versions = [s.version for s in await self.versions(project, segment, 1000, None)]
        old = versions[self._keep :]
        if not old:
            return
        await self._ch.command(_MARK_DELETED, {**self._key(project, segment), "vs": old})
        await self._discard_members(project, segment, old)

    async def versions(
        self, project: str, segment: str, limit: int, before: int | None
    ) -> list[SnapshotInfo]:
        rows = await self._ch.query(
            _VERSIONS,
            {**self._key(project, segment), "before": before or 2**62, "n": limit},
        )
        return [SnapshotInfo(int(r[0]), r[1], int(r[2]), r[3]) for r in rows]

    async def get(self, project: str, segment: str, version: int) -> SnapshotInfo:
        found = await self.versions(project, segment, 1, version + 1)
        if not found or found[0].version != version:
            raise NotFound(f"snapshot version {version} of {segment} not found")
        return found[0]

    async def latest(self, project: str, segment: str) -> SnapshotInfo | None:
        found = await self.versions(project, segment, 1, None)
        return found[0] if found else None

    async def members_in(
        self, project: str, segment: str, version: int, user_ids: Sequence[str]
    ) -> set[str]:
        rows = await self._ch.query(
            _MEMBERS_IN, {**self._key(project, segment), "sv": version, "ids": list(user_ids)}
        )
        return {r[0] for r in rows}

    def stream_members(self, project: str, segment: str, version: int) -> AsyncIterator[list[Row]]:
        return self._ch.query_stream(_MEMBERS, {**self._key(project, segment), "sv": version})

    async def changes(
        self, project: str, segment: str, from_v: int, to_v: int, after: str, limit: int
    ) -> list[tuple[str, int]]:
        """(user_id, 1 entered | 2 left) ordered by user id, after `after`."""
        rows = await self._ch.query(
            _CHANGES,
            {**self._key(project, segment), "a": from_v, "b": to_v, "after": after, "n": limit},
        )
        return [(r[0], int(r[1])) for r in rows]
