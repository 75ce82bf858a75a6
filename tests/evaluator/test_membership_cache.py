"""CheckMembership against snapshots through the in-process member cache, on both adapters:
the same answers as the ClickHouse query, new versions, pruned versions, NOT_FOUND, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.clickhouse.port import ClickHouse, Params, Row, Settings
from libs.common.errors import NotFound
from libs.model.definition import Definition
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.adapters.snapshot_store import SnapshotStore
from services.evaluator.application import Evaluator
from services.evaluator.grpc_api import EvaluatorServicer

from .support import StaticSegments, did, event, stream

P = "projects/p1"
SEG = "projects/p1/segments/buyers"
EMPTY = "projects/p1/segments/nobody"
OTHER_PROJECT = "projects/p2/segments/buyers"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ODD_USER = "u'\"\\ ; -- ü😀"
CTX: Any = None  # the servicer does not use its context
DEFINITIONS: dict[str, Definition] = {SEG: did("Buy"), EMPTY: did("Never")}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingClickHouse:
    """Passes everything to the real executor, counting the statements that contain `marker`."""

    def __init__(self, ch: ClickHouse, marker: str) -> None:
        self._ch = ch
        self._marker = marker
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def query(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> list[Row]:
        if self._marker in sql:
            self.count += 1
        return await self._ch.query(sql, params, settings)


def make(
    ch: Any,
    *,
    cached_members: int = 1_000_000,
    ttl: float = 60.0,
    clock: Clock | None = None,
    definitions: dict[str, Definition] | None = None,
) -> tuple[EvaluatorServicer, Evaluator]:
    """An evaluator (one process's worth of caches) on the shared database."""
    ev = Evaluator(ch, StaticSegments(definitions or DEFINITIONS))
    ev.snapshots = SnapshotStore(ch, 3, cached_members, ttl, clock or Clock())
    return EvaluatorServicer(ev), ev


async def buy(api: EvaluatorServicer, *users: str) -> None:
    events = [event(f"e-{u}", u, "Buy", T0) for u in users]
    await api.IngestEvents(stream([pb.IngestEventsRequest(parent=P, events=events)]), CTX)


async def check(
    api: EvaluatorServicer,
    ids: Sequence[str],
    version: int = 0,
    segment: str = SEG,
    realtime: bool = False,
) -> tuple[list[bool], list[str], int]:
    request = pb.CheckMembershipRequest(
        segment=segment, user_ids=list(ids), snapshot_version=version, realtime=realtime
    )
    reply = await api.CheckMembership(request, CTX)
    return list(reply.is_member), list(reply.member_user_ids), reply.snapshot_version


async def snapshot(api: EvaluatorServicer, segment: str = SEG) -> int:
    return (await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=segment), CTX)).version


async def test_cached_answers_equal_the_query_answers(ch: ClickHouse) -> None:
    cached, cached_ev = make(ch)
    queried, queried_ev = make(ch, cached_members=0)
    await buy(cached, "u1", "u2", ODD_USER)
    assert await snapshot(cached) == 1
    ids = ["u2", "nobody", ODD_USER, "u2", "", "U1", "u1 ", "u1"]
    expected = ([True, False, True, True, False, False, False, True], ["u2", ODD_USER, "u1"], 1)
    assert await check(cached, ids) == expected
    assert await check(queried, ids) == expected
    assert await check(cached, ids, version=1) == expected
    assert cached_ev.snapshots.cache.cached_versions("p1", SEG) == [1]
    assert queried_ev.snapshots.cache.cached_versions("p1", SEG) == []
    # an empty snapshot has no members, not even the empty id
    assert await snapshot(cached, EMPTY) == 1
    assert await check(cached, ["", "u1"], segment=EMPTY) == ([False, False], [], 1)
    assert await check(queried, ["", "u1"], segment=EMPTY) == ([False, False], [], 1)


async def test_a_version_committed_here_is_used_at_once(ch: ClickHouse) -> None:
    api, ev = make(ch, ttl=3600.0)  # the clock never moves: only the commit can tell
    await buy(api, "u1")
    await snapshot(api)
    assert await check(api, ["u1", "u2"]) == ([True, False], ["u1"], 1)
    await buy(api, "u2")
    assert await snapshot(api) == 2
    assert await check(api, ["u1", "u2"]) == ([True, True], ["u1", "u2"], 2)
    assert await check(api, ["u1", "u2"], version=1) == ([True, False], ["u1"], 1)
    assert ev.snapshots.cache.cached_versions("p1", SEG) == [1, 2]


