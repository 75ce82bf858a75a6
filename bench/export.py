"""Export benchmark: `python -m bench.export [--quick]`.

Synthetic profiles are generated inside chDB (bench/out/export/data): a large project
(1,000,000 users; 200,000 with --quick) and a small one (100,000; 20,000 with --quick), each
user with display name, e-mail, phone, city and age, 1 in 97 blocked. Then, each step in a
process of its own:

1. engine: the same rows and columns as the export (the All Users segment as of one instant,
   joined with the profiles, in user id order) written to a file by the engine itself with
   `FORMAT CSVWithNames`; the median of 3 runs.
2. through gRPC: `segments serve all` (definition, evaluator, and an export service that runs
   no jobs: SEGMENTS_EXPORT_WORKERS=0) and `segments serve export` (the worker) as separate
   processes; a FILE job of the 6 columns is created and polled every 20 ms until it
   succeeds. Measured: the time from CreateExportJob to SUCCEEDED, the longest gap between
   two progress updates (the job's update_time), and the export process's peak resident memory
   (VmHWM), for the large and the small project (a fresh export process each).
3. cancel: a fresh export process starts the large export; once rows are written,
   CancelExportJob is called: the time until it answers with the job CANCELLED, and whether
   a partial file is left.

Ratios are from one run; results go to docs/benchmarks.md (between the export markers).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from bench.run import ROOT, Server

OUT = ROOT / "bench" / "out" / "export"
DATA_DIR = OUT / "data"
DATABASE = "segments"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
FIELDS = ["user_id", "display_name", "email", "phone", "city", "age"]
BEGIN = "<!-- export-results:begin -->"
END = "<!-- export-results:end -->"


def bench_key() -> str:
    """The admin key of the benchmark's servers: random, kept in bench/out/export/bench.key."""
    import secrets

    path = OUT / "bench.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def auth() -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {bench_key()}"),)


def sizes(quick: bool) -> dict[str, int]:
    return {"bench-large": 200_000, "bench-small": 20_000} if quick else {
        "bench-large": 1_000_000, "bench-small": 100_000}  # fmt: skip


async def _open() -> Any:
    from libs.clickhouse.chdb_adapter import ChdbClickHouse

    return await ChdbClickHouse.open(DATA_DIR / "chdb", DATABASE, 8 * 1024**3)


async def phase_generate(quick: bool) -> dict[str, Any]:
    from services.evaluator.adapters.schema import migrate

    ch = await _open()
    await migrate(ch)
    for table in ("profiles", "users"):
        await ch.command(f"TRUNCATE TABLE IF EXISTS {table}")
    started = time.perf_counter()
    for project, users in sizes(quick).items():
        params = {"project": project, "users": users}
        await ch.command(
            "INSERT INTO profiles (project, user_id, email, phone, display_name, test_user,"
            " blocked, channel_address, channel_unsubscribed, channel_blocked, str_props,"
            " num_props, bool_props, time_props, update_time)"
            " SELECT {project:String}, concat('u', toString(number)),"
            " concat('u', toString(number), '@example.com'),"
            " concat('+1555', leftPad(toString(number), 7, '0')),"
            " concat('User ', toString(number)), 0, toUInt8(number % 97 = 0), map(), map(), map(),"
            " map('city', ['New York', 'Boston', 'Chicago', 'Austin'][1 + number % 4]),"
            " map('age', toFloat64(18 + cityHash64(number) % 60)), map(), map(),"
            " toDateTime64('2026-01-01 00:00:00', 3, 'UTC')"
            " FROM numbers({users:UInt64})",
            params,
        )
        await ch.command(
            "INSERT INTO users (project, user_id, seen_at) SELECT {project:String},"
            " concat('u', toString(number)), toDateTime64(0, 3, 'UTC')"
            " FROM numbers({users:UInt64})",
            params,
        )
    await ch.command("OPTIMIZE TABLE profiles FINAL")
    return {"generate_s": time.perf_counter() - started}


def baseline_sql(project: str) -> tuple[str, dict[str, Any]]:
    """The export's rows and columns as the engine writes them itself."""
    from libs.model.definition import SystemDefinition, SystemSegmentKind
    from services.evaluator.domain.compiler import EvaluationContext, compile_members

    members = compile_members(
        SystemDefinition(SystemSegmentKind.ALL_USERS), EvaluationContext(project, AS_OF, "UTC")
    )
    params = dict(members.params)
    params.update(bp=project, bcity="city", bage="age")
    sql = (
        "SELECT m.user_id AS user_id, p.display_name AS display_name, p.email AS email,"  # noqa: S608
        " p.phone AS phone, p.str_props[{bcity:String}] AS city,"
        " p.num_props[{bage:String}] AS age"
        f" FROM ({members.sql}) AS m LEFT JOIN (SELECT user_id, display_name, email, phone,"
        " str_props, num_props FROM profiles FINAL WHERE project = {bp:String}) AS p"
        " ON p.user_id = m.user_id ORDER BY m.user_id SETTINGS join_use_nulls = 0"
    )
    return sql, params


