"""`segments exports ...`: start a CSV export job, watch it with a progress bar, cancel it,
download its CSV, list and get jobs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from libs.cli.app import Commands
from libs.cli.connection import Client
from libs.cli.errors import EXIT_SERVER, UsageError, status_block
from libs.cli.output import Output, enum_text, timestamp_text
from segments.v1 import export_service_pb2 as xp

NAME = "exports"
SUMMARY = "CSV exports: start, watch, cancel, download, list, get"
FINISHED = {
    xp.EXPORT_JOB_STATE_SUCCEEDED,
    xp.EXPORT_JOB_STATE_FAILED,
    xp.EXPORT_JOB_STATE_CANCELLED,
}
COLUMNS = ("JOB", "SEGMENT", "STATE", "ROWS", "TOTAL", "BLOCKED LEFT OUT", "CREATED")


def _state(job: xp.ExportJob) -> str:
    return enum_text(xp.ExportJobState.Name(job.state), "EXPORT_JOB_STATE_")


def _row(job: xp.ExportJob) -> list[object]:
    return [
        job.name.rsplit("/", 1)[-1],
        job.segment,
        _state(job),
        job.exported_count,
        job.total_count,
        job.blocked_skipped_count,
        timestamp_text(job.create_time),
    ]


def _show(out: Output, job: xp.ExportJob) -> int:
    """Prints a job; exit 1 when it failed or was cancelled."""
    if out.json:
        out.message(job)
    else:
        out.table(COLUMNS, [_row(job)])
        if job.output_path:
            out.note(f"file: {job.output_path} (in the server's export directory)")
        if job.HasField("error"):
            out.note("error: " + status_block(job.error))
    failed = {xp.EXPORT_JOB_STATE_FAILED, xp.EXPORT_JOB_STATE_CANCELLED}
    return EXIT_SERVER if job.state in failed else 0


def _job_name(client: Client, given: str) -> str:
    return client.child_name(given, "exportJobs")


def _watch_job(client: Client, out: Output, name: str, interval: float) -> xp.ExportJob:
    """Polls the job until it finishes, with a progress bar of rows written."""
    job: xp.ExportJob = client.call(client.exports.GetExportJob, xp.GetExportJobRequest(name=name))
    progress = None if out.json else out.progress(f"exporting {job.segment}")
    if progress is None:
        while job.state not in FINISHED:
            time.sleep(interval)
            job = client.call(client.exports.GetExportJob, xp.GetExportJobRequest(name=name))
        return job
    task = progress.task_ids[0]
    with progress:
        while True:
            progress.update(
                task,
                completed=job.exported_count + job.blocked_skipped_count,
                total=job.total_count or None,
                description=f"{_state(job).lower()}: {job.segment}",
            )
            if job.state in FINISHED:
                return job
            time.sleep(interval)
            job = client.call(client.exports.GetExportJob, xp.GetExportJobRequest(name=name))


def _start(client: Client, out: Output, args: argparse.Namespace) -> int:
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    if not fields:
        raise UsageError("--fields: name at least one column, e.g. user_id,email")
    job = xp.ExportJob(
        segment=client.segment_name(args.segment),
        fields=fields,
        destination=xp.EXPORT_DESTINATION_STREAM if args.stream else xp.EXPORT_DESTINATION_FILE,
    )
    request = xp.CreateExportJobRequest(
        parent=client.project_name(job.segment.split("/segments/")[0]),
        export_job=job,
        request_id=args.request_id or "",
    )
    created = client.call(client.exports.CreateExportJob, request)
    if args.watch and not args.stream:
        return _show(out, _watch_job(client, out, created.name, args.interval))
    code = _show(out, created)
    if not out.json:
        job_id = created.name.rsplit("/", 1)[-1]
        out.note(
            f"follow it: segments exports watch {job_id} --project {created.name.split('/')[1]}"
        )
    return code


def _watch(client: Client, out: Output, args: argparse.Namespace) -> int:
    return _show(out, _watch_job(client, out, _job_name(client, args.job), args.interval))


def _cancel(client: Client, out: Output, args: argparse.Namespace) -> int:
    request = xp.CancelExportJobRequest(name=_job_name(client, args.job))
    job = client.call(client.exports.CancelExportJob, request)
    _show(out, job)
    return 0


def _get(client: Client, out: Output, args: argparse.Namespace) -> int:
    request = xp.GetExportJobRequest(name=_job_name(client, args.job))
    return _show(out, client.call(client.exports.GetExportJob, request))


def _list(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = xp.ListExportJobsRequest(parent=client.project_name(), page_size=args.limit)
    response = client.call(client.exports.ListExportJobs, request)
    if out.json:
        out.message(response)
    else:
        out.table(COLUMNS, (_row(j) for j in response.export_jobs))


def _download(client: Client, out: Output, args: argparse.Namespace) -> None:
    name = _job_name(client, args.job)
    chunks = client.call(
        client.exports.StreamExportJob, xp.StreamExportJobRequest(name=name), stream=True
    )
    if args.out == "-":
        written = 0
        for chunk in chunks:
            sys.stdout.buffer.write(chunk.data)
            written += len(chunk.data)
        sys.stdout.buffer.flush()
        return
    target = Path(args.out)
    partial = target.with_name(target.name + ".part")
    written = 0
    try:
        with open(partial, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk.data)
                written += len(chunk.data)
        os.replace(partial, target)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from exc
    finally:
        partial.unlink(missing_ok=True)
    if out.json:
        out.data({"job": name, "file": str(target), "bytes": written})
    else:
        out.line(f"{written:,} bytes of {name} written to {target}")


def register(commands: Commands) -> None:
    p = commands.add(
        "start",
        _start,
        "start a CSV export of a segment's users (blocked users are left out and counted)",
        "  segments exports start ny-buyers --fields user_id,email,city --watch --project demo\n"
        "  segments exports start ny-buyers --fields user_id,phone --stream --project demo",
    )
    p.add_argument("segment")
    p.add_argument("--fields", required=True, help="comma-separated columns, in order")
    p.add_argument("--stream", action="store_true", help="no file: read it with download")
    p.add_argument("--watch", action="store_true", help="follow the job with a progress bar")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between progress reads")
    p.add_argument("--request-id", help="idempotency key")

    p = commands.add(
        "watch",
        _watch,
        "follow a job with a progress bar until it ends (exit 1 when it failed or was cancelled)",
        "  segments exports watch 7f3c2a --project demo",
    )
    p.add_argument("job", help="job id (with --project) or projects/P/exportJobs/J")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between progress reads")

    p = commands.add(
        "cancel",
        _cancel,
        "cancel a pending or running job",
        "  segments exports cancel 7f3c2a --project demo",
    )
    p.add_argument("job")

    p = commands.add(
        "download",
        _download,
        "write a job's CSV (a STREAM job, or a finished FILE job) to a file or stdout",
        "  segments exports download 7f3c2a --out ny.csv --project demo",
    )
    p.add_argument("job")
    p.add_argument("--out", default="-", help="file to write, whole or not at all ('-': stdout)")

    p = commands.add(
        "get", _get, "show a job with its progress", "  segments exports get 7f3c2a --project demo"
    )
    p.add_argument("job")

    p = commands.add(
        "list", _list, "list export jobs, newest first", "  segments exports list --project demo"
    )
    p.add_argument("--limit", type=int, default=30, help="jobs to show (at most 100)")
