"""`segments eval ...`: count with a sample, estimate a file, explain, stream an audience to a
file, check membership."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

from libs.cli.app import Commands
from libs.cli.cmd_segments import read_definition
from libs.cli.connection import Client
from libs.cli.errors import UsageError
from libs.cli.files import read_ids, timestamp
from libs.cli.output import Output, timestamp_text
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as ev

NAME = "eval"
SUMMARY = "evaluation: count, estimate, explain, audience, check"
MAX_CHECK = 10_000


def _as_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"as_of": timestamp(args.as_of, "--as-of")} if args.as_of else {}


def _show_count(out: Output, response: Any, what: str) -> None:
    if out.json:
        out.message(response)
        return
    out.fields(
        [
            (what, response.user_count),
            ("as of", timestamp_text(response.as_of)),
            ("sample", ", ".join(response.sample_user_ids) or "-"),
        ]
    )


def _count(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ev.CountSegmentRequest(
        segment=client.segment_name(args.segment), sample_size=args.sample, **_as_of(args)
    )
    _show_count(out, client.call(client.evaluator.CountSegment, request), "members")


def _estimate(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ev.EstimateDefinitionRequest(
        parent=client.project_name(),
        definition=read_definition(args.file),
        sample_size=args.sample,
        **_as_of(args),
    )
    _show_count(out, client.call(client.evaluator.EstimateDefinition, request), "estimate")


def _explain(client: Client, out: Output, args: argparse.Namespace) -> None:
    if bool(args.segment) == bool(args.file):
        raise UsageError("explain a saved segment or a definition file (-f), one of the two")
    request = ev.ExplainSegmentRequest(**_as_of(args))
    if args.segment:
        request.segment = client.segment_name(args.segment)
    else:
        request.parent = client.project_name()
        request.definition.CopyFrom(read_definition(args.file))
    response = client.call(client.evaluator.ExplainSegment, request)
    if out.json:
        out.message(response)
        return
    out.line("-- SQL")
    out.line(response.sql)
    out.line("-- parameters")
    for key, value in sorted(response.parameters.items()):
        out.line(f"{key} = {value}")
    out.line("-- plan")
    out.line(response.plan)


def _cell(value: dm.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind is None:
        return ""
    if kind == "time_value":
        return timestamp_text(value.time_value)
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number.is_integer() else repr(number)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    return str(getattr(value, kind))


def _audience(client: Client, out: Output, args: argparse.Namespace) -> None:
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else []
    request = ev.StreamAudienceRequest(
        segment=client.segment_name(args.segment),
        profile_fields=fields,
        chunk_size=args.chunk_size,
        snapshot_version=args.snapshot or 0,
        **_as_of(args),
    )
    to_stdout = args.out == "-"
    written = 0
    progress = None if to_stdout or out.json else out.progress("members written")
    with ExitStack() as stack:
        handle: IO[str] = (
            sys.stdout
            if to_stdout
            else stack.enter_context(open(args.out, "w", newline="", encoding="utf-8"))
        )
        if progress is not None:
            stack.enter_context(progress)
        chunks = client.call(client.evaluator.StreamAudience, request, stream=True)
        for count in _write_audience(chunks, handle, fields):
            written += count
            if progress is not None:
                progress.advance(progress.task_ids[0], count)
    summary = {"segment": request.segment, "members": written, "file": args.out}
    if out.json and not to_stdout:
        out.data(summary)
    elif not to_stdout:
        out.line(f"{written} members of {request.segment} written to {args.out}")


def _write_audience(chunks: Any, handle: IO[str], fields: list[str]) -> Iterator[int]:
    """Writes each chunk as it arrives: ids one per line, or CSV with the fields."""
    writer = csv.writer(handle, lineterminator="\n") if fields else None
    if writer is not None:
        writer.writerow(["user_id", *fields])
    for chunk in chunks:
        if writer is None:
            handle.write("".join(f"{user_id}\n" for user_id in chunk.user_ids))
        else:
            for member in chunk.members:
                writer.writerow(
                    [
                        member.user_id,
                        *(_cell(member.fields[f]) if f in member.fields else "" for f in fields),
                    ]
                )
        yield len(chunk.user_ids)


def _check(client: Client, out: Output, args: argparse.Namespace) -> None:
    ids = list(args.ids)
    if args.ids_file:
        ids += read_ids(args.ids_file)
    if not ids:
        raise UsageError("no user ids: give them as arguments or with --ids-file FILE ('-': stdin)")
    segment = client.segment_name(args.segment)
    flags: list[bool] = []
    version = 0
    for start in range(0, len(ids), MAX_CHECK):
        request = ev.CheckMembershipRequest(
            segment=segment,
            user_ids=ids[start : start + MAX_CHECK],
            snapshot_version=args.snapshot or 0,
            realtime=args.realtime,
            **_as_of(args),
        )
        response = client.call(client.evaluator.CheckMembership, request)
        flags += response.is_member
        version = response.snapshot_version
    if out.json:
        out.message(
            ev.CheckMembershipResponse(
                is_member=flags,
                member_user_ids=[i for i, f in zip(ids, flags, strict=True) if f],
                snapshot_version=version,
            )
        )
        return
    out.table(
        ("USER", "MEMBER"), ((i, "yes" if f else "no") for i, f in zip(ids, flags, strict=True))
    )
    when = f"as of {args.as_of}" if args.as_of else "now"
    source = f"snapshot version {version}" if version else f"evaluated {when}"
    out.note(f"{sum(flags)} of {len(ids)} are members of {segment} ({source})")


def register(commands: Commands) -> None:
    p = commands.add(
        "count",
        _count,
        "count a saved segment's members, with a sample of user ids",
        "  segments eval count ny-facebook-april-lapsed --project demo\n"
        "  segments eval count ny-buyers --as-of 2026-07-01T00:00:00Z --project demo"
        "\n"
        "  segments eval count projects/demo/segments/ny-buyers --sample 20 -o json",
    )
    p.add_argument("segment")
    p.add_argument("--sample", type=int, default=10, help="sample user ids to show (at most 1,000)")
    p.add_argument("--as-of", help="evaluate as of this instant (ISO 8601; default now)")

    p = commands.add(
        "estimate",
        _estimate,
        "estimate the size of an unsaved definition from a file",
        "  segments eval estimate docs/examples/ny-buyers.yaml --project demo",
    )
    p.add_argument("file", help="YAML or JSON: a whole segment or only its definition")
    p.add_argument("--sample", type=int, default=10)
    p.add_argument("--as-of")

    p = commands.add(
        "explain",
        _explain,
        "show the compiled SQL, its parameters and the engine's plan",
        "  segments eval explain ny-buyers --project demo\n"
        "  segments eval explain -f docs/examples/ny-buyers.yaml --project demo",
    )
    p.add_argument("segment", nargs="?", help="a saved segment (or -f FILE)")
    p.add_argument("-f", "--file", help="an unsaved definition instead")
    p.add_argument("--as-of")

    p = commands.add(
        "audience",
        _audience,
        "stream a segment's whole audience to a file: ids, or CSV with profile fields",
        "  segments eval audience ny-buyers --project demo --out ny.txt\n"
        "  segments eval audience ny-buyers --project demo --fields email,city --out ny.csv\n"
        "  segments eval audience ny-buyers --project demo --snapshot 3 | wc -l",
    )
    p.add_argument("segment")
    p.add_argument("--out", default="-", help="file to write ('-': stdout, the default)")
    p.add_argument(
        "--fields", help="comma-separated profile fields: CSV with user_id first (default: ids)"
    )
    p.add_argument("--as-of")
    p.add_argument("--snapshot", type=int, help="read this snapshot version instead")
    p.add_argument("--chunk-size", type=int, default=0, help="users per message (default 10,000)")

    p = commands.add(
        "check",
        _check,
        "check user ids for membership (arguments, or a file with one id a line)",
        "  segments eval check ny-buyers u0001 u0002 --project demo\n"
        "  segments eval check ny-buyers --ids-file ids.txt --realtime --project demo\n"
        "  cut -d, -f1 users.csv | segments eval check ny-buyers --ids-file - -o json",
    )
    p.add_argument("segment")
    p.add_argument("ids", nargs="*", help="user ids")
    p.add_argument("--ids-file", help="file of user ids, one a line ('-': stdin)")
    p.add_argument("--snapshot", type=int, help="check against this snapshot version")
    p.add_argument(
        "--realtime", action="store_true", help="evaluate now even when a snapshot exists"
    )
    p.add_argument("--as-of", help="evaluate as of this instant (ISO 8601; not with --snapshot)")