async def test_another_process_version_is_used_once_the_check_ttl_passed(ch: ClickHouse) -> None:
    clock = Clock()
    reader, _ = make(ch, ttl=5.0, clock=clock)
    writer, _ = make(ch, ttl=5.0, clock=clock)
    await buy(writer, "u1")
    await snapshot(writer)
    assert await check(reader, ["u1", "u2"]) == ([True, False], ["u1"], 1)
    await buy(writer, "u2")
    assert await snapshot(writer) == 2
    # within the TTL the reader still answers from version 1, a whole committed version
    assert await check(reader, ["u1", "u2"]) == ([True, False], ["u1"], 1)
    # a version asked for by number is read at once
    assert await check(reader, ["u1", "u2"], version=2) == ([True, True], ["u1", "u2"], 2)
    clock.now += 5.0
    assert await check(reader, ["u1", "u2"]) == ([True, True], ["u1", "u2"], 2)


async def test_no_ttl_reads_the_latest_version_on_every_check(ch: ClickHouse) -> None:
    reader, _ = make(ch, ttl=0.0)
    writer, _ = make(ch)
    await buy(writer, "u1")
    await snapshot(writer)
    assert await check(reader, ["u1"]) == ([True], ["u1"], 1)
    await snapshot(writer)
    assert await check(reader, ["u1"]) == ([True], ["u1"], 2)


async def test_pruned_versions_are_not_found_and_leave_the_cache(ch: ClickHouse) -> None:
    api, ev = make(ch)
    await buy(api, "u1")
    await snapshot(api)
    assert await check(api, ["u1"], version=1) == ([True], ["u1"], 1)
    assert ev.snapshots.cache.cached_versions("p1", SEG) == [1]
    for _ in range(3):
        await snapshot(api)  # keeps the newest three: 2, 3, 4
    with pytest.raises(NotFound):
        await check(api, ["u1"], version=1)
    assert ev.snapshots.cache.cached_versions("p1", SEG) == []
    assert await check(api, ["u1"]) == ([True], ["u1"], 4)


async def test_unknown_segment_version_and_other_project_are_not_found(ch: ClickHouse) -> None:
    definitions = {**DEFINITIONS, "projects/p2/segments/known": did("Buy")}
    api, _ = make(ch, definitions=definitions)
    with pytest.raises(NotFound):
        await check(api, ["u1"], segment="projects/p1/segments/missing")
    await buy(api, "u1")
    await snapshot(api)
    with pytest.raises(NotFound):
        await check(api, ["u1"], version=99)
    with pytest.raises(NotFound):
        await check(api, ["u1"], version=-1)
    # the same segment id in another project: neither its snapshots nor its definition
    for version in (0, 1):
        with pytest.raises(NotFound):
            await check(api, ["u1"], version=version, segment=OTHER_PROJECT)
    with pytest.raises(NotFound):
        await check(api, ["u1"], segment=OTHER_PROJECT, realtime=True)
    # a segment of p2 without snapshots is evaluated now, on p2's events only
    known = "projects/p2/segments/known"
    assert await check(api, ["u1"], segment=known) == ([False], [], 0)
    with pytest.raises(NotFound):
        await check(api, ["u1"], version=1, segment=known)


async def test_concurrent_checks_share_one_load(ch: ClickHouse) -> None:
    counting = CountingClickHouse(ch, "arrayStringConcat")
    api, _ = make(counting)
    await buy(api, "u1", "u2")
    await snapshot(api)
    replies = await asyncio.gather(*(check(api, ["u1", "u3"]) for _ in range(5)))
    assert replies == [([True, False], ["u1"], 1)] * 5
    assert await check(api, ["u2"]) == ([True], ["u2"], 1)
    assert counting.count == 1


