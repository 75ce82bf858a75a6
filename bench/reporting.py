"""Reporting benchmark: `python -m bench.reporting [--quick] [--skip-generate]`.

Phases, each in its own process so that each has its own peak memory (VmHWM):
1. generate: the evaluator benchmark's data (bench/data.py; 1M users and 10M events, or 100k
   and 1M with --quick) in bench/out/data, through `bench.run --phase generate`.
2. daily: in-process on chDB, as of the benchmark's instant:
   * one evaluation of the complex benchmark segment (bench/queries.py), median of 3;
   * the daily job's figures of 100 segments of mixed kinds (size, reachability per channel,
     sample: `compiler_shared` + `figures.shared_figures_query`, one ComputeSegmentFigures'
     work), median of 3, and its ratio to one evaluation (goal: at most 20);
   * back-filling 90 days of the complex segment as the back-fill does it today (one as-of
     evaluation with figures per day), and its ratio (goal: at most 10).
3. trend: `segments serve all` as a subprocess on that data; a small project's daily job run
   for 365 days through RunDailyJob, then 300 GetSegmentTrend calls of the 365 days (p50/p99;
   goal p99 < 20 ms), and the server's peak memory.
Results are printed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.run import DATA_DIR, ROOT, Server, _open, _projects, auth, peak_rss_mb

SEGMENTS = 100
BACKFILL_DAYS = 90
TREND_DAYS = 365
TREND_CALLS = 300


def mixed_segments() -> list[Any]:
    """100 past-behaviour definitions of mixed kinds over the benchmark's events."""
    from bench.data import CITIES, EVENT_NAMES
    from bench.queries import complex_definition
    from libs.model import definition as m

    op = m.ComparisonOperator
    found: list[Any] = [complex_definition()]
    windows = [m.LastWindow(m.RelativeOffset(n, m.TimeUnit.DAY)) for n in (1, 7, 14, 30, 90)] + [
        m.AllTimeWindow()
    ]
    i = 0
    while len(found) < SEGMENTS:
        name = EVENT_NAMES[i % len(EVENT_NAMES)]
        other = EVENT_NAMES[(i * 3 + 1) % len(EVENT_NAMES)]
        window = windows[i % len(windows)]
        city = m.UserProperty(
            m.PropertyFilter("city", m.Comparison(op.EQUALS, (CITIES[i % len(CITIES)],)))
        )
        kind = i % 6
        if kind == 0:
            cond: Any = m.DidEvent(m.EventSpec(name), window)
        elif kind == 1:
            agg = m.Aggregate(m.AggregateFunction.COUNT, op.GREATER_THAN_OR_EQUAL, (3.0,))
            cond = m.DidEvent(m.EventSpec(name), window, agg)
        elif kind == 2:
            cond = m.DidNotEvent(m.EventSpec(name), window)
        elif kind == 3:
            cond = m.FirstTime(m.EventSpec(name), window)
        elif kind == 4:
            cond = m.Inaction(m.EventSpec(name), m.EventSpec(other), window, None)
        else:
            agg = m.Aggregate(m.AggregateFunction.SUM, op.GREATER_THAN, (100.0,), "amount")
            cond = m.DidEvent(m.EventSpec("Charged"), window, agg)
        root = m.Node(condition=cond)
        if i % 2:
            root = m.Node(operator=m.BooleanOperator.AND, children=(root, m.Node(condition=city)))
        found.append(m.PastBehaviorQuery(root=root))
        i += 1
    return found


async def _median(ch: Any, sql: str, params: dict[str, Any], rounds: int = 3) -> float:
    times = []
    for round_ in range(rounds + 1):
        started = time.perf_counter()
        await ch.query(sql, params)
        if round_:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def phase_daily() -> dict[str, Any]:
    from bench.data import PROJECT
    from bench.queries import AS_OF, complex_definition
    from services.evaluator.domain.compiler import EvaluationContext, compile_members
    from services.evaluator.domain.compiler_days import DaysContext, compile_daily_figures
    from services.evaluator.domain.compiler_shared import compile_shared
    from services.evaluator.domain.figures import figures_query, shared_figures_query
    from services.reporting.domain.figures import SAMPLE_SIZE

    ch = await _open()
    ctx = EvaluationContext(PROJECT, AS_OF, "UTC", {})
    one = compile_members(complex_definition(), ctx)
    one_s = await _median(ch, f"SELECT count() FROM ({one.sql})", one.params)  # noqa: S608
    items = [(f"projects/{PROJECT}/segments/s{i}", d) for i, d in enumerate(mixed_segments())]
    shared = shared_figures_query(compile_shared(items, ctx), len(items), ctx)
    daily_s = await _median(ch, shared.sql, shared.params)
    # the back-fill: the 90 days before AS_OF's day in one query (compiler_days), the way
    # ComputeDailyFigures evaluates them; then day by day, the way it was done before
    days = DaysContext(PROJECT, "UTC", AS_OF.date() - timedelta(days=BACKFILL_DAYS), BACKFILL_DAYS)
    backfill = compile_daily_figures(complex_definition(), days, SAMPLE_SIZE)
    backfill_s = await _median(ch, backfill.sql, backfill.params)
    started = time.perf_counter()
    for back in range(BACKFILL_DAYS):
        day_ctx = EvaluationContext(PROJECT, AS_OF - timedelta(days=back), "UTC", {})
        members = compile_members(complex_definition(), day_ctx)
        query = figures_query(members, day_ctx)
        await ch.query(query.sql, query.params)
    day_by_day_s = time.perf_counter() - started
    return {
        "one_evaluation_s": one_s,
        "daily_100_segments_s": daily_s,
        "daily_vs_one": daily_s / one_s,
        "backfill_90_days_s": backfill_s,
        "backfill_vs_one": backfill_s / one_s,
        "backfill_day_by_day_s": day_by_day_s,
        "backfill_day_by_day_vs_one": day_by_day_s / one_s,
        "peak_rss_mb": peak_rss_mb(),
    }


