"""Event ingest through the servicer, on both ClickHouse adapters: validation errors with their
stream index, idempotence, typed storage, pipelined batches, and the columnar insert encoding."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.binding import format_bind_value
from google.protobuf import timestamp_pb2

from libs.clickhouse import encode_insert
from libs.clickhouse.common import format_strings
from libs.clickhouse.port import ClickHouse
from libs.common.errors import InvalidArgument, Unavailable
from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.adapters.event_store import EventStore
from services.evaluator.application import Evaluator
from services.evaluator.domain.records import Event, EventBatch
from services.evaluator.grpc_api import EvaluatorServicer

from .support import StaticSegments, event, stream
from .test_clickhouse_adapters import HOSTILE

P = "projects/p1"
T0 = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
CTX: Any = None
_EVENT_COLUMNS = ["project", "event_name", "user_id", "event_time", "event_id",
                  "str_props", "num_props", "bool_props", "time_props"]  # fmt: skip


@pytest.fixture
def api(ch: ClickHouse) -> EvaluatorServicer:
    return EvaluatorServicer(Evaluator(ch, StaticSegments()))


async def ingest(api: EvaluatorServicer, *batches: Sequence[pb.Event]) -> pb.IngestEventsResponse:
    requests = [pb.IngestEventsRequest(parent=P, events=list(b)) for b in batches]
    return await api.IngestEvents(stream(requests), CTX)


async def stored(ch: ClickHouse) -> list[tuple[Any, ...]]:
    return await ch.query(
        "SELECT event_id, user_id, event_name, event_time, str_props, num_props, bool_props, "
        "time_props FROM events WHERE project = 'p1' ORDER BY event_id"
    )


async def test_errors_carry_their_index_in_the_whole_stream(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    good = [event(f"e{i}", f"u{i}", "Buy", T0) for i in range(9)]
    first = [good[0], event("", "u", "Buy", T0), good[1]]
    second = [good[2], good[3], pb.Event(event_id="x", user_id="u", event_name="Buy")]
    third = [event("y", "", "Buy", T0), *good[4:9], event("z", "u", " ", T0)]
    got = await ingest(api, first, second, third)
    assert (got.accepted_count, got.duplicate_count, got.rejected_count) == (9, 0, 4)
    assert [(e.index, e.field) for e in got.errors] == [
        (1, "event_id"), (5, "event_time"), (6, "user_id"), (12, "event_name"),
    ]  # fmt: skip
    assert [r[0] for r in await stored(ch)] == sorted(f"e{i}" for i in range(9))


async def test_a_repeated_id_is_stored_once_and_counted_as_a_duplicate(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    later = T0 + timedelta(hours=1)
    batch = [event("e1", "u1", "Buy", T0), event("e1", "u1", "Refund", later),
             event("e2", "u2", "Buy", later), event("e2", "u2", "Buy", later)]  # fmt: skip
    got = await ingest(api, batch, [event("e1", "u1", "Buy", T0), event("e3", "u3", "Buy", T0)])
    assert (got.accepted_count, got.duplicate_count) == (3, 3)
    rows = await stored(ch)
    assert [(r[0], r[2]) for r in rows] == [("e1", "Buy"), ("e2", "Buy"), ("e3", "Buy")]
    again = await ingest(api, batch)
    assert (again.accepted_count, again.duplicate_count) == (0, 4)
    assert len(await stored(ch)) == 3


async def test_users_are_seen_at_their_earliest_event_of_the_batch(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    later = T0 + timedelta(hours=1)
    await ingest(api, [event("e1", "u1", "Buy", later), event("e2", "u1", "Buy", T0),
                       event("e3", "u2", "Buy", later)])  # fmt: skip
    rows = await ch.query(
        "SELECT user_id, min(seen_at) FROM users WHERE project = 'p1' GROUP BY user_id "
        "ORDER BY user_id"
    )
    assert rows == [("u1", T0), ("u2", later)]


async def test_properties_are_stored_in_the_map_of_their_type(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)
    msg = event("e1", HOSTILE[7], HOSTILE[3], T0, label="ünïcødé 😀", amount=-1.5, vip=True)
    msg.properties["since"].time_value.CopyFrom(datetime_to_timestamp(when))
    msg.properties["note: $x"].string_value = "it's \\ tab\tnew\nline"
    got = await ingest(api, [msg, event("e2", "u", "Empty", T0)])
    assert got.accepted_count == 2
    rows = await stored(ch)
    assert rows[0] == (
        "e1", HOSTILE[7], HOSTILE[3], T0,
        {"label": "ünïcødé 😀", "note: $x": "it's \\ tab\tnew\nline"}, {"amount": -1.5}, {"vip": 1},
        {"since": when.replace(microsecond=678000)},  # DateTime64(3) keeps milliseconds
    )  # fmt: skip
    assert rows[1][4:] == ({}, {}, {}, {})


async def test_values_a_timestamp_or_value_cannot_hold_are_event_errors(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    far = pb.Event(event_id="far", user_id="u", event_name="Buy",
                   event_time=timestamp_pb2.Timestamp(seconds=10**12))  # fmt: skip
    bad_nanos = pb.Event(event_id="nanos", user_id="u", event_name="Buy",
                         event_time=timestamp_pb2.Timestamp(seconds=1, nanos=-1))  # fmt: skip
    early = event("early", "u", "Buy", datetime(1960, 1, 1, tzinfo=UTC))
    unset = event("unset", "u", "Buy", T0)
    unset.properties["empty"].SetInParent()
    inf = event("inf", "u", "Buy", T0, big=math.inf)
    nan = event("nan", "u", "Buy", T0, odd=math.nan)
    prop_time = event("ptime", "u", "Buy", T0)
    prop_time.properties["at"].time_value.seconds = -(10**13)
    got = await ingest(api, [far, bad_nanos, early, unset, inf, nan, prop_time,
                             event("ok", "u", "Buy", T0)])  # fmt: skip
    assert (got.accepted_count, got.rejected_count) == (1, 7)
    assert [(e.index, e.field) for e in got.errors] == [
        (0, "event_time"), (1, "event_time"), (2, "event_time"), (3, "properties['empty']"),
        (4, "properties['big']"), (5, "properties['odd']"), (6, "properties['at']"),
    ]  # fmt: skip
    assert [r[0] for r in await stored(ch)] == ["ok"]


async def test_a_failing_message_still_lets_the_batch_before_it_finish(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    requests = [
        pb.IngestEventsRequest(parent=P, events=[event("e1", "u1", "Buy", T0)]),
        pb.IngestEventsRequest(parent="projects/other", events=[event("e2", "u2", "Buy", T0)]),
    ]
    with pytest.raises(InvalidArgument):
        await api.IngestEvents(stream(requests), CTX)
    assert [r[0] for r in await stored(ch)] == ["e1"]


async def test_events_stored_while_the_next_message_is_read(ch: ClickHouse) -> None:
    """Many batches through one stream: each is stored once, in order, whatever overlaps."""
    api = EvaluatorServicer(Evaluator(ch, StaticSegments()))
    batches = [[event(f"b{b}-{k}", f"u{k % 7}", "Buy", T0 + timedelta(seconds=b))
                for k in range(50)] + [event(f"b{max(b - 1, 0)}-0", "u0", "Buy", T0)]
               for b in range(12)]  # fmt: skip
    got = await ingest(api, *batches)
    assert (got.accepted_count, got.duplicate_count, got.rejected_count) == (600, 12, 0)
    assert len(await stored(ch)) == 600


@pytest.mark.parametrize("cap", [1, 60, 50_000])
async def test_messages_gathered_while_a_batch_is_stored_keep_counts_and_indexes(
    ch: ClickHouse, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    """Messages that arrive while a batch is stored are stored together (up to the cap):
    whatever the grouping, every event is stored once and errors keep their stream index."""
    import services.evaluator.grpc_api as grpc_api

    monkeypatch.setattr(grpc_api, "COALESCE_EVENTS", cap)
    api = EvaluatorServicer(Evaluator(ch, StaticSegments()))
    batches = [[event(f"c{b}-{k}", f"u{k}", "Buy", T0) for k in range(20)] for b in range(15)]
    batches[7][3] = event("", "u", "Buy", T0)  # stream index 7 * 20 + 3
    batches[9].append(event("c2-0", "u0", "Buy", T0))  # a repeat of an earlier message's id
    got = await ingest(api, *batches)
    assert (got.accepted_count, got.duplicate_count, got.rejected_count) == (299, 1, 1)
    assert [(e.index, e.field) for e in got.errors] == [(143, "event_id")]
    assert len(await stored(ch)) == 299


async def test_store_prepares_batches_apart_from_the_engine(ch: ClickHouse) -> None:
    store = EventStore(ch)
    batch = EventBatch()
    for i, user in enumerate(["a", "b", "a"]):
        batch.append(Event(f"e{i}", user, "Buy", T0 - timedelta(minutes=i), {"n": float(i)}))
    batch.append(Event("e0", "c", "Buy", T0, {}))
    prepared = store.prepare("p1", batch)
    assert (len(prepared.batch), prepared.received, prepared.users.row_count) == (3, 4, 2)
    assert await store.add_events("p1", prepared.batch, prepared.received) == (3, 1)
    assert await store.add_events("p1", batch.select([3, 1])) == (0, 2)
    rows = await ch.query("SELECT user_id, min(seen_at) FROM users GROUP BY user_id ORDER BY 1")
    assert rows == [("a", T0 - timedelta(minutes=2)), ("b", T0 - timedelta(minutes=1))]


class _Counted:
    """The real engine, counting the inserts into each table; inserts into `gated` wait for
    `gate` (a batch held while it is being stored)."""

    def __init__(self, ch: ClickHouse, gated: str = "") -> None:
        self._ch = ch
        self.inserts: dict[str, int] = {}
        self.gated = gated
        self.gate = asyncio.Event()
        self.held = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def insert_encoded(self, table: str, data: Any, settings: Any = None) -> None:
        self.inserts[table] = self.inserts.get(table, 0) + 1
        if table == self.gated:
            self.held.set()
            await self.gate.wait()
        await self._ch.insert_encoded(table, data, settings)


def _batch(*events: tuple[str, str]) -> EventBatch:
    batch = EventBatch()
    for event_id, user_id in events:
        batch.append(Event(event_id, user_id, "Buy", T0, {}))
    return batch


async def test_calls_waiting_for_the_project_are_stored_together_each_told_its_counts(
    ch: ClickHouse,
) -> None:
    counted = _Counted(ch, gated="events")
    store = EventStore(counted)
    first = asyncio.create_task(store.add_events("p1", _batch(("a0", "u1"), ("a1", "u1"))))
    await counted.held.wait()  # the first call's events are being stored
    calls = [
        _batch(("x", "b"), ("b1", "b")),
        _batch(("a0", "c"), ("c1", "c")),  # a0: stored by the first call
        _batch(("x", "d"), ("d1", "d"), ("d1", "d")),  # x: the call before's in this group
    ]
    waiting = [asyncio.create_task(store.add_events("p1", b)) for b in calls]
    await asyncio.sleep(0.05)
    counted.gate.set()
    assert await first == (2, 0)
    assert await asyncio.gather(*waiting) == [(2, 0), (1, 1), (1, 2)]
    assert counted.inserts["events"] == 2  # the three waiting calls in one insert
    rows = await ch.query("SELECT event_id, user_id FROM events ORDER BY event_id")
    assert rows == [("a0", "u1"), ("a1", "u1"), ("b1", "b"), ("c1", "c"), ("d1", "d"),
                    ("x", "b")]  # fmt: skip
    assert await store.add_events("p1", calls[2]) == (0, 3)


def test_joined_batches_keep_each_users_earliest_event() -> None:
    early, late = EventBatch(), EventBatch()
    late.append(Event("l1", "u1", "Buy", T0, {}))
    late.append(Event("l2", "u2", "Buy", T0, {}))
    early.append(Event("e1", "u2", "Buy", T0 - timedelta(hours=1), {"n": 1.0}))
    early.append(Event("e2", "u1", "Buy", T0 + timedelta(hours=1), {}))
    joined = EventBatch.concat([late, early])
    assert joined.event_ids == ["l1", "l2", "e1", "e2"]
    assert joined.num_props[2] == {"n": 1.0}
    assert joined.first_seen == {"u1": 0, "u2": 2}
    assert EventBatch.concat([]).event_ids == []


async def test_a_group_that_fails_fails_each_of_its_calls_and_is_stored_once_resent(
    ch: ClickHouse,
) -> None:
    store = EventStore(_CrashAfter(ch, "events"))
    batches = [_batch(("e1", "u1")), _batch(("e2", "u2"), ("e1", "u1"))]
    outcomes = await asyncio.gather(
        *(store.add_events("p1", b) for b in batches), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [Unavailable, Unavailable]
    again = EventStore(ch)
    assert [await again.add_events("p1", b) for b in batches] == [(0, 1), (0, 2)]
    rows = await ch.query("SELECT event_id, count() FROM events GROUP BY 1 ORDER BY 1")
    assert rows == [("e1", 1), ("e2", 1)]


async def test_a_call_cancelled_while_it_waits_stores_nothing(ch: ClickHouse) -> None:
    counted = _Counted(ch, gated="events")
    store = EventStore(counted)
    first = asyncio.create_task(store.add_events("p1", _batch(("e1", "u1"))))
    await counted.held.wait()
    cancelled = asyncio.create_task(store.add_events("p1", _batch(("e2", "u2"))))
    kept = asyncio.create_task(store.add_events("p1", _batch(("e3", "u3"))))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    counted.gate.set()
    assert (await first, await kept) == ((1, 0), (1, 0))
    assert cancelled.cancelled()
    rows = await ch.query("SELECT event_id FROM events ORDER BY 1")
    assert rows == [("e1",), ("e3",)]


async def test_encoded_inserts_round_trip_hostile_values(ch: ClickHouse) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    other_zone = when.astimezone(ZoneInfo("Asia/Kolkata"))
    n = len(HOSTILE)
    data = encode_insert(
        _EVENT_COLUMNS,
        [["p"] * n, HOSTILE, HOSTILE[::-1], [when] * (n - 1) + [other_zone],
         [f"e{i}" for i in range(n)], [{v: v} for v in HOSTILE],
         [{"x": float(i)} for i in range(n)], [{"b": i % 2 == 0} for i in range(n)],
         [{} for _ in range(n - 1)] + [{"t": when}]],
    )  # fmt: skip
    await ch.insert_encoded("events", data)
    rows = await ch.query(
        "SELECT event_name, user_id, event_time, str_props, num_props, bool_props, time_props "
        "FROM events WHERE project = 'p' ORDER BY event_id"
    )
    millis = when.replace(microsecond=123000)
    expected = [
        (HOSTILE[i], HOSTILE[::-1][i], millis, {HOSTILE[i]: HOSTILE[i]}, {"x": float(i)},
         {"b": int(i % 2 == 0)}, {"t": millis} if i == n - 1 else {})
        for i in range(n)
    ]  # fmt: skip
    assert sorted(rows) == sorted(expected)


async def test_insert_encoding_refuses_what_it_cannot_spell(ch: ClickHouse) -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidArgument, match="finite"):
            encode_insert(["project", "event_id", "num_props"], [["p"], ["e"], [{"x": bad}]])
    with pytest.raises(InvalidArgument, match="timezone"):
        encode_insert(["event_time"], [[datetime(2024, 1, 1)]])
    with pytest.raises(InvalidArgument, match="identifier"):
        encode_insert(["event id"], [["e"]])
    empty = encode_insert(["project", "event_id"], [[], []])
    assert empty.row_count == 0
    await ch.insert_encoded("event_ids", empty)  # nothing to send
    assert await ch.query("SELECT count() FROM event_ids") == [(0,)]


def test_bound_strings_match_clickhouse_connect() -> None:
    for value in HOSTILE:
        assert format_strings(value) == format_bind_value(value)
    assert format_strings(HOSTILE) == format_bind_value(HOSTILE)


async def test_large_messages_keep_indexes_across_validation_slices(
    api: EvaluatorServicer,
) -> None:
    big = [event(f"e{i}", f"u{i}", "Buy", T0) for i in range(1200)]
    big[1100] = event("", "u", "Buy", T0)
    got = await ingest(api, [event("first", "u", "Buy", T0)], big)
    assert (got.accepted_count, got.rejected_count) == (1200, 1)
    assert [(e.index, e.field) for e in got.errors] == [(1101, "event_id")]


class _CrashAfter:
    """The real engine, but the connection drops right after the insert into `table`, as a
    crash between ingest's writes would."""

    def __init__(self, ch: ClickHouse, table: str) -> None:
        self._ch = ch
        self.table = table

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def insert_encoded(self, table: str, data: Any, settings: Any = None) -> None:
        await self._ch.insert_encoded(table, data, settings)
        if table == self.table:
            raise Unavailable("connection lost")