async def test_versions_over_the_bound_are_queried_and_the_least_recent_leaves(
    ch: ClickHouse,
) -> None:
    api, ev = make(ch, cached_members=2)
    await buy(api, "u1", "u2", "u3")
    await snapshot(api)
    assert await check(api, ["u1", "u4"]) == ([True, False], ["u1"], 1)
    assert ev.snapshots.cache.cached_versions("p1", SEG) == []
    assert ev.snapshots.cache.held == 0

    small, small_ev = make(ch, cached_members=3)
    await ch.insert(
        "snapshot_members",
        ["project", "segment", "version", "user_id"],
        [["p1", EMPTY, 5, "a"], ["p1", EMPTY, 5, "b"]],
    )
    await ch.insert(
        "snapshots",
        ["project", "segment", "version", "as_of", "user_count", "create_time", "deleted",
         "revision"],
        [["p1", EMPTY, 5, T0, 2, T0, 0, 1]],
    )  # fmt: skip
    assert await check(small, ["a", "u1"], segment=EMPTY) == ([True, False], ["a"], 5)
    assert small_ev.snapshots.cache.held == 2
    # 3 members: with the 2 held it is over the bound, so the least recently used one leaves
    assert await check(small, ["u1"]) == ([True], ["u1"], 1)
    assert small_ev.snapshots.cache.cached_versions("p1", SEG) == [1]
    assert small_ev.snapshots.cache.cached_versions("p1", EMPTY) == []
    assert small_ev.snapshots.cache.held == 3
    await ch.insert(
        "snapshot_members",
        ["project", "segment", "version", "user_id"],
        [["p1", "projects/p1/segments/two", 1, "x"], ["p1", "projects/p1/segments/two", 1, "y"]],
    )
    await ch.insert(
        "snapshots",
        ["project", "segment", "version", "as_of", "user_count", "create_time", "deleted",
         "revision"],
        [["p1", "projects/p1/segments/two", 1, T0, 2, T0, 0, 1]],
    )  # fmt: skip
    two = "projects/p1/segments/two"
    assert await check(small, ["x", "a"], segment=two) == ([True, False], ["x"], 1)
    assert small_ev.snapshots.cache.cached_versions("p1", two) == [1]
    assert small_ev.snapshots.cache.cached_versions("p1", SEG) == []
    assert small_ev.snapshots.cache.held == 2
    assert await check(small, ["a", "b"], segment=EMPTY) == ([True, True], ["a", "b"], 5)


async def test_ids_with_a_newline_are_answered_by_query(ch: ClickHouse) -> None:
    api, ev = make(ch)
    await ch.insert(
        "snapshot_members",
        ["project", "segment", "version", "user_id"],
        [["p1", SEG, 1, "a\nb"], ["p1", SEG, 1, "c"]],
    )
    await ch.insert(
        "snapshots",
        ["project", "segment", "version", "as_of", "user_count", "create_time", "deleted",
         "revision"],
        [["p1", SEG, 1, T0, 2, T0, 0, 1]],
    )  # fmt: skip
    ids = ["a\nb", "a", "b", "c"]
    assert await check(api, ids) == ([True, False, False, True], ["a\nb", "c"], 1)
    assert await check(api, ids) == ([True, False, False, True], ["a\nb", "c"], 1)
    assert ev.snapshots.cache.cached_versions("p1", SEG) == []


async def test_a_deleted_revision_hides_a_version_as_final_does(ch: ClickHouse) -> None:
    api, _ = make(ch, ttl=0.0)
    rows = [["p1", SEG, v, T0, 1, T0, 0, 1] for v in range(1, 10)]
    rows += [["p1", SEG, v, T0, 1, T0, 1, 2] for v in range(2, 10)]  # all but version 1 deleted
    await ch.insert(
        "snapshot_members",
        ["project", "segment", "version", "user_id"],
        [["p1", SEG, v, f"u{v}"] for v in range(1, 10)],
    )
    await ch.insert(
        "snapshots",
        ["project", "segment", "version", "as_of", "user_count", "create_time", "deleted",
         "revision"],
        rows,
    )  # fmt: skip
    assert await check(api, ["u1", "u9"]) == ([True, False], ["u1"], 1)
    with pytest.raises(NotFound):
        await check(api, ["u9"], version=9)


async def test_a_version_pruned_elsewhere_is_never_answered_partially(ch: ClickHouse) -> None:
    clock = Clock()
    cached, _ = make(ch, ttl=60.0, clock=clock)
    queried, _ = make(ch, cached_members=0, ttl=60.0, clock=clock)
    writer, _ = make(ch)
    await buy(writer, "u1")
    await snapshot(writer)
    assert await check(cached, ["u1"], version=1) == ([True], ["u1"], 1)
    assert await check(queried, ["u1"], version=1) == ([True], ["u1"], 1)
    for _ in range(3):
        await snapshot(writer)  # prunes version 1: marked deleted, its member rows deleted
    # by query, what was remembered about version 1 is read again: it is gone
    with pytest.raises(NotFound):
        await check(queried, ["u1"], version=1)
    # from the member cache, the whole version 1 still answers until the check TTL passes
    assert await check(cached, ["u1"], version=1) == ([True], ["u1"], 1)
    clock.now += 60.0
    with pytest.raises(NotFound):
        await check(cached, ["u1"], version=1)
