"""Traces: one request's spans across the evaluator and the definition service (an in-memory
exporter), the trace and request ids on its log lines, and nothing recorded while tracing is
off."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common import tracing
from libs.common.logging import configure_logging
from segments.v1 import evaluator_service_pb2 as pb
from tests.evaluator.grpc_stack import (
    TIMEOUT,
    Stack,
    create,
    did,
    ingest,
    new_project,
    past,
    running_stack,
)
from tests.evaluator.support import event
from tests.support.chdb_http import ChdbHttpServer

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.enable(spans, batch=False, service_name="segments-test")
    try:
        yield spans
    finally:
        tracing.disable()


@pytest.fixture(scope="module")
async def stack(
    exporter: InMemorySpanExporter,
    tmp_path_factory: pytest.TempPathFactory,
    chdb_engine: ChdbEngine,
    chdb_http: ChdbHttpServer,
) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("tracing")
    async with running_stack("http", data_dir, chdb_engine, chdb_http) as s:
        yield s


async def _finished(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    for _ in range(500):
        for span in exporter.get_finished_spans():
            if span.name == name:
                return span
        await asyncio.sleep(0.01)
    raise AssertionError(f"no span {name} ended")


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_request_across_two_services(
    stack: Stack, exporter: InMemorySpanExporter
) -> None:
    await new_project(stack, "traced")
    segment = await create(stack, "traced", "buyers", past(did("Charged")))
    await ingest(stack, "traced", [event("e1", "u1", "Charged", T0)])
    exporter.clear()
    logs = io.StringIO()
    configure_logging("INFO", stream=logs)
    try:
        response = await stack.evaluator.CountSegment(
            pb.CountSegmentRequest(segment=segment),
            timeout=TIMEOUT,
            metadata=(
                ("x-request-id", "trace-me-1"),
                ("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"),
            ),
        )
    finally:
        configure_logging("INFO")
    assert response.user_count == 1

    spans = [
        s for s in exporter.get_finished_spans() if _hex(s.context.trace_id, 32) == CALLER_TRACE
    ]
    by_id = {s.context.span_id: s for s in spans}
    servers = {s.name: s for s in spans if s.kind is SpanKind.SERVER}
    count = servers["segments.v1.SegmentEvaluatorService/CountSegment"]
    # The evaluator's span continues the caller's trace, and names the request.
    assert _parent(count) == int(CALLER_SPAN, 16)
    assert count.attributes is not None
    assert count.attributes["segments.request_id"] == "trace-me-1"
    assert count.attributes["rpc.grpc.status_code"] == 0
    assert count.resource.attributes["service.name"] == "segments-test"

    def under(span: ReadableSpan, root: ReadableSpan) -> bool:
        parent = _parent(span)
        while parent is not None:
            if parent == root.context.span_id:
                return True
            parent = _parent(by_id[parent]) if parent in by_id else None
        return False

    # The peer calls to the definition service: a CLIENT span in the evaluator, a SERVER span
    # in the definition service as its child, SQL statements under that.
    definition_servers = [
        s for s in spans if s.kind is SpanKind.SERVER and "SegmentDefinitionService" in s.name
    ]
    assert definition_servers, [s.name for s in spans]
    for server in definition_servers:
        client = by_id[_parent(server)]
        assert client.kind is SpanKind.CLIENT and client.name == server.name
        assert under(client, count)
    sql = [s for s in spans if s.name.startswith("sql ") and s.attributes]
    assert any(
        s.attributes is not None and s.attributes.get("db.system") == "sqlite" for s in sql
    ), [s.name for s in spans]
    assert all(any(under(s, d) for d in definition_servers) for s in sql)
    # The ClickHouse statement of the count, under the evaluator's span.
    queries = [s for s in spans if s.name == "clickhouse query"]
    assert queries and all(under(q, count) for q in queries)
    assert all(q.attributes and q.attributes["db.system"] == "clickhouse" for q in queries)

    # Log lines of the call carry its request id and trace id.
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    rpc_lines = [line for line in lines if line.get("event") == "rpc"]
    count_line = next(line for line in rpc_lines if line["method"].endswith("/CountSegment"))
    assert count_line["request_id"] == "trace-me-1"
    assert count_line["trace_id"] == CALLER_TRACE
    peer_lines = [line for line in rpc_lines if "SegmentDefinitionService" in line["method"]]
    assert peer_lines and all(line["trace_id"] == CALLER_TRACE for line in peer_lines)
    assert all(line["request_id"] == "trace-me-1" for line in peer_lines)


async def test_failed_call_span_is_marked(stack: Stack, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    with pytest.raises(Exception):  # noqa: B017 - NOT_FOUND, checked on the span
        await stack.evaluator.CountSegment(
            pb.CountSegmentRequest(segment="projects/traced/segments/nobody"), timeout=TIMEOUT
        )
    # An aborted call's status can reach the caller before the server ends its span.
    count = await _finished(exporter, "segments.v1.SegmentEvaluatorService/CountSegment")
    assert count.attributes is not None
    assert count.attributes["rpc.grpc.status_code"] == 5  # NOT_FOUND
    assert not count.status.is_ok


def test_tracing_off_records_nothing(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tracing.enabled()  # the module's exporter
    monkeypatch.setattr(tracing, "_tracer", None)
    assert not tracing.enabled()
    assert tracing.start_span("anything") is None
    assert tracing.inject() == ()
    parent = (("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"),)
    assert tracing.extract_parent(parent) is None
    with tracing.span("anything") as nothing:
        assert nothing is None
