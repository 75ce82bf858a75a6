"""StreamAudienceTable through gRPC on both ClickHouse adapters: a segment's members with
profile fields as Arrow record batches (text and kind per field, blocked flag), and its
refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pyarrow as pa
import pytest

from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.audience_messages import table_chunks

from .grpc_stack import TIMEOUT, Stack, ingest, new_project, rich, stack_fixture
from .support import event

SEEN = datetime(2026, 5, 4, 3, 2, 1, 500000, tzinfo=UTC)
TEXT, NUMBER, BOOLEAN, TIME, MISSING = 1, 2, 3, 4, 0


stack = stack_fixture("table")


def _value(v: object) -> dm.Value:
    if isinstance(v, bool):
        return dm.Value(bool_value=v)
    if isinstance(v, int | float):
        return dm.Value(number_value=float(v))
    if isinstance(v, datetime):
        return dm.Value(time_value=datetime_to_timestamp(v))
    return dm.Value(string_value=str(v))


async def _table(
    s: Stack, segment: str, fields: list[str], chunk_size: int = 0
) -> tuple[list[pb.StreamAudienceTableResponse], pa.Table | None]:
    messages = [
        m
        async for m in s.evaluator.StreamAudienceTable(
            pb.StreamAudienceTableRequest(segment=segment, fields=fields, chunk_size=chunk_size),
            timeout=TIMEOUT,
        )
    ]
    batches = [b for m in messages[1:] for b in pa.ipc.open_stream(m.arrow_record_batch)]
    return messages, pa.Table.from_batches(batches) if batches else None


async def test_members_with_their_fields_kinds_and_blocked_flags(stack: Stack) -> None:
    p = "table"
    await new_project(stack, p)
    await stack.evaluator.UpsertProfiles(pb.UpsertProfilesRequest(parent=f"projects/{p}", profiles=[
        pb.Profile(user_id="b", email="b@example.com", display_name="Bee", blocked=True,
                   properties={"n": _value(-5), "s": _value("-5"), "f": _value(True),
                               "t": _value(SEEN)}),
        pb.Profile(user_id="a", phone="+14155550100", properties={"n": _value(2.5)}),
    ]), timeout=TIMEOUT)  # fmt: skip
    await ingest(stack, p, [event("e1", "c", "Open", SEEN)])  # a user with no profile
    fields = ["email", "user_id", "phone", "display_name", "n", "s", "f", "t", "none"]
    messages, table = await _table(stack, f"projects/{p}/segments/all-users", fields, 2)
    assert messages[0].total_count == 3 and messages[0].HasField("as_of")
    assert [len(pa.ipc.open_stream(m.arrow_record_batch).read_all()) for m in messages[1:]] == [
        2,
        1,
    ]
    assert table is not None
    assert table.column_names == ["user_id", "blocked"] + [
        f"{c}{i}" for i in range(len(fields)) for c in "fk"]  # fmt: skip
    rows = table.to_pylist()
    assert [r["user_id"] for r in rows] == ["a", "b", "c"]  # user id order
    assert [r["blocked"] for r in rows] == [0, 1, 0]
    got = [[(r[f"f{i}"], r[f"k{i}"]) for i in range(len(fields))] for r in rows]
    assert got[0] == [("", MISSING), ("a", TEXT), ("+14155550100", TEXT), ("", MISSING),
                      ("2.5", NUMBER), ("", MISSING), ("", MISSING), ("", MISSING),
                      ("", MISSING)]  # fmt: skip
    assert got[1] == [("b@example.com", TEXT), ("b", TEXT), ("", MISSING), ("Bee", TEXT),
                      ("-5", NUMBER), ("-5", TEXT), ("true", BOOLEAN),
                      ("2026-05-04T03:02:01.500Z", TIME), ("", MISSING)]  # fmt: skip
    assert got[2][1] == ("c", TEXT) and all(
        k == MISSING for i, (_, k) in enumerate(got[2]) if i != 1
    )


async def test_profiles_are_read_as_they_were_at_the_instant(stack: Stack) -> None:
    p = "table-asof"
    await new_project(stack, p)
    before, after = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    for when, city, blocked in ((before, "Paris", False), (after, "Rome", True)):
        await stack.evaluator.UpsertProfiles(pb.UpsertProfilesRequest(
            parent=f"projects/{p}", profiles=[pb.Profile(
                user_id="u1", blocked=blocked, properties={"city": _value(city)},
                update_time=datetime_to_timestamp(when))]), timeout=TIMEOUT)  # fmt: skip
    segment = f"projects/{p}/segments/all-users"
    for as_of, expected in ((datetime(2026, 2, 1, tzinfo=UTC), ("Paris", 0)),
                            (datetime(2026, 4, 1, tzinfo=UTC), ("Rome", 1))):  # fmt: skip
        messages = [m async for m in stack.evaluator.StreamAudienceTable(
            pb.StreamAudienceTableRequest(segment=segment, fields=["city"],
                                          as_of=datetime_to_timestamp(as_of)),
            timeout=TIMEOUT)]  # fmt: skip
        row = pa.ipc.open_stream(messages[1].arrow_record_batch).read_all().to_pylist()[0]
        assert (row["f0"], row["blocked"]) == expected


async def test_an_empty_segment_sends_its_count_only(stack: Stack) -> None:
    await new_project(stack, "empty-table")
    messages, table = await _table(stack, "projects/empty-table/segments/all-users", ["email"])
    assert [m.total_count for m in messages] == [0] and table is None


async def test_refusals(stack: Stack) -> None:
    segment = "projects/table/segments/all-users"
    for fields, path in (([], "fields"), (["email", "email"], "fields[1]"),
                         (["bad\nname"], "fields[0]")):  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _table(stack, segment, fields)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert rich(caught.value).violations[0][0] == path
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _table(stack, segment, ["email"], chunk_size=-1)
    assert rich(caught.value).violations[0][0] == "chunk_size"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _table(stack, "projects/table/segments/nope", ["email"])
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_big_batch_is_split_into_messages_under_the_limit() -> None:
    batch = pa.record_batch({"user_id": pa.array([f"user-{i:04d}" for i in range(1000)])})
    messages = list(table_chunks(batch, max_bytes=4000))
    assert len(messages) > 2
    assert all(len(m.arrow_record_batch) <= 4000 for m in messages)
    back = [b for m in messages for b in pa.ipc.open_stream(m.arrow_record_batch)]
    assert pa.Table.from_batches(back).column("user_id").to_pylist() == batch.column(0).to_pylist()
