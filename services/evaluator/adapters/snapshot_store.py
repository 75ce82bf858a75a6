"""Versioned snapshots of segment members.

A version's members are written first (`snapshot_members`, tagged with the attempt that
wrote them); the version exists once its `snapshots` row is written, naming that attempt.
Readers only look at versions listed in `snapshots`, and only at the members of the attempt
listed, so they see a whole version or none, even when two processes took the same version
number at once: the first commit holds it, and the other attempt drops its rows and takes the
next number. A failed attempt's member rows are deleted; if even that fails, they stay
invisible (no `snapshots` row names their attempt), and the next version number is taken above
them.

Membership checks against a committed version are answered from an in-process cache of that
version's members (`MembersCache`): a committed version never changes (its member rows are
written before its `snapshots` row and deleted only after it is marked deleted), so a cached
member set stays valid for as long as the version is live. Which version is the latest (or
whether a given version is live) is read from `snapshots` and remembered for `check_ttl`
seconds (default 1 s); this process forgets it as soon as it commits or prunes a version of the
segment, so its own changes are seen at once and another process's within `check_ttl`. A check
answered by query (a version not cached) re-reads it first, since a pruned version's member rows
may already be deleted.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.clickhouse.port import ClickHouse, Params, Row
from libs.common.errors import Aborted, NotFound
from services.evaluator.adapters.snapshot_cache import (
    DEFAULT_CACHED_MEMBERS,
    DEFAULT_CHECK_TTL,
    Committed,
    CommittedCache,
    MembersCache,
)

#: `snapshots` revisions (ReplacingMergeTree keeps the highest): a commit's is this base less
#: the commit time in microseconds, so of two attempts committing one version at once the
#: earlier commit stays; a deletion mark's is above every commit's.
_COMMIT_BASE = 2**62
_DELETED_REVISION = 2**63
#: How many versions one snapshot tries before giving up to concurrent snapshots.
_ATTEMPTS = 5


def _milliseconds(value: datetime) -> datetime:
    """`value` truncated to whole milliseconds (DateTime64(3))."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


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
INSERT INTO snapshot_members (project, segment, version, attempt, user_id)
SELECT {sp:String}, {ss:String}, {sv:Int64}, {sa:UUID}, user_id FROM """
_COUNT = """
SELECT count() FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}
  AND attempt = {sa:UUID}"""
_DISCARD = """
DELETE FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version IN {vs:Array(Int64)}"""
_DISCARD_ATTEMPT = _DISCARD + " AND attempt = {sa:UUID}"
_MARK_DELETED = """
INSERT INTO snapshots (project, segment, version, attempt, as_of, user_count, create_time,
                       deleted, revision)
SELECT project, segment, version, attempt, as_of, user_count, create_time, 1, {rev:UInt64}
FROM snapshots FINAL
WHERE project = {sp:String} AND segment = {ss:String} AND version IN {vs:Array(Int64)}"""
_VERSIONS = """
SELECT version, as_of, user_count, create_time FROM snapshots FINAL
WHERE project = {sp:String} AND segment = {ss:String} AND deleted = 0
  AND version < {before:Int64}
ORDER BY version DESC LIMIT {n:UInt32}"""
_MEMBERS = """
SELECT user_id FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}
  AND attempt = {sa:UUID}"""
_MEMBERS_IN = _MEMBERS + " AND user_id IN {ids:Array(String)}"
# `snapshots` rows without FINAL (a merge-free read of a few rows by primary key): per version
# the row with the highest revision is the current one, as FINAL would pick.
_LATEST_ROWS = """
SELECT version, deleted, user_count, toString(attempt) FROM snapshots
WHERE project = {sp:String} AND segment = {ss:String}
ORDER BY version DESC, revision DESC LIMIT {n:UInt32}"""
_VERSION_ROWS = """
SELECT version, deleted, user_count, toString(attempt) FROM snapshots
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}
ORDER BY revision DESC LIMIT 1"""
_CHANGES = """
SELECT user_id, kind FROM (
    SELECT user_id, 1 AS kind FROM snapshot_members
    WHERE project = {sp:String} AND segment = {ss:String} AND version = {b:Int64}
      AND attempt = {bt:UUID}
      AND user_id NOT IN (SELECT user_id FROM snapshot_members
                          WHERE project = {sp:String} AND segment = {ss:String}
                            AND version = {a:Int64} AND attempt = {at:UUID})
    UNION ALL
    SELECT user_id, 2 AS kind FROM snapshot_members
    WHERE project = {sp:String} AND segment = {ss:String} AND version = {a:Int64}
      AND attempt = {at:UUID}
      AND user_id NOT IN (SELECT user_id FROM snapshot_members
                          WHERE project = {sp:String} AND segment = {ss:String}
                            AND version = {b:Int64} AND attempt = {bt:UUID}))