async def phase_engine(quick: bool) -> dict[str, Any]:
    from libs.clickhouse.common import bind, memory_settings

    ch = await _open()
    sql, params = baseline_sql("bench-large")
    bound_sql, bound = bind(sql, params)
    times, size = [], 0
    target = OUT / "engine.csv"
    for _ in range(3):
        started = time.perf_counter()
        size = 0
        with open(target, "wb") as out:  # noqa: ASYNC230 - the engine blocks this process anyway
            chunks = ch.engine.stream(
                DATABASE, bound_sql, "CSVWithNames", bound, memory_settings(8 * 1024**3)
            )
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        times.append(time.perf_counter() - started)
    target.unlink()
    return {"engine_csv_s": statistics.median(times), "engine_csv_bytes": size}


class Process(Server):
    """`segments serve <which>` as a subprocess (readiness and peak memory as `Server`)."""

    def __init__(self, which: str, port: int, env: dict[str, str]) -> None:
        self.port = port
        full = dict(os.environ)
        full.update(env, SEGMENTS_LOG_LEVEL="WARNING")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", which, "--port", str(port)],
            env=full, cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip


def _exporter(port: int, evaluator_port: int, run: str) -> Process:
    data = OUT / run
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.sqlite3*"):
        old.unlink()
    return Process("export", port, {
        "SEGMENTS_DATA_DIR": str(data),
        "SEGMENTS_EVALUATOR_ADDRESS": f"127.0.0.1:{evaluator_port}",
        "SEGMENTS_DEFINITION_ADDRESS": f"127.0.0.1:{evaluator_port}",
        "SEGMENTS_EXPORT_WORKERS": "1",
        # the worker runs jobs outside any call: it acts as the benchmark's admin
        "SEGMENTS_SERVICE_KEY": bench_key(),
    })  # fmt: skip


async def _export(port: int, project: str, cancel: bool = False) -> dict[str, Any]:
    import grpc

    from libs.model.definition_proto import datetime_to_timestamp
    from segments.v1 import export_service_pb2 as pb
    from segments.v1 import export_service_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.SegmentExportServiceStub(channel)
        started = time.perf_counter()
        job = await stub.CreateExportJob(pb.CreateExportJobRequest(
            parent=f"projects/{project}",
            export_job=pb.ExportJob(segment=f"projects/{project}/segments/all-users",
                                    fields=FIELDS, as_of=datetime_to_timestamp(AS_OF)),
        ), metadata=auth())  # fmt: skip
        changes: list[float] = []
        last: tuple[int, int] = (-1, -1)
        while job.state not in (pb.EXPORT_JOB_STATE_SUCCEEDED, pb.EXPORT_JOB_STATE_FAILED,
                                pb.EXPORT_JOB_STATE_CANCELLED):  # fmt: skip
            await asyncio.sleep(0.02)
            job = await stub.GetExportJob(pb.GetExportJobRequest(name=job.name), metadata=auth())
            seen = (job.update_time.seconds, job.update_time.nanos)
            if job.state == pb.EXPORT_JOB_STATE_RUNNING and seen != last:
                changes.append(time.perf_counter())
                last = seen
            if cancel and job.state == pb.EXPORT_JOB_STATE_RUNNING and job.exported_count > 0:
                asked = time.perf_counter()
                try:
                    job = await stub.CancelExportJob(
                        pb.CancelExportJobRequest(name=job.name), metadata=auth()
                    )
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                        raise
                    break  # it finished in the meantime
                return {"cancel_s": time.perf_counter() - asked,
                        "cancel_state": pb.ExportJobState.Name(job.state),
                        "exported_when_cancelled": job.exported_count}  # fmt: skip
        elapsed = time.perf_counter() - started
        if cancel:  # it finished before rows were reported
            return {"cancel_s": float("nan"), "cancel_state": "finished first",
                    "exported_when_cancelled": job.exported_count}  # fmt: skip
        assert job.state == pb.EXPORT_JOB_STATE_SUCCEEDED, job
        gaps = [b - a for a, b in itertools.pairwise(changes)]
        return {
            "export_s": elapsed,
            "exported": job.exported_count,
            "blocked": job.blocked_skipped_count,
            "total": job.total_count,
            "progress_max_gap_s": max(gaps) if gaps else 0.0,
            "progress_updates": len(changes),
            "output_path": job.output_path,
        }


