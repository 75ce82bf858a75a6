"""Versioned snapshots of segment members.

A version's members are written first (`snapshot_members`); the version exists once its
`snapshots` row is written. Readers only look at versions listed in `snapshots`, so they see
a whole version or none. A failed attempt's member rows are deleted; if even that fails, the
next version number is taken above them, so leftovers never mix into a committed version.

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

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.clickhouse.port import ClickHouse, Params, Row
from libs.common.errors import NotFound

_log = logging.getLogger(__name__)

#: Default bound of `MembersCache`: members held in total, over all cached versions. A cached
#: member costs about 80 bytes for an id of 8 characters (the string and its dict slot), so
#: about 160 MB; an id of 36 characters about 110 bytes.
DEFAULT_CACHED_MEMBERS = 2_000_000
#: Default of how long (seconds) a membership check trusts what it last read about which
#: snapshot version is the latest or live, unless this process changed the segment's versions.
DEFAULT_CHECK_TTL = 1.0


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
# All members of a version in one newline-joined string (one value to decode instead of a row
# per member), the member count, and how many ids contain the separator (then not cached).
_MEMBERS_JOINED = """
SELECT arrayStringConcat(groupArray(user_id), '\\n'), count(),
       countIf(position(user_id, '\\n') > 0)
FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}"""
# `snapshots` rows without FINAL (a merge-free read of a few rows by primary key): per version
# the row with the highest revision is the current one, as FINAL would pick.
_LATEST_ROWS = """
SELECT version, deleted, user_count FROM snapshots
WHERE project = {sp:String} AND segment = {ss:String}
ORDER BY version DESC, revision DESC LIMIT {n:UInt32}"""
_VERSION_ROWS = """
SELECT version, deleted, user_count FROM snapshots
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}
ORDER BY revision DESC LIMIT 1"""
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


_Key = tuple[str, str, int]
#: A cached member set: the ids as keys of a dict of None values. Such a dict holds only atomic
#: objects, so the garbage collector does not track it (a frozenset of a million ids would be
#: traversed by every collection, tens of milliseconds each).
_Members = dict[str, None]


class MembersCache:
    """Member sets of committed snapshot versions, least recently used first out.

    Bounded by `max_members`, the members held over all cached versions; a version with more
    members than that is never cached (its checks query ClickHouse). A version is loaded once,
    by the first check that needs it (concurrent checks wait for the same load), as one joined
    string split into a set of ids. A version whose ids cannot be loaded that way (an id
    containing a newline) or whose load failed is remembered as not cacheable.
    """

    _MAX_ENTRIES = 1024

    def __init__(self, ch: ClickHouse, max_members: int = DEFAULT_CACHED_MEMBERS) -> None:
        self._ch = ch
        self.max_members = max(max_members, 0)
        self._entries: OrderedDict[_Key, _Members | None] = OrderedDict()
        self._held = 0
        self._loading: dict[_Key, asyncio.Task[_Members | None]] = {}

    @property
    def held(self) -> int:
        """Members currently held, over all cached versions."""
        return self._held

    def cached_versions(self, project: str, segment: str) -> list[int]:
        return sorted(
            k[2] for k, v in self._entries.items() if k[:2] == (project, segment) and v is not None
        )

    async def members(
        self, project: str, segment: str, version: int, user_count: int
    ) -> _Members | None:
        """The members of a committed version, or None when it is not cached (too big)."""
        if user_count > self.max_members:
            return None
        key = (project, segment, version)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key))
            self._loading[key] = task
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        # a cancelled caller does not cancel the load that others may be waiting for
        return await asyncio.shield(task)

    async def _load(self, key: _Key) -> _Members | None:
        project, segment, version = key
        try:
            rows = await self._ch.query(
                _MEMBERS_JOINED, {"sp": project, "ss": segment, "sv": version}
            )
        except Exception:
            _log.warning("could not cache snapshot %s/%s; querying instead", segment, version,
                         exc_info=True)  # fmt: skip
            members = None
        else:
            joined, count, unsplittable = rows[0]
            members = None
            if not unsplittable:  # else an id contains the separator: not cached
                members = dict.fromkeys(joined.split("\n")) if count else {}
        self._store(key, members)
        return members

    def _store(self, key: _Key, members: _Members | None) -> None:
        self._entries[key] = members
        self._held += len(members or ())
        while self._held > self.max_members or len(self._entries) > self._MAX_ENTRIES:
            _, evicted = self._entries.popitem(last=False)
            self._held -= len(evicted or ())

    def forget(self, project: str, segment: str, versions: Sequence[int]) -> None:
        """Drops versions (deleted ones) from the cache."""
        for version in versions:
            evicted = self._entries.pop((project, segment, version), None)
            self._held -= len(evicted or ())


_Committed = tuple[int, int] | None


class _CommittedCache:
    """What `SnapshotStore.committed` read, per (project, segment, version asked), for `ttl`
    seconds. Forgetting a segment bumps its generation, so that a read which started before is
    not stored afterwards."""

    _MAX_ENTRIES = 10_000

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[_Key, tuple[float, _Committed]] = {}
        self._generations: dict[tuple[str, str], int] = {}

    def generation(self, project: str, segment: str) -> int:
        return self._generations.get((project, segment), 0)

    def get(self, key: _Key) -> tuple[bool, _Committed]:
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry[0]:
            return False, None
        return True, entry[1]

    def put(self, key: _Key, value: _Committed, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation(key[0], key[1]):
            return
        now = self._clock()
        if len(self._entries) >= self._MAX_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self._MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = (now + self.ttl, value)

    def forget(self, project: str, segment: str) -> None:
        self._generations[(project, segment)] = self.generation(project, segment) + 1
        for key in [k for k in self._entries if k[:2] == (project, segment)]:
            del self._entries[key]


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
        self._committed = _CommittedCache(check_ttl, clock)

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
        finally:
            self._committed.forget(project, segment)
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
        try:
            await self._ch.command(_MARK_DELETED, {**self._key(project, segment), "vs": old})
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
    ) -> tuple[_Committed, bool]:
        """(version, user count) of a live committed version, or of the latest one when `version`
        is 0; None when there is none. Remembered for `check_ttl` seconds (see the module) unless
        `fresh`; the flag tells whether it was read just now."""
        cache_key = (project, segment, version)
        if not fresh:
            known, value = self._committed.get(cache_key)
            if known:
                return value, False
        generation = self._committed.generation(project, segment)
        value = await self._read_committed(project, segment, version)
        self._committed.put(cache_key, value, generation)
        return value, True

    async def _read_committed(self, project: str, segment: str, version: int) -> _Committed:
        # a cheaper read than `get`/`latest` (no FINAL)
        key = self._key(project, segment)
        if version:
            rows = await self._ch.query(_VERSION_ROWS, {**key, "sv": version})
            return (version, int(rows[0][2])) if rows and not rows[0][1] else None
        limit = 2 * self._keep + 2
        rows = await self._ch.query(_LATEST_ROWS, {**key, "n": limit})
        seen: set[int] = set()
        for row_version, deleted, user_count in rows:
            if row_version in seen:
                continue  # an older revision of a version already decided
            seen.add(row_version)
            if not deleted:
                return int(row_version), int(user_count)
        if len(rows) < limit:
            return None
        # only deleted versions among the newest rows: look further, as FINAL sees it
        info = await self.latest(project, segment)
        return (info.version, info.user_count) if info else None

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
        key = {**self._key(project, segment), "sv": committed[0], "ids": list(user_ids)}
        rows = await self._ch.query(_MEMBERS_IN, key)
        return {r[0] for r in rows}, committed[0]

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
