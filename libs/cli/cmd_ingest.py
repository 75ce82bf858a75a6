"""`segments ingest ...`: events and profiles from JSON Lines or CSV files, and a custom list's
upload from a CSV file, each with a report of the rows refused (by line number)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import grpc

from libs.cli.app import Commands
from libs.cli.connection import Client
from libs.cli.errors import EXIT_REFUSED, UsageError
from libs.cli.output import Output
from libs.cli.records import file_format, read_events, read_profiles
from segments.v1 import evaluator_service_pb2 as ev

NAME = "ingest"
SUMMARY = "ingestion: events, profiles, custom-list upload"
MAX_BATCH = 10_000
CHUNK_BYTES = 64 * 1024
SHOWN_ERRORS = 50


def _batch_size(args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= MAX_BATCH:
        raise UsageError(f"--batch must be 1 to {MAX_BATCH}")
    return int(args.batch)


def _report(
    out: Output, counts: list[tuple[str, int]], errors: list[tuple[int, str, str]], what: str
) -> int:
    errors.sort()
    if out.json:
        out.data(
            {
                **dict(counts),
                "errors": [{"line": n, "field": f, "description": d} for n, f, d in errors],
            }
        )
    else:
        out.fields(counts)
        if errors:
            out.table(("LINE", "FIELD", "PROBLEM"), errors[:SHOWN_ERRORS], title=f"{what} refused")
            if len(errors) > SHOWN_ERRORS:
                out.note(f"... and {len(errors) - SHOWN_ERRORS} more (-o json lists them all)")
    return EXIT_REFUSED if errors else 0


def _events(client: Client, out: Output, args: argparse.Namespace) -> int:
    parent = client.project_name()
    batch_size = _batch_size(args)
    rows = read_events(args.file, file_format(args.file, args.format))
    unreadable: list[tuple[int, str, str]] = []
    lines: list[int] = []
    progress = None if out.json else out.progress("events sent")

    failed: list[BaseException] = []

    def requests() -> Iterator[ev.IngestEventsRequest]:
        try:
            yield from messages()
        except BaseException as exc:  # grpc would report it as "Exception iterating requests"
            failed.append(exc)
            raise

    def messages() -> Iterator[ev.IngestEventsRequest]:
        batch: list[ev.Event] = []
        for row in rows:
            if row.error:
                unreadable.append((row.line, "", row.error))
                continue
            lines.append(row.line)
            batch.append(row.message)
            if len(batch) == batch_size:
                yield ev.IngestEventsRequest(parent=parent, events=batch)
                if progress is not None:
                    progress.advance(progress.task_ids[0], len(batch))
                batch = []
        if batch or not lines:
            yield ev.IngestEventsRequest(parent=parent, events=batch)
            if progress is not None:
                progress.advance(progress.task_ids[0], len(batch))

    with progress or nullcontext():
        try:
            response = client.call(client.evaluator.IngestEvents, requests(), stream=True)
        except grpc.RpcError:
            if failed:
                raise failed[0] from None
            raise
    refused = unreadable + [
        (lines[e.index] if 0 <= e.index < len(lines) else -1, e.field, e.description)
        for e in response.errors
    ]
    counts = [
        ("accepted", response.accepted_count),
        ("duplicates", response.duplicate_count),
        ("rejected", response.rejected_count),
        ("unreadable", len(unreadable)),
    ]
    return _report(out, counts, refused, "events")


def _profiles(client: Client, out: Output, args: argparse.Namespace) -> int:
    parent = client.project_name()
    batch_size = _batch_size(args)
    refused: list[tuple[int, str, str]] = []
    upserted = unreadable = 0
    batch: list[tuple[int, ev.Profile]] = []
    progress = None if out.json else out.progress("profiles sent")

    def send() -> None:
        nonlocal upserted
        request = ev.UpsertProfilesRequest(parent=parent, profiles=[p for _, p in batch])
        response = client.call(client.evaluator.UpsertProfiles, request)
        upserted += response.upserted_count
        refused.extend((batch[e.index][0], e.field, e.description) for e in response.errors)
        if progress is not None:
            progress.advance(progress.task_ids[0], len(batch))
        batch.clear()

    with progress or nullcontext():
        for row in read_profiles(args.file, file_format(args.file, args.format)):
            if row.error:
                unreadable += 1
                refused.append((row.line, "", row.error))
                continue
            batch.append((row.line, row.message))
            if len(batch) == batch_size:
                send()
        if batch:
            send()
    counts = [
        ("upserted", upserted),
        ("rejected", len(refused) - unreadable),
        ("unreadable", unreadable),
    ]
    return _report(out, counts, refused, "profiles")


def _upload(client: Client, out: Output, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    if args.column < 0:
        raise UsageError("--column is a zero-based column number")
    header = ev.UploadCustomListHeader(
        segment=client.segment_name(args.segment),
        has_header_row=args.header_row,
        identity_column=args.column,
        allow_empty=args.allow_empty,
    )

    def requests() -> Iterator[ev.UploadCustomListRequest]:
        yield ev.UploadCustomListRequest(header=header)
        for start in range(0, len(data), CHUNK_BYTES):
            yield ev.UploadCustomListRequest(chunk=data[start : start + CHUNK_BYTES])

    response: Any = client.call(client.evaluator.UploadCustomList, requests(), stream=True)
    if out.json:
        out.message(response)
    else:
        out.fields(
            [
                ("rows", response.row_count),
                ("matched", response.matched_count),
                ("unmatched", response.unmatched_count),
                ("malformed", response.malformed_count),
                ("unmatched rows", ", ".join(map(str, response.unmatched_rows)) or "-"),
            ]
        )
        if response.malformed_rows:
            out.table(
                ("ROW", "PROBLEM"),
                ((e.index, e.description) for e in response.malformed_rows),
                title="malformed rows",
            )
    return EXIT_REFUSED if response.malformed_count else 0


def register(commands: Commands) -> None:
    file_help = "JSON Lines (.jsonl) or CSV (.csv) file"
    p = commands.add(
        "events",
        _events,
        "send events from a JSON Lines or CSV file (re-sending is harmless: ids dedupe)",
        "  segments ingest events events.jsonl --project demo\n"
        "  segments ingest events events.csv --project demo   # header: "
        "event_id,user_id,event_name,event_time,amount:number\n"
        '  events.jsonl line: {"event_id": "e1", "user_id": "u1", "event_name": "Charged",\n'
        '      "event_time": "2026-06-01T10:00:00Z", "properties": {"amount": 12.5}}',
    )
    p.add_argument("file", help=file_help)
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name")
    p.add_argument("--batch", type=int, default=1000, help="events per message (at most 10,000)")

    p = commands.add(
        "profiles",
        _profiles,
        "create or replace profiles from a JSON Lines or CSV file",
        "  segments ingest profiles profiles.csv --project demo   # header: "
        "user_id,email,city,age:number\n"
        '  profiles.jsonl line: {"user_id": "u1", "email": "u1@example.com",\n'
        '                        "properties": {"city": "New York", "age": 31}}',
    )
    p.add_argument("file", help=file_help)
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name")
    p.add_argument("--batch", type=int, default=1000, help="profiles per call (at most 10,000)")

    p = commands.add(
        "list",
        _upload,
        "upload a custom list's CSV of identities (replaces the list), with the row report",
        "  segments ingest list vip-list vips.csv --header-row --column 0 --project demo",
    )
    p.add_argument("segment", help="the custom-list segment")
    p.add_argument("file", help="CSV file of e-mails, phone numbers or user ids (UTF-8)")
    p.add_argument("--header-row", action="store_true", help="the first row is a header")
    p.add_argument("--column", type=int, default=0, help="zero-based column of the identity")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="replace the list even when no row is valid (empties it); refused otherwise",
    )
