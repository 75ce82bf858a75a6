"""Evaluator benchmark: `python -m bench.run [--users N --events N]`.

Phases, each in its own process so that each has its own peak memory (VmHWM):
1. generate: synthetic data inside chDB (bench/data.py) in bench/out/data.
2. queries: the complex segment compiled (one scan) vs. a plain filtered scan of the same
   columns vs. the naive one-subquery-per-clause SQL (bench/queries.py); medians of 11
   interleaved rounds.
3. grpc: `segments serve all` as a subprocess on that data; batch membership of 1,000 ids
   against a snapshot (p50/p99 over 300 calls), streaming the whole audience of All Users,
   and event ingest throughput; the server's peak memory is read from /proc after each.
Results are printed as JSON and written to docs/benchmarks.md (between the markers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DATA_DIR = OUT / "data"
DATABASE = "segments"


def peak_rss_mb(pid: int | str = "self") -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _open() -> Any:
    from libs.clickhouse.chdb_adapter import ChdbClickHouse

    return await ChdbClickHouse.open(DATA_DIR / "chdb", DATABASE, 8 * 1024**3)


async def phase_generate(users: int, events: int) -> dict[str, Any]:
    from bench.data import Sizes, generate
    from services.evaluator.adapters.schema import migrate

    ch = await _open()
    await migrate(ch)
    for table in ("events", "event_ids", "profiles", "users", "snapshots", "snapshot_members"):
        await ch.command(f"TRUNCATE TABLE IF EXISTS {table}")
    started = time.perf_counter()
    await generate(ch, Sizes(users=users, events=events))
    await ch.command("OPTIMIZE TABLE profiles FINAL")
    elapsed = time.perf_counter() - started
    rows = await ch.query("SELECT count() FROM events")
    return {"generate_s": elapsed, "events": int(rows[0][0]), "peak_rss_mb": peak_rss_mb()}


async def _interleaved(
    ch: Any, queries: dict[str, tuple[str, dict[str, Any]]], rounds: int = 11
) -> dict[str, tuple[float, int]]:
    """Median time and result of each query, run in turns (one of each per round, after a
    warm-up round) so that a passing load on the machine weighs on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in queries}
    results: dict[str, int] = {}
    for round_ in range(rounds + 1):
        for name, (sql, params) in queries.items():
            started = time.perf_counter()
            rows = await ch.query(sql, params)
            if round_:
                times[name].append(time.perf_counter() - started)
            results[name] = int(rows[0][0])
    return {name: (statistics.median(times[name]), results[name]) for name in queries}


async def phase_queries() -> dict[str, Any]:
    from bench.data import PROJECT
    from bench.queries import (
        AS_OF,
        EVENTS_SCAN_SQL,
        NAIVE_FOLDED_SQL,
        NAIVE_SQL,
        PLAIN_SCAN_SQL,
        complex_definition,
        naive_params,
        scan_params,
    )
    from services.evaluator.domain.compiler import EvaluationContext, compile_members

    ch = await _open()
    compiled = compile_members(complex_definition(), EvaluationContext(PROJECT, AS_OF, "UTC", {}))
    measured = await _interleaved(
        ch,
        {
            "plain": (PLAIN_SCAN_SQL, scan_params()),
            "events": (EVENTS_SCAN_SQL, scan_params()),
            "compiled": (f"SELECT count() FROM ({compiled.sql})", compiled.params),  # noqa: S608
            "naive": (NAIVE_SQL, naive_params()),
            "naive_folded": (NAIVE_FOLDED_SQL, naive_params()),
        },
    )
    plain_s, events_s = measured["plain"][0], measured["events"][0]
    (compiled_s, compiled_n), (naive_s, naive_n) = measured["compiled"], measured["naive"]
    folded_s, folded_n = measured["naive_folded"]
    return {
        "plain_scan_s": plain_s,
        "events_scan_s": events_s,
        "compiled_vs_events_scan": compiled_s / events_s,
        "compiled_s": compiled_s,
        "naive_s": naive_s,
        "compiled_vs_plain": compiled_s / plain_s,
        "naive_vs_compiled": naive_s / compiled_s,
        "naive_folded_s": folded_s,
        "naive_folded_vs_compiled": folded_s / compiled_s,
        "members_naive_folded": folded_n,
        "members_compiled": compiled_n,
        "members_naive": naive_n,
        "peak_rss_mb": peak_rss_mb(),
    }


