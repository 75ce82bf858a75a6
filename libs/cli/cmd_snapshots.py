"""`segments snapshots ...`: create, list, get, and the changes between two versions."""

from __future__ import annotations

import argparse

from libs.cli.app import Commands
from libs.cli.connection import Client
from libs.cli.files import timestamp
from libs.cli.output import Output, enum_text, timestamp_text
from segments.v1 import evaluator_service_pb2 as ev

NAME = "snapshots"
SUMMARY = "snapshots of a segment's members: create, list, get, changes"
COLUMNS = ("VERSION", "MEMBERS", "AS OF", "CREATED")


def _row(s: ev.Snapshot) -> list[object]:
    return [s.version, s.user_count, timestamp_text(s.as_of), timestamp_text(s.create_time)]


def _create(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ev.CreateSnapshotRequest(parent=client.segment_name(args.segment))
    if args.as_of:
        request.as_of.CopyFrom(timestamp(args.as_of, "--as-of"))
    snapshot = client.call(client.evaluator.CreateSnapshot, request)
    if out.json:
        out.message(snapshot)
    else:
        out.table(COLUMNS, [_row(snapshot)])


def _list(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ev.ListSnapshotsRequest(parent=client.segment_name(args.segment))
    snapshots: list[ev.Snapshot] = []
    while True:
        response = client.call(client.evaluator.ListSnapshots, request)
        snapshots += response.snapshots
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    if out.json:
        out.message(ev.ListSnapshotsResponse(snapshots=snapshots))
    else:
        out.table(COLUMNS, (_row(s) for s in snapshots))


def _get(client: Client, out: Output, args: argparse.Namespace) -> None:
    name = f"{client.segment_name(args.segment)}/snapshots/{args.version}"
    snapshot = client.call(client.evaluator.GetSnapshot, ev.GetSnapshotRequest(name=name))
    if out.json:
        out.message(snapshot)
    else:
        out.table(COLUMNS, [_row(snapshot)])


def _changes(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ev.ListSnapshotChangesRequest(
        parent=client.segment_name(args.segment),
        from_version=args.from_version,
        to_version=args.to_version,
        page_size=args.page_size,
    )
    changes: list[ev.SnapshotChange] = []
    while True:
        response = client.call(client.evaluator.ListSnapshotChanges, request)
        changes += response.changes
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    if out.json:
        out.message(ev.ListSnapshotChangesResponse(changes=changes))
        return
    out.table(
        ("USER", "CHANGE"),
        ((c.user_id, enum_text(ev.ChangeKind.Name(c.kind), "CHANGE_KIND_")) for c in changes),
    )
    entered = sum(1 for c in changes if c.kind == ev.CHANGE_KIND_ENTERED)
    out.note(
        f"from version {args.from_version} to {args.to_version}: {entered} entered, "
        f"{len(changes) - entered} left"
    )


def register(commands: Commands) -> None:
    p = commands.add(
        "create",
        _create,
        "materialise a new snapshot version of a segment's members",
        "  segments snapshots create ny-buyers --project demo\n"
        "  segments snapshots create ny-buyers --as-of 2026-06-30T00:00:00Z --project demo",
    )
    p.add_argument("segment")
    p.add_argument("--as-of", help="evaluate as of this instant (default now)")

    p = commands.add(
        "list", _list, "list a segment's snapshots, newest first",
        "  segments snapshots list ny-buyers --project demo",
    )  # fmt: skip
    p.add_argument("segment")

    p = commands.add(
        "get",
        _get,
        "show one snapshot version",
        "  segments snapshots get ny-buyers 2 --project demo",
    )
    p.add_argument("segment")
    p.add_argument("version", type=int)

    p = commands.add(
        "changes",
        _changes,
        "list the users who entered or left between two versions",
        "  segments snapshots changes ny-buyers 1 2 --project demo",
    )
    p.add_argument("segment")
    p.add_argument("from_version", type=int, metavar="FROM")
    p.add_argument("to_version", type=int, metavar="TO")
    p.add_argument("--page-size", type=int, default=0, help="changes per call (at most 10,000)")