async def _projects(port: int, quick: bool) -> None:
    import grpc

    from segments.v1 import definition_service_pb2 as dpb
    from segments.v1 import definition_service_pb2_grpc as dgrpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = dgrpc.SegmentDefinitionServiceStub(channel)
        for project in sizes(quick):
            try:
                await stub.CreateProject(
                    dpb.CreateProjectRequest(project_id=project), metadata=auth()
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise


async def phase_grpc(port: int, quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    suite = Process("all", port, {
        "SEGMENTS_DATA_DIR": str(DATA_DIR),
        "SEGMENTS_CLICKHOUSE_DATABASE": DATABASE,
        "SEGMENTS_EXPORT_WORKERS": "0",
        "SEGMENTS_BOOTSTRAP_ADMIN_KEY": bench_key(),
    })  # fmt: skip
    try:
        await suite.wait_ready()
        await _projects(port, quick)
        for label, project in (("large", "bench-large"), ("small", "bench-small"), ("cancel", "")):
            exporter = _exporter(port + 1, port, label)
            try:
                await exporter.wait_ready()
                if label == "cancel":
                    results["cancel"] = await _export(port + 1, "bench-large", cancel=True)
                    results["cancel"]["partial_files_left"] = len(
                        list((OUT / label / "exports").glob("*/.*.part"))
                    )
                    continue
                found = await _export(port + 1, project)
                path = OUT / label / "exports" / found.pop("output_path")
                found["file_bytes"] = path.stat().st_size
                path.unlink()
                results[label] = found
            finally:
                peak = exporter.stop()
                results.setdefault(label, {})["export_process_peak_rss_mb"] = peak
    finally:
        results["suite_peak_rss_mb"] = suite.stop()
    return results


def _child(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.export", "--phase", phase, "--port", str(args.port)]
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def render(r: dict[str, Any]) -> str:
    g, large, small, cancel = r["grpc"], r["grpc"]["large"], r["grpc"]["small"], r["grpc"]["cancel"]
    n_large, n_small = r["sizes"]["bench-large"], r["sizes"]["bench-small"]
    ratio = large["export_s"] / r["engine"]["engine_csv_s"]
    memory = large["export_process_peak_rss_mb"] - small["export_process_peak_rss_mb"]
    return "\n".join([
        BEGIN,
        f"Measured {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC on {r['cpus']} cores "
        f"({r['machine']}), chDB engine, one run{' (quick mode)' if r['quick'] else ''}.",
        "",
        "| measurement | result | goal |",
        "|---|---|---|",
        f"| engine's own `FORMAT CSVWithNames` of the {n_large:,} members x 6 columns to a file "
        f"(median of 3) | {r['engine']['engine_csv_s']:.3f} s | |",
        f"| FILE export of the same through gRPC (create to SUCCEEDED; {large['exported']:,} "
        f"rows, {large['blocked']:,} blocked left out) | {large['export_s']:.3f} s | |",
        f"| **export / engine** | **{ratio:.2f}x** | at most 5x |",
        f"| export process peak memory, {n_small:,} members | "
        f"{small['export_process_peak_rss_mb']:.0f} MB | |",
        f"| export process peak memory, {n_large:,} members | "
        f"{large['export_process_peak_rss_mb']:.0f} MB | |",
        f"| **peak memory growth, {n_small:,} to {n_large:,} members** | **{memory:.0f} MB** | "
        "at most 50 MB |",
        f"| longest gap between two progress updates (update_time, polled every 20 ms) | "
        f"{large['progress_max_gap_s']:.3f} s | at most 1 s |",
        f"| CancelExportJob of a running export: until it answers CANCELLED | "
        f"{cancel['cancel_s']:.3f} s ({cancel['cancel_state']}, "
        f"{cancel['partial_files_left']} partial files left) | within 1 s |",
        f"| peak memory of the definition + evaluator process | {g['suite_peak_rss_mb']:.0f} MB "
        "| stated |",
        END,
    ])  # fmt: skip


def write_report(results: dict[str, Any], path: pathlib.Path) -> None:
    text = path.read_text()
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + render(results) + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", choices=["all", "generate", "engine", "grpc"], default="all")
    parser.add_argument("--quick", action="store_true", help="200,000 and 20,000 members")
    parser.add_argument("--port", type=int, default=50981)
    parser.add_argument("--no-report", action="store_true", help="print only")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.phase != "all":
        phases: dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = {
            "generate": lambda: phase_generate(args.quick),
            "engine": lambda: phase_engine(args.quick),
            "grpc": lambda: phase_grpc(args.port, args.quick),
        }
        print(json.dumps(asyncio.run(phases[args.phase]())))
        return
    results: dict[str, Any] = {
        "quick": args.quick, "sizes": sizes(args.quick), "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }  # fmt: skip
    results["generate"] = _child("generate", args)
    results["engine"] = _child("engine", args)
    results["grpc"] = _child("grpc", args)
    print(json.dumps(results, indent=2))
    print(render(results))
    if not args.no_report:
        write_report(results, ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
