"""Access-check overhead: `python -m bench.access [--quick]`.

Runs all four services in this process twice per round, once with the access check (API key,
role, project, audit of writes, limits) and once with a pass-through interceptor in its place,
and measures event ingest (client-streaming, audited once per call) and batch membership
(unary, one cached decision per call) through gRPC. Each round runs both, in alternating
order, so that a busy machine affects both alike; the medians of each are compared as ratios
(checked / unchecked).
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
from dataclasses import replace
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


async def _round(checked: bool, events: int, calls: int, root: Path) -> tuple[float, float]:
    """(events per second, milliseconds per membership call) of one server."""
    # the bootstrap installs the check under this name: swapped for the baseline only
    namespace = vars(bootstrap)
    original = namespace["AccessInterceptor"]
    if not checked:
        namespace["AccessInterceptor"] = _PassThrough
    directory = root / uuid.uuid4().hex[:8]
    config = all_in_one_config(
        replace(
            Config(),
            data_dir=directory,
            bootstrap_admin_key=KEY,
            clickhouse_database=f"bench_access_{uuid.uuid4().hex[:8]}",
            log_level="WARNING",
        ),
        "127.0.0.1",
        0,
    )
    server = RunningServer(build_services("all", config), config)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            await dgrpc.SegmentDefinitionServiceStub(channel).CreateProject(
                dpb.CreateProjectRequest(project_id="bench"), metadata=AUTH
            )
            when = datetime_to_timestamp(datetime.now(UTC))
            batches = [
                epb.IngestEventsRequest(
                    parent="projects/bench",
                    events=[
                        epb.Event(
                            event_id=f"{b}-{k}",
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

            stub = egrpc.SegmentEvaluatorServiceStub(channel)
            started = time.perf_counter()
            reply = await stub.IngestEvents(requests(), metadata=AUTH)
            ingest_rate = reply.accepted_count / (time.perf_counter() - started)
            request = epb.CheckMembershipRequest(
                segment="projects/bench/segments/all-users", user_ids=["u1", "u2", "nobody"]
            )
            await stub.CheckMembership(request, metadata=AUTH)  # warm
            started = time.perf_counter()
            for _ in range(calls):
                await stub.CheckMembership(request, metadata=AUTH)
            membership_ms = (time.perf_counter() - started) / calls * 1000
    finally:
        await server.stop()
        namespace["AccessInterceptor"] = original
    return ingest_rate, membership_ms


async def measure(rounds: int, events: int, calls: int) -> dict[str, Any]:
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as root:
        for i in range(rounds):
            for checked in (True, False) if i % 2 == 0 else (False, True):
                results[checked].append(await _round(checked, events, calls, Path(root)))
    ingest = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
    membership = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
    return {
        "rounds": rounds,
        "events": events,
        "membership_calls": calls,
        "ingest_events_per_s_checked": round(ingest[True]),
        "ingest_events_per_s_unchecked": round(ingest[False]),
        "ingest_checked_vs_unchecked": round(ingest[True] / ingest[False], 3),
        "membership_ms_checked": round(membership[True], 3),
        "membership_ms_unchecked": round(membership[False], 3),
        "membership_checked_vs_unchecked": round(membership[True] / membership[False], 3),
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