WHERE user_id > {after:String}
ORDER BY user_id LIMIT {n:UInt32}"""


class SnapshotStore:
    def __init__(
        self,
        ch: ClickHouse,
        keep: int = 3,
        cached_members: int = DEFAULT_CACHED_MEMBERS,
        check_ttl: float = DEFAULT_CHECK_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ch = ch
        self._keep = max(keep, 1)
        self.cache = MembersCache(ch, cached_members)
        self._committed = CommittedCache(check_ttl, clock)

    @staticmethod
    def _key(project: str, segment: str) -> dict[str, str]:
        return {"sp": project, "ss": segment}

    @property
    def keep(self) -> int:
        """Versions kept per segment."""
        return self._keep

    @property
    def check_ttl(self) -> float:
        """Seconds what was read about a segment's versions is trusted."""
        return self._committed.ttl

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
        """Writes the members under `version` as one attempt, then commits the attempt with the
        version's `snapshots` row. Should another process commit the same version first (each
        took it as the next one), this attempt's rows are dropped and it takes the next
        version; readers only ever see the members of the attempt a version committed.

        `as_of` and `now` are kept in milliseconds, what the table holds, so that the answer
        of the write and every later read show one value (stored times are milliseconds, so
        the members are the same at either precision)."""
        as_of, now = _milliseconds(as_of), _milliseconds(now)
        for _ in range(_ATTEMPTS):
            info = await self._attempt(project, segment, version, members_sql, members_params,
                                       as_of, now)  # fmt: skip
            if info is not None:
                await self._prune(project, segment)
                return info
            version = await self.next_version(project, segment)
        raise Aborted(
            f"snapshot of {segment}: other snapshots kept taking its version; try again",
            reason="SNAPSHOT_VERSION_CONTENDED",
        )

    async def _attempt(
        self,
        project: str,
        segment: str,
        version: int,
        members_sql: str,
        members_params: Params,
        as_of: datetime,
        now: datetime,
    ) -> SnapshotInfo | None:
        """The committed version, or None when another attempt holds `version`."""
        key = self._key(project, segment)
        attempt = str(uuid.uuid4())
        mine = {**key, "sv": version, "sa": attempt}
        committing = False
        try:
            # the compiled query is generated SQL text with every value bound as a parameter
            insert = _INSERT_MEMBERS + "(" + members_sql + ")"
            await self._ch.command(insert, {**members_params, **mine})
            rows = await self._ch.query(_COUNT, mine)
            count = int(rows[0][0])
            if await self._holder(project, segment, version) is None:
                revision = _COMMIT_BASE - time.time_ns() // 1000
                # from here on a failure may come after the row was written: the members stay
                # (invisible unless the row names their attempt)
                committing = True
                await self._ch.insert(
                    "snapshots",
                    ["project", "segment", "version", "attempt", "as_of", "user_count",
                     "create_time", "deleted", "revision"],
                    [[project, segment, version, attempt, as_of, count, now, 0, revision]],
                )  # fmt: skip
                if await self._holder(project, segment, version) == attempt:
                    return SnapshotInfo(version, as_of, count, now)
        except BaseException:
            if not committing:
                await self._discard_members(project, segment, [version], attempt)
            raise
        finally:
            self._committed.forget(project, segment)
        await self._discard_members(project, segment, [version], attempt)
        return None

    async def _holder(self, project: str, segment: str, version: int) -> str | None:
        """The attempt that holds `version` (committed, or deleted since), if any."""
        rows = await self._ch.query(_VERSION_ROWS, {**self._key(project, segment), "sv": version})
        return str(rows[0][3]) if rows else None

    async def _discard_members(
        self, project: str, segment: str, versions: Sequence[int], attempt: str | None = None
    ) -> None:
        params = {**self._key(project, segment), "vs": list(versions)}
        sql = _DISCARD if attempt is None else _DISCARD_ATTEMPT
        if attempt is not None:
            params["sa"] = attempt
        with contextlib.suppress(Exception):  # leftovers stay invisible (no snapshots row)
            await self._ch.command(sql, params)

    async def _prune(self, project: str, segment: str) -> None:
        versions = [s.version for s in await self.versions(project, segment, 1000, None)]
        old = versions[self._keep :]
        if not old:
            return
        try:
            params = {**self._key(project, segment), "vs": old, "rev": _DELETED_REVISION}
            await self._ch.command(_MARK_DELETED, params)
        finally:
            self._committed.forget(project, segment)
        self.cache.forget(project, segment, old)
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

    async def committed(
        self, project: str, segment: str, version: int, fresh: bool = False
    ) -> tuple[Committed, bool]:
        """(version, user count, attempt) of a live committed version, or of the latest one when
        `version` is 0; None when there is none. Remembered for `check_ttl` seconds (see the
        module) unless `fresh`; the flag tells whether it was read just now."""
        cache_key = (project, segment, version)
        if not fresh:
            known, value = self._committed.get(cache_key)
            if known:
                return value, False
        generation = self._committed.generation(project, segment)
        value = await self._read_committed(project, segment, version)
        self._committed.put(cache_key, value, generation)
        return value, True

    async def _read_committed(self, project: str, segment: str, version: int) -> Committed:
        # a cheaper read than `get`/`latest` (no FINAL)
        key = self._key(project, segment)
        if version:
            rows = await self._ch.query(_VERSION_ROWS, {**key, "sv": version})
            if not rows or rows[0][1]:
                return None
            return version, int(rows[0][2]), str(rows[0][3])
        limit = 2 * self._keep + 2
        rows = await self._ch.query(_LATEST_ROWS, {**key, "n": limit})
        seen: set[int] = set()
        for row_version, deleted, user_count, attempt in rows:
            if row_version in seen:
                continue  # a lower revision of a version already decided
            seen.add(row_version)
            if not deleted:
                return int(row_version), int(user_count), str(attempt)
        if len(rows) < limit:
            return None
        # only deleted versions among the newest rows: look further, as FINAL sees it
        info = await self.latest(project, segment)
        return await self._read_committed(project, segment, info.version) if info else None

    async def check(
        self, project: str, segment: str, version: int, user_ids: Sequence[str]
    ) -> tuple[set[str], int] | None:
        """Which of `user_ids` are members of a live committed version (the latest when `version`
        is 0), and that version; None when there is no such version."""
        committed, fresh = await self.committed(project, segment, version)
        if committed is None:
            return None
        members = await self.cache.members(project, segment, *committed)
        if members is not None:
            return {u for u in user_ids if u in members}, committed[0]
        if not fresh:
            # answering by query: the remembered version may have been pruned since, and its
            # member rows deleted; only a version live now answers
            committed, _ = await self.committed(project, segment, version, fresh=True)
            if committed is None:
                return None
        version_, _, attempt = committed
        key = {**self._key(project, segment), "sv": version_, "sa": attempt, "ids": list(user_ids)}
        rows = await self._ch.query(_MEMBERS_IN, key)
        return {r[0] for r in rows}, version_

    async def _live_attempt(self, project: str, segment: str, version: int) -> str:
        committed = await self._read_committed(project, segment, version)
        if committed is None:
            raise NotFound(f"snapshot version {version} of {segment} not found")
        return committed[2]

    async def stream_members(
        self, project: str, segment: str, version: int
    ) -> AsyncIterator[list[Row]]:
        """The members of a live committed version, in blocks; NotFound when it is not live."""
        attempt = await self._live_attempt(project, segment, version)
        key = {**self._key(project, segment), "sv": version, "sa": attempt}
        async for block in self._ch.query_stream(_MEMBERS, key):
            yield block

    async def changes(
        self, project: str, segment: str, from_v: int, to_v: int, after: str, limit: int
    ) -> list[tuple[str, int]]:
        """(user_id, 1 entered | 2 left) ordered by user id, after `after`."""
        params = {
            **self._key(project, segment),
            "a": from_v, "at": await self._live_attempt(project, segment, from_v),
            "b": to_v, "bt": await self._live_attempt(project, segment, to_v),
            "after": after, "n": limit,
        }  # fmt: skip
        rows = await self._ch.query(_CHANGES, params)
        return [(r[0], int(r[1])) for r in rows]