def bench_key() -> str:
    """The admin key of the benchmark's server: random, kept in bench/out/data/bench.key."""
    import secrets

    path = DATA_DIR / "bench.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def auth() -> tuple[tuple[str, str]]:
    """Metadata of every benchmark call: the benchmark's admin key."""
    return (("authorization", f"Bearer {bench_key()}"),)


async def _projects(port: int) -> None:
    """The benchmark's projects exist (nothing creates a project on first use)."""
    import grpc

    from bench.data import PROJECT
    from segments.v1 import definition_service_pb2 as dpb
    from segments.v1 import definition_service_pb2_grpc as dgrpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = dgrpc.SegmentDefinitionServiceStub(channel)
        for project in (PROJECT, "bench-ingest"):
            try:
                await stub.CreateProject(
                    dpb.CreateProjectRequest(project_id=project), metadata=auth()
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise


class Server:
    """`segments serve all` on the benchmark data, as a subprocess."""

    def __init__(self, port: int) -> None:
        self.port = port
        env = dict(os.environ)
        env.update(
            SEGMENTS_DATA_DIR=str(DATA_DIR),
            SEGMENTS_PORT=str(port),
            SEGMENTS_LOG_LEVEL="WARNING",
            SEGMENTS_CLICKHOUSE_DATABASE=DATABASE,
            SEGMENTS_BOOTSTRAP_ADMIN_KEY=bench_key(),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "all", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )

    async def wait_ready(self) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        for _ in range(600):
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                    stub = health_pb2_grpc.HealthStub(channel)
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            except grpc.RpcError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def stop(self) -> float:
        peak = peak_rss_mb(self.proc.pid)
        self.proc.terminate()
        self.proc.wait(timeout=60)
        return peak


async def _segment(channel: Any) -> str:
    from bench.data import PROJECT
    from bench.queries import complex_definition
    from libs.model.definition_to_proto import definition_to_proto
    from segments.v1 import definition_service_pb2 as dpb
    from segments.v1 import definition_service_pb2_grpc as dgrpc
    from segments.v1 import segment_pb2

    stub = dgrpc.SegmentDefinitionServiceStub(channel)
    name = f"projects/{PROJECT}/segments/bench-complex"
    try:
        await stub.GetSegment(dpb.GetSegmentRequest(name=name), metadata=auth())
    except Exception:
        await stub.CreateSegment(
            dpb.CreateSegmentRequest(
                parent=f"projects/{PROJECT}",
                segment_id="bench-complex",
                segment=segment_pb2.Segment(
                    display_name="Bench complex",
                    definition=definition_to_proto(complex_definition()),
                ),
            ),
            metadata=auth(),
        )
    return name


async def scenario_membership(port: int) -> dict[str, Any]:
    import grpc

    from bench.data import PROJECT
    from bench.queries import AS_OF
    from libs.model.definition_proto import datetime_to_timestamp
    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as egrpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = egrpc.SegmentEvaluatorServiceStub(channel)
        segment = f"projects/{PROJECT}/segments/all-users"
        started = time.perf_counter()
        snap = await stub.CreateSnapshot(
            epb.CreateSnapshotRequest(parent=segment, as_of=datetime_to_timestamp(AS_OF)),
            metadata=auth(),
        )
        snapshot_s = time.perf_counter() - started
        latencies = []
        for i in range(300):
            ids = [f"u{(i * 7919 + j * 104729) % 1_500_000}" for j in range(1000)]
            started = time.perf_counter()
            reply = await stub.CheckMembership(
                epb.CheckMembershipRequest(segment=segment, user_ids=ids), metadata=auth()
            )
            latencies.append(time.perf_counter() - started)
            assert len(reply.is_member) == 1000
        latencies.sort()
        return {
            "snapshot_users": snap.user_count,
            "snapshot_s": snapshot_s,
            "membership_p50_ms": latencies[len(latencies) // 2] * 1000,
            "membership_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        }


async def scenario_stream(port: int) -> dict[str, Any]:
    import grpc

    from bench.data import PROJECT
    from bench.queries import AS_OF
    from libs.model.definition_proto import datetime_to_timestamp
    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as egrpc

    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 * 1024**2)]
    ) as channel:
        stub = egrpc.SegmentEvaluatorServiceStub(channel)
        complex_segment = await _segment(channel)
        started = time.perf_counter()
        total = 0
        request = epb.StreamAudienceRequest(
            segment=f"projects/{PROJECT}/segments/all-users",
            as_of=datetime_to_timestamp(AS_OF),
            chunk_size=50_000,
        )
        async for chunk in stub.StreamAudience(request, metadata=auth()):
            total += len(chunk.user_ids)
        stream_s = time.perf_counter() - started
        started = time.perf_counter()
        count = await stub.CountSegment(
            epb.CountSegmentRequest(segment=complex_segment, as_of=datetime_to_timestamp(AS_OF)),
            metadata=auth(),
        )
        count_s = time.perf_counter() - started
        return {
            "streamed_ids": total,
            "stream_s": stream_s,
            "complex_count_grpc_s": count_s,
            "complex_members": count.user_count,
        }