@pytest.mark.parametrize("table", ["event_ids", "events", "users"])
async def test_a_batch_resent_after_a_crash_between_writes_is_stored_once(
    ch: ClickHouse, table: str
) -> None:
    batch = EventBatch()
    batch.append(Event("e1", "u1", "Buy", T0, {"n": 1.0}))
    batch.append(Event("e2", "u2", "View", T0 + timedelta(seconds=1), {}))
    with pytest.raises(Unavailable):
        await EventStore(_CrashAfter(ch, table)).add_events("p1", batch)
    store = EventStore(ch)
    accepted = 2 if table == "event_ids" else 0  # cut before or after the events
    assert await store.add_events("p1", batch) == (accepted, 2 - accepted)
    assert await store.add_events("p1", batch) == (0, 2)
    rows = await ch.query("SELECT event_id, count() FROM events GROUP BY 1 ORDER BY 1")
    assert rows == [("e1", 1), ("e2", 1)]
    users = await ch.query("SELECT user_id, min(seen_at) FROM users GROUP BY 1 ORDER BY 1")
    assert users == [("u1", T0), ("u2", T0 + timedelta(seconds=1))]


async def test_a_crash_cut_id_resent_with_other_content_keeps_the_resent_event(
    ch: ClickHouse,
) -> None:
    first = EventBatch()
    first.append(Event("e1", "u1", "Buy", T0, {}))
    with pytest.raises(Unavailable):
        await EventStore(_CrashAfter(ch, "event_ids")).add_events("p1", first)
    other = EventBatch()
    other.append(Event("e1", "u9", "View", T0 + timedelta(hours=1), {}))
    store = EventStore(ch)
    assert await store.add_events("p1", other) == (1, 0)
    assert await store.add_events("p1", other) == (0, 1)
    assert await store.add_events("p1", first) == (0, 1)  # the id is taken now
    rows = await ch.query("SELECT event_id, user_id, event_name FROM events")
    assert rows == [("e1", "u9", "View")]
    assert await ch.query("SELECT DISTINCT user_id FROM users") == [("u9",)]


async def test_ids_recorded_before_keys_were_count_as_stored(ch: ClickHouse) -> None:
    await ch.insert("event_ids", ["project", "event_id"], [["p1", "old"]])
    batch = EventBatch()
    batch.append(Event("old", "u1", "Buy", T0, {}))
    batch.append(Event("new", "u1", "Buy", T0, {}))
    assert await EventStore(ch).add_events("p1", batch) == (1, 1)
    assert await ch.query("SELECT event_id FROM events") == [("new",)]