async def phase_trend(port: int) -> dict[str, Any]:
    import grpc

    from libs.model.definition_proto import date_to_proto, datetime_to_timestamp
    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import definition_service_pb2 as dpb
    from segments.v1 import definition_service_pb2_grpc as dgrpc
    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as egrpc
    from segments.v1 import reporting_service_pb2 as rpb
    from segments.v1 import reporting_service_pb2_grpc as rgrpc
    from segments.v1 import segment_pb2

    project = "bench-trend"
    last = date(2026, 10, 31)
    first = last - timedelta(days=TREND_DAYS - 1)
    os.environ["SEGMENTS_REPORTING_SCHEDULER"] = "false"  # only the runs measured here
    server = Server(port)
    peak = float("nan")
    try:
        await server.wait_ready()
        await _projects(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            definitions = dgrpc.SegmentDefinitionServiceStub(channel)
            with_key = auth()
            try:
                await definitions.CreateProject(
                    dpb.CreateProjectRequest(project_id=project), metadata=with_key
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
            node = dm.Node(
                did_event=dm.DidEventCondition(
                    event=dm.EventSpec(event_name="Visit"),
                    window=dm.TimeWindow(all_time=dm.AllTime()),
                )
            )
            segment = f"projects/{project}/segments/visitors"
            try:
                await definitions.CreateSegment(
                    dpb.CreateSegmentRequest(
                        parent=f"projects/{project}", segment_id="visitors",
                        segment=segment_pb2.Segment(
                            display_name="Visitors",
                            definition=dm.Definition(
                                past_behavior=dm.PastBehaviorQuery(root=node)
                            ),
                        ),
                    ),
                    metadata=with_key,
                )  # fmt: skip
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
            evaluator = egrpc.SegmentEvaluatorServiceStub(channel)
            events = [
                epb.Event(
                    event_id=f"v{i}", user_id=f"t{i}", event_name="Visit",
                    event_time=datetime_to_timestamp(
                        datetime(first.year, first.month, first.day, tzinfo=UTC)
                        + timedelta(days=i * 7)
                    ),
                )
                for i in range(TREND_DAYS // 7)
            ]  # fmt: skip

            async def batches() -> Any:
                yield epb.IngestEventsRequest(parent=f"projects/{project}", events=events)

            await evaluator.IngestEvents(batches(), metadata=with_key)
            reporting = rgrpc.SegmentReportingServiceStub(channel)
            started = time.perf_counter()
            for i in range(TREND_DAYS):
                await reporting.RunDailyJob(
                    rpb.RunDailyJobRequest(
                        parent=f"projects/{project}", date=date_to_proto(first + timedelta(days=i))
                    ),
                    metadata=with_key,
                )
            runs_s = time.perf_counter() - started
            request = rpb.GetSegmentTrendRequest(
                segment=segment, start_date=date_to_proto(first), end_date=date_to_proto(last)
            )
            latencies = []
            for _ in range(TREND_CALLS):
                started = time.perf_counter()
                reply = await reporting.GetSegmentTrend(request, metadata=with_key)
                latencies.append(time.perf_counter() - started)
            assert len(reply.points) == TREND_DAYS and all(p.computed for p in reply.points)
    finally:
        peak = server.stop()
    latencies.sort()
    return {
        "daily_runs_365_s": runs_s,
        "trend_365_p50_ms": 1000 * latencies[len(latencies) // 2],
        "trend_365_p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "server_peak_rss_mb": peak,
    }


def _child(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.reporting", "--phase", phase, "--port", str(args.port)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-3:]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", choices=["all", "daily", "trend"], default="all")
    parser.add_argument("--quick", action="store_true", help="100k users and 1M events")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--port", type=int, default=50992)
    args = parser.parse_args()
    if args.phase == "daily":
        print(json.dumps(asyncio.run(phase_daily())))
        return
    if args.phase == "trend":
        print(json.dumps(asyncio.run(phase_trend(args.port))))
        return
    users, events = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    results: dict[str, Any] = {"users": users, "events": events, "data": str(DATA_DIR)}
    if not args.skip_generate:
        cmd = [sys.executable, "-m", "bench.run", "--phase", "generate"]
        cmd += ["--users", str(users), "--events", str(events)]
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
        results["generate"] = json.loads(out.stdout.strip().splitlines()[-1])
    results["daily"] = _child("daily", args)
    print(json.dumps(results), flush=True)
    results["trend"] = _child("trend", args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