async def scenario_ingest(port: int, total: int = 300_000, batch: int = 5_000) -> dict[str, Any]:
    import grpc

    from libs.model.definition_proto import datetime_to_timestamp
    from segments.v1 import definition_model_pb2 as mpb
    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as egrpc

    base = time.time_ns()
    when = datetime_to_timestamp(datetime.now(tz=UTC))
    batches = [
        epb.IngestEventsRequest(
            parent="projects/bench-ingest",
            events=[
                epb.Event(
                    event_id=f"i{base}-{b}-{k}",
                    user_id=f"u{(b * batch + k) % 50_000}",
                    event_name="Charged" if k % 3 == 0 else "Product Viewed",
                    event_time=when,
                    properties={"amount": mpb.Value(number_value=k % 100)},
                )
                for k in range(batch)
            ],
        )
        for b in range(total // batch)
    ]

    async def requests() -> Any:
        for item in batches:
            yield item

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = egrpc.SegmentEvaluatorServiceStub(channel)
        started = time.perf_counter()
        reply = await stub.IngestEvents(requests(), metadata=auth())
        elapsed = time.perf_counter() - started
    return {
        "ingested": reply.accepted_count,
        "ingest_s": elapsed,
        "ingest_events_per_s": reply.accepted_count / elapsed,
    }


async def phase_grpc(port: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, scenario in (
        ("membership", scenario_membership),
        ("stream", scenario_stream),
        ("ingest", scenario_ingest),
    ):
        server = Server(port)
        try:
            await server.wait_ready()
            await _projects(port)
            results.update(await scenario(port))
        finally:
            results[f"{name}_server_peak_rss_mb"] = server.stop()
    return results


def _child(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.run", "--phase", phase]
    cmd += ["--users", str(args.users), "--events", str(args.events), "--port", str(args.port)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", choices=["all", "generate", "queries", "grpc"], default="all")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--port", type=int, default=50991)
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args()
    if args.phase == "generate":
        print(json.dumps(asyncio.run(phase_generate(args.users, args.events))))
        return
    if args.phase == "queries":
        print(json.dumps(asyncio.run(phase_queries())))
        return
    if args.phase == "grpc":
        print(json.dumps(asyncio.run(phase_grpc(args.port))))
        return
    results: dict[str, Any] = {
        "users": args.users,
        "events": args.events,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    if not args.skip_generate:
        results["generate"] = _child("generate", args)
    results["queries"] = _child("queries", args)
    results["grpc"] = _child("grpc", args)
    print(json.dumps(results, indent=2))
    from bench.report import write_report

    write_report(results, ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
