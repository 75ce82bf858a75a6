"""Access-check overhead: `python -m bench.access [--quick]`.

Runs all four services in this process twice at once, one with the access check (API key,
role, project, audit of writes, limits) and one with a pass-through interceptor in its place,
and measures event ingest (client-streaming, audited once per call; rounds alternate which
goes first) and batch membership (unary, one cached decision per call; calls alternate
between the two) through gRPC, so that a busy machine affects both alike. The medians are
compared as ratios (checked / unchecked).
Quick mode: 2 rounds, 50,000 events, 100 membership calls; full: 5 rounds, 300,000, 500.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from libs.common import server as bootstrap
from libs.common.config import Config
from libs.common.logging import configure_logging
from libs.common.server import RunningServer
from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dgrpc
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import evaluator_service_pb2_grpc as egrpc
from services.cli import all_in_one_config, build_services

KEY = "bench-access-" + uuid.uuid4().hex + uuid.uuid4().hex
AUTH = (("authorization", f"Bearer {KEY}"),)


class _PassThrough(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """The access check's place, doing nothing (the baseline)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        return await continuation(handler_call_details)


@dataclass
class _Suite:
    server: RunningServer
    channel: grpc.aio.Channel

    @property
    def evaluator(self) -> egrpc.SegmentEvaluatorServiceAsyncStub:
        return egrpc.SegmentEvaluatorServiceStub(self.channel)


async def _start(checked: bool, root: Path) -> _Suite:
    """All four services in this process; `checked` False: the pass-through instead of the
    access check."""
    # the bootstrap installs the check under this name: swapped for the baseline only
    namespace = vars(bootstrap)
    original = namespace["AccessInterceptor"]
    if not checked:
        namespace["AccessInterceptor"] = _PassThrough
    config = all_in_one_config(
        replace(
            Config(),
            data_dir=root / ("checked" if checked else "unchecked"),
            bootstrap_admin_key=KEY,
            clickhouse_database=f"bench_access_{uuid.uuid4().hex[:8]}",
            log_level="WARNING",
        ),
        "127.0.0.1",
        0,
    )
    server = RunningServer(build_services("all", config), config)
    try:
        await server.start()
    finally:
        namespace["AccessInterceptor"] = original
    channel = grpc.aio.insecure_channel(server.address)
    await dgrpc.SegmentDefinitionServiceStub(channel).CreateProject(
        dpb.CreateProjectRequest(project_id="bench"), metadata=AUTH
    )
    return _Suite(server, channel)


async def _ingest(suite: _Suite, round_: int, events: int) -> float:
    """Events per second of one IngestEvents call of `events` new events."""
    when = datetime_to_timestamp(datetime.now(UTC))
    batches = [
        epb.IngestEventsRequest(
            parent="projects/bench",
            events=[
                epb.Event(
                    event_id=f"{round_}-{b}-{k}",
                    user_id=f"u{k % 5000}",
                    event_name="Viewed",
                    event_time=when,
                )
                for k in range(5000)
            ],
        )
        for b in range(events // 5000)
    ]

    async def requests() -> AsyncIterator[epb.IngestEventsRequest]:
        for batch in batches:
            yield batch

    started = time.perf_counter()
    reply = await suite.evaluator.IngestEvents(requests(), metadata=AUTH)
    return float(reply.accepted_count) / (time.perf_counter() - started)


async def _membership(suite: _Suite) -> float:
    """Milliseconds of one CheckMembership call."""
    request = epb.CheckMembershipRequest(
        segment="projects/bench/segments/all-users", user_ids=["u1", "u2", "nobody"]
    )
    started = time.perf_counter()
    await suite.evaluator.CheckMembership(request, metadata=AUTH)
    return (time.perf_counter() - started) * 1000


async def measure(rounds: int, events: int, calls: int) -> dict[str, Any]:
    """Both servers run at once; their calls alternate, so that load hits both alike."""
    ingest: dict[bool, list[float]] = {True: [], False: []}
    membership: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as root:
        suites = {checked: await _start(checked, Path(root)) for checked in (True, False)}
        try:
            for i in range(rounds):
                for checked in (True, False) if i % 2 == 0 else (False, True):
                    ingest[checked].append(await _ingest(suites[checked], i, events))
            for checked in (True, False):
                await _membership(suites[checked])  # warm
            for _ in range(calls):
                for checked in (True, False):
                    membership[checked].append(await _membership(suites[checked]))
        finally:
            for suite in suites.values():
                await suite.channel.close(None)
                await suite.server.stop()
    rate = {k: statistics.median(v) for k, v in ingest.items()}
    latency = {k: statistics.median(v) for k, v in membership.items()}
    return {
        "rounds": rounds,
        "events": events,
        "membership_calls": calls,
        "ingest_events_per_s_checked": round(rate[True]),
        "ingest_events_per_s_unchecked": round(rate[False]),
        "ingest_checked_vs_unchecked": round(rate[True] / rate[False], 3),
        "membership_ms_checked": round(latency[True], 3),
        "membership_ms_unchecked": round(latency[False], 3),
        "membership_checked_vs_unchecked": round(latency[True] / latency[False], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds, small sizes")
    args = parser.parse_args()
    sizes = (2, 50_000, 100) if args.quick else (5, 300_000, 500)
    configure_logging("WARNING")
    print(json.dumps(asyncio.run(measure(*sizes)), indent=2))


if __name__ == "__main__":
    main()
