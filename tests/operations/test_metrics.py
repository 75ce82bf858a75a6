"""The Prometheus endpoint: scraped after calls through real gRPC, on both ClickHouse adapters."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from libs.common.config import Config, ConfigError
from libs.common.server import RunningServer, ServerError
from segments.v1 import evaluator_service_pb2 as pb
from tests.evaluator.grpc_stack import (
    TIMEOUT,
    Stack,
    count,
    create,
    did,
    ingest,
    new_project,
    past,
    stack_fixture,
)
from tests.evaluator.support import event

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


stack = stack_fixture("metrics", metrics_port=0)


def _scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        assert response.status == 200
        text: str = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


async def scrape(server: RunningServer) -> tuple[str, Samples]:
    assert server.metrics is not None
    return await asyncio.to_thread(_scrape, server.metrics.port)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def rpc(method: str, **labels: str) -> dict[str, str]:
    return {
        "grpc_service": "segments.v1.SegmentEvaluatorService",
        "grpc_method": method,
        **labels,
    }


async def test_scrape_after_calls(stack: Stack) -> None:
    kind = "http" if stack.evaluator_server.config.clickhouse_url else "chdb"
    _, before = await scrape(stack.evaluator_server)
    project = f"metrics-{kind}"
    await new_project(stack, project)
    segment = await create(stack, project, "buyers", past(did("Charged")))
    result = await ingest(
        stack,
        project,
        [event("e1", "u1", "Charged", T0), event("e2", "u2", "Charged", T0)],
        [event("e1", "u1", "Charged", T0), pb.Event(event_id="bad", user_id="u3")],
    )
    assert (result.accepted_count, result.duplicate_count, result.rejected_count) == (2, 1, 1)
    assert (await count(stack, segment))[0] == 2
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stack.evaluator.CountSegment(
            pb.CountSegmentRequest(segment=f"projects/{project}/segments/nobody"),
            timeout=TIMEOUT,
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND

    # An aborted call's status can reach the caller just before the server counts it.
    for _ in range(500):
        text, after = await scrape(stack.evaluator_server)
        handled = "grpc_server_handled_total"
        labels = rpc("CountSegment", grpc_code="NOT_FOUND")
        if value(after, handled, **labels) > value(before, handled, **labels):
            break
        await asyncio.sleep(0.01)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("grpc_server_started_total", **rpc("CountSegment")) == 2
    assert delta("grpc_server_handled_total", **rpc("CountSegment", grpc_code="OK")) == 1
    assert delta("grpc_server_handled_total", **rpc("CountSegment", grpc_code="NOT_FOUND")) == 1
    assert delta("grpc_server_handling_seconds_count", **rpc("CountSegment")) == 2
    assert delta("grpc_server_handled_total", **rpc("IngestEvents", grpc_type="client_stream")) == 1
    assert delta("grpc_server_msg_received_total", **rpc("IngestEvents")) == 2
    assert delta("segments_events_ingested_total", outcome="accepted") == 2
    assert delta("segments_events_ingested_total", outcome="duplicate") == 1
    assert delta("segments_events_ingested_total", outcome="rejected") == 1
    assert delta("segments_clickhouse_query_seconds_count", adapter=kind, operation="query") > 0
    assert delta("segments_sql_transaction_seconds_count", store="definition") > 0
    # Pools are read at scrape time: the definition store's is there, with its states.
    assert ("segments_sql_pool_size", frozenset({("store", "definition")})) in after
    assert 'segments_sql_pool_connections{state="checked_out",store="definition"}' in text
    assert "process_resident_memory_bytes" in text
    # Every metric the services record into is exposed, recorded into yet or not.
    for name in (
        "segments_live_entries_total",
        "segments_live_entry_latency_seconds",
        "segments_live_timers_pending",
        "segments_export_jobs_running",
        "segments_export_rows_written_total",
        "segments_daily_run_last_success_timestamp_seconds",
        "segments_clickhouse_query_failures",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


async def test_clickhouse_failures_are_counted(stack: Stack) -> None:
    kind = "http" if stack.evaluator_server.config.clickhouse_url else "chdb"
    evaluator = stack.evaluator_server.services[0]
    ch = evaluator._ch  # type: ignore[attr-defined]
    _, before = await scrape(stack.evaluator_server)
    with pytest.raises(Exception):  # noqa: B017 - the adapter's mapped error; counted below
        await ch.query("SELECT no_such_column FROM no_such_table")
    _, after = await scrape(stack.evaluator_server)
    failures = "segments_clickhouse_query_failures_total"
    assert value(after, failures, adapter=kind, operation="query") == (
        value(before, failures, adapter=kind, operation="query") + 1
    )


def _busy_port() -> socket.socket:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


async def test_metrics_port_in_use_stops_the_start(tmp_path: Path) -> None:
    holder = _busy_port()
    try:
        port = holder.getsockname()[1]
        config = replace(Config(), data_dir=tmp_path, metrics_port=port)
        server = RunningServer([], config, host="127.0.0.1", port=0)
        with pytest.raises(ServerError, match="SEGMENTS_METRICS_PORT"):
            await server.start()
        assert server.metrics is None
    finally:
        holder.close()


def test_metrics_off_by_default() -> None:
    assert Config.from_env({}).metrics_port is None
    assert Config.from_env({"SEGMENTS_METRICS_PORT": "9464"}).metrics_port == 9464


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("SEGMENTS_METRICS_PORT", "http", "must be an integer"),
        ("SEGMENTS_METRICS_PORT", "70000", "must be 0 to 65535"),
        ("SEGMENTS_TRACE_SAMPLE_RATIO", "2", "must be 0 to 1"),
        ("SEGMENTS_TRACE_SAMPLE_RATIO", "half", "must be a number"),
    ],
)
def test_bad_settings_are_refused(key: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env({key: raw})
