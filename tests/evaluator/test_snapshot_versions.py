"""Two processes taking the same snapshot version number at once (each holds only its own
lock): a version always holds the members of one attempt, never a mix."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.clickhouse.port import ClickHouse
from libs.common.errors import Aborted, Unavailable
from services.evaluator.adapters.snapshot_store import SnapshotStore

P, SEG = "p1", "projects/p1/segments/race"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _ids(*ids: str) -> tuple[str, dict[str, Any]]:
    return "SELECT arrayJoin({ids:Array(String)}) AS user_id", {"ids": list(ids)}


async def _members(store: SnapshotStore, version: int) -> list[str]:
    rows = [r[0] async for block in store.stream_members(P, SEG, version) for r in block]
    return sorted(rows)


async def test_a_version_taken_already_sends_the_later_attempt_to_the_next(
    ch: ClickHouse,
) -> None:
    one, two = SnapshotStore(ch), SnapshotStore(ch)  # two processes
    version = await one.next_version(P, SEG)
    assert await two.next_version(P, SEG) == version  # both take the same number
    first = await one.write(P, SEG, version, *_ids("a", "b"), NOW, NOW)
    second = await two.write(P, SEG, version, *_ids("c"), NOW, NOW)
    assert (first.version, first.user_count) == (version, 2)
    assert (second.version, second.user_count) == (version + 1, 1)
    assert await _members(one, version) == ["a", "b"]
    assert await _members(two, version + 1) == ["c"]
    assert (await two.check(P, SEG, version, ["a", "c"])) == ({"a"}, version)
    changes = await one.changes(P, SEG, version, version + 1, "", 10)
    assert changes == [("a", 2), ("b", 2), ("c", 1)]
    rows = await ch.query("SELECT count() FROM snapshot_members WHERE segment = {s:String}",
                          {"s": SEG})  # fmt: skip
    assert rows == [(3,)]  # the losing attempt's rows are gone


class _CommitsAtOnce:
    """The real engine; right after this process's `snapshots` row is written, another
    process's commit of the same version, made a moment earlier, lands too."""

    def __init__(self, ch: ClickHouse, times: int = 1) -> None:
        self._ch = ch
        self.times = times  # how many of this process's commits another one beats

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def insert(self, table: str, columns: Any, rows: Any, settings: Any = None) -> None:
        await self._ch.insert(table, columns, rows, settings)
        if table == "snapshots" and self.times > 0:
            self.times -= 1
            row = dict(zip(columns, rows[0], strict=True))
            attempt = f"11111111-1111-1111-1111-{self.times:012d}"
            await self._ch.insert(
                "snapshot_members",
                ["project", "segment", "version", "attempt", "user_id"],
                [[P, SEG, row["version"], attempt, "z"]],
            )
            earlier = dict(row, attempt=attempt, user_count=1, revision=row["revision"] + 1)
            await self._ch.insert("snapshots", list(earlier), [list(earlier.values())])


async def test_of_two_commits_of_one_version_at_once_the_earlier_holds_it(
    ch: ClickHouse,
) -> None:
    store = SnapshotStore(_CommitsAtOnce(ch))
    version = await store.next_version(P, SEG)
    info = await store.write(P, SEG, version, *_ids("a", "b"), NOW, NOW)
    assert info.version == version + 1 and info.user_count == 2
    reader = SnapshotStore(ch)
    assert await _members(reader, version) == ["z"]
    assert await _members(reader, version + 1) == ["a", "b"]
    assert await reader.check(P, SEG, version, ["a", "z"]) == ({"z"}, version)


class _LostAfterCommit:
    """The real engine, but the connection drops right after the `snapshots` row is written."""

    def __init__(self, ch: ClickHouse) -> None:
        self._ch = ch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def insert(self, table: str, columns: Any, rows: Any, settings: Any = None) -> None:
        await self._ch.insert(table, columns, rows, settings)
        if table == "snapshots":
            raise Unavailable("connection lost")


async def test_a_commit_whose_answer_is_lost_keeps_its_members(ch: ClickHouse) -> None:
    store = SnapshotStore(_LostAfterCommit(ch))
    version = await store.next_version(P, SEG)
    with pytest.raises(Unavailable):
        await store.write(P, SEG, version, *_ids("a", "b"), NOW, NOW)
    reader = SnapshotStore(ch)
    assert (await reader.get(P, SEG, version)).user_count == 2
    assert await _members(reader, version) == ["a", "b"]


async def test_a_snapshot_beaten_to_every_version_it_takes_is_aborted(ch: ClickHouse) -> None:
    store = SnapshotStore(_CommitsAtOnce(ch, times=100))
    version = await store.next_version(P, SEG)
    with pytest.raises(Aborted) as caught:
        await store.write(P, SEG, version, *_ids("a"), NOW, NOW)
    assert caught.value.reason == "SNAPSHOT_VERSION_CONTENDED"
    rows = await ch.query(
        "SELECT DISTINCT user_id FROM snapshot_members WHERE segment = {s:String}", {"s": SEG}
    )
    assert rows == [("z",)]  # only the winners' members remain
