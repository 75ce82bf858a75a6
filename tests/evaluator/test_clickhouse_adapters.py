"""Both ClickHouse adapters: binding, round trips, streaming, settings and error mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.clickhouse.http_adapter import HttpClickHouse
from libs.clickhouse.port import ClickHouse
from libs.common.errors import DeadlineExceeded, Internal, ResourceExhausted, Unavailable
from services.evaluator.adapters.schema import MIGRATIONS, applied_versions, migrate

from .conftest import TEST_MEMORY_BYTES

HOSTILE = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash\\",
    "tab\tnew\nline\rcr",
    "nul\x00byte",
    "ünïcødé 😀 中文",
    "'; DROP TABLE events; --",
    "{p:String}",
    "$$heredoc$$",
    "\\N",
    "",
]


async def test_string_params_round_trip(ch: ClickHouse) -> None:
    for value in HOSTILE:
        rows = await ch.query(
            "SELECT {v:String} AS v, length({w:String})", {"v": value, "w": value}
        )
        assert rows == [(value, len(value.encode()))]


async def test_array_params_and_inserted_values(ch: ClickHouse) -> None:
    await ch.insert(
        "list_members",
        ["project", "segment", "user_id", "sequence", "is_member"],
        [["p", "s", v, 1, True] for v in HOSTILE],
    )
    rows = await ch.query(
        "SELECT user_id FROM list_members WHERE project = {p:String} "
        "AND user_id IN {ids:Array(String)} ORDER BY user_id",
        {"p": "p", "ids": HOSTILE[:6]},
    )
    assert [r[0] for r in rows] == sorted(HOSTILE[:6])
    rows = await ch.query("SELECT {a:Array(String)}", {"a": HOSTILE})
    assert rows == [(HOSTILE,)]


async def test_typed_values_round_trip(ch: ClickHouse) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    await ch.insert(
        "events",
        [
            "project",
            "event_name",
            "user_id",
            "event_time",
            "event_id",
            "str_props",
            "num_props",
            "bool_props",
            "time_props",
        ],
        [
            [
                "p",
                "Charged 'x'",
                "u\\1",
                when,
                "e1",
                {"k'": "v\n"},
                {"n": 1.5},
                {"b": True},
                {"t": when},
            ]
        ],
    )
    rows = await ch.query(
        "SELECT event_name, user_id, event_time, str_props, num_props, bool_props, time_props "
        "FROM events WHERE project = {p:String} AND event_time >= {t:DateTime64(3, 'UTC')}",
        {"p": "p", "t": when},
    )
    assert rows == [("Charged 'x'", "u\\1", when, {"k'": "v\n"}, {"n": 1.5}, {"b": 1}, {"t": when})]


async def test_streaming_in_blocks(ch: ClickHouse) -> None:
    total = 0
    blocks = 0
    async for block in ch.query_stream(
        "SELECT toString(number) FROM numbers({n:UInt64})",
        {"n": 300_000},
        settings={"max_block_size": 10_000},
    ):
        blocks += 1
        total += len(block)
    assert total == 300_000
    assert blocks > 1


async def test_abandoned_stream_leaves_executor_usable(ch: ClickHouse) -> None:
    stream = ch.query_stream(
        "SELECT number FROM numbers(1000000)", settings={"max_block_size": 1000}
    )
    async for _block in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert await ch.query("SELECT 1") == [(1,)]


async def test_memory_settings_on_every_statement(ch: ClickHouse) -> None:
    rows = await ch.query(
        "SELECT getSetting('max_memory_usage'), getSetting('max_bytes_before_external_sort'), "
        "getSetting('max_bytes_before_external_group_by')"
    )
    assert rows == [(TEST_MEMORY_BYTES, TEST_MEMORY_BYTES // 2, TEST_MEMORY_BYTES // 2)]
    rows = await ch.query("SELECT getSetting('max_threads')", settings={"max_threads": 1})
    assert rows == [(1,)]


async def test_memory_limit_maps_to_resource_exhausted(ch: ClickHouse) -> None:
    with pytest.raises(ResourceExhausted):
        await ch.query(
            "SELECT number % 1000000 AS k, count() FROM numbers(5000000) GROUP BY k",
            settings={"max_memory_usage": 1_000_000, "max_bytes_before_external_group_by": 0},
        )
    # the cap applies to that statement only
    assert await ch.query("SELECT getSetting('max_memory_usage')") == [(TEST_MEMORY_BYTES,)]


async def test_timeout_maps_to_deadline_exceeded(ch: ClickHouse) -> None:
    with pytest.raises(DeadlineExceeded):
        await ch.query(
            "SELECT count() FROM numbers_mt(100000000000) WHERE sipHash64(number) = 0",
            settings={"max_execution_time": 0.2, "timeout_overflow_mode": "throw"},
        )


async def test_bad_sql_maps_to_internal(ch: ClickHouse) -> None:
    with pytest.raises(Internal):
        await ch.query("SELEC 1")
    with pytest.raises(Internal):
        await ch.query("SELECT * FROM no_such_table")


async def test_unreachable_server_maps_to_unavailable() -> None:
    with pytest.raises(Unavailable):
        await HttpClickHouse.open("http://127.0.0.1:9", "db", TEST_MEMORY_BYTES)


async def test_migrations_are_recorded_and_idempotent(ch: ClickHouse) -> None:
    assert await migrate(ch) == []
    assert {1, 2, 3, 4} <= await applied_versions(ch)
    tables = {
        r[0]
        for r in await ch.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    assert {
        "events",
        "event_ids",
        "profiles",
        "users",
        "list_members",
        "partner_deltas",
        "snapshots",
        "snapshot_members",
        "ingest_batches",
        "list_uploads",
        "list_upload_members",
        "schema_migrations",
    } <= tables


async def test_custom_lists_stored_before_versions_become_their_version_1(
    ch: ClickHouse,
) -> None:
    legacy = [
        ["p1", "projects/p1/segments/vip", "u1", 1, 1],
        ["p1", "projects/p1/segments/vip", "u2", 1, 1],
        ["p1", "projects/p1/segments/vip", "u2", 2, 0],  # left the list
        ["p1", "projects/p1/segments/partner", "u3", 1, 1],
    ]
    columns = ["project", "segment", "user_id", "sequence", "is_member"]
    await ch.insert("list_members", columns, legacy)
    await ch.insert(
        "partner_deltas",
        ["project", "segment", "delta_id", "sequence", "applied_at"],
        [["p1", "projects/p1/segments/partner", "d1", 1, datetime(2024, 1, 1, tzinfo=UTC)]],
    )
    for _ in range(2):  # an interrupted migration is simply run again
        for statement in MIGRATIONS[2].statements:
            await ch.command(statement)
    members = await ch.query(
        "SELECT segment, version, user_id FROM list_upload_members ORDER BY user_id"
    )
    assert members == [("projects/p1/segments/vip", 1, "u1")]
    uploads = await ch.query("SELECT segment, version, member_count FROM list_uploads")
    assert uploads == [("projects/p1/segments/vip", 1, 1)]
