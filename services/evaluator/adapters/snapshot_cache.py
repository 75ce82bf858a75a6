"""In-process caches of snapshot reads (see `snapshot_store`): the member sets of committed
versions, and what was last read about which version is the latest or live."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

from libs.clickhouse.port import ClickHouse

_log = logging.getLogger(__name__)

#: Default bound of `MembersCache`: members held in total, over all cached versions. A cached
#: member costs about 80 bytes for an id of 8 characters (the string and its dict slot), so
#: about 160 MB; an id of 36 characters about 110 bytes.
DEFAULT_CACHED_MEMBERS = 2_000_000
#: Default of how long (seconds) a membership check trusts what it last read about which
#: snapshot version is the latest or live, unless this process changed the segment's versions.
DEFAULT_CHECK_TTL = 1.0


# All members of a version in one newline-joined string (one value to decode instead of a row
# per member), the member count, and how many ids contain the separator (then not cached).
_MEMBERS_JOINED = """
SELECT arrayStringConcat(groupArray(user_id), '\\n'), count(),
       countIf(position(user_id, '\\n') > 0)
FROM snapshot_members
WHERE project = {sp:String} AND segment = {ss:String} AND version = {sv:Int64}
  AND attempt = {sa:UUID}"""

#: (project, segment, version, attempt): a version's members are those its committed attempt wrote
_Key = tuple[str, str, int, str]
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
        self, project: str, segment: str, version: int, user_count: int, attempt: str
    ) -> _Members | None:
        """The members of a committed version (written by `attempt`), or None when it is not
        cached (too big)."""
        if user_count > self.max_members:
            return None
        key = (project, segment, version, attempt)
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
        project, segment, version, attempt = key
        try:
            rows = await self._ch.query(
                _MEMBERS_JOINED, {"sp": project, "ss": segment, "sv": version, "sa": attempt}
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
        gone = set(versions)
        for key in [k for k in self._entries if k[:2] == (project, segment) and k[2] in gone]:
            self._held -= len(self._entries.pop(key) or ())


#: (version, user count, attempt) of a live committed version, or None
Committed = tuple[int, int, str] | None


#: (project, segment, version asked: 0 for the latest)
_Asked = tuple[str, str, int]


class CommittedCache:
    """What `SnapshotStore.committed` read, per (project, segment, version asked), for `ttl`
    seconds. Forgetting a segment bumps its generation, so that a read which started before is
    not stored afterwards."""

    _MAX_ENTRIES = 10_000

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[_Asked, tuple[float, Committed]] = {}
        self._generations: dict[tuple[str, str], int] = {}

    def generation(self, project: str, segment: str) -> int:
        return self._generations.get((project, segment), 0)

    def get(self, key: _Asked) -> tuple[bool, Committed]:
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry[0]:
            return False, None
        return True, entry[1]

    def put(self, key: _Asked, value: Committed, generation: int) -> None:
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
