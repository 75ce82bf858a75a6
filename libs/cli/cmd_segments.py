"""`segments segments ...`: list, get, create and update from a file, delete, clone, dependants,
validate a file without saving."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from google.protobuf import field_mask_pb2

from libs.cli.app import Commands
from libs.cli.connection import Client
from libs.cli.errors import UsageError
from libs.cli.files import read_document, to_message
from libs.cli.output import Output, compact_dict, enum_text, timestamp_text
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as ds
from segments.v1 import segment_pb2

NAME = "segments"
SUMMARY = "segments: list, get, create, update, delete, clone, dependants, validate"

#: Fields a segment file may hold that the server computes; dropped before sending, so that
#: the output of `get -o json` can be edited and sent back.
OUTPUT_ONLY = (
    "type",
    "creator",
    "updater",
    "create_time",
    "createTime",
    "update_time",
    "updateTime",
    "goal_count",
    "goalCount",
    "intent_goal_count",
    "intentGoalCount",
    "engagement_count",
    "engagementCount",
    "dependent_segment_count",
    "dependentSegmentCount",
)
UPDATABLE = {
    "display_name": "displayName",
    "description": "description",
    "definition": "definition",
}


def segment_rows(segments: Any) -> Iterator[list[Any]]:
    for s in segments:
        yield [
            s.segment_id,
            s.display_name,
            enum_text(segment_pb2.SegmentType.Name(s.type), "SEGMENT_TYPE_"),
            s.creator,
            timestamp_text(s.update_time),
            s.engagement_count,
            s.dependent_segment_count,
        ]


SEGMENT_COLUMNS = ("ID", "NAME", "TYPE", "CREATOR", "UPDATED", "ENGAGEMENTS", "DEPENDANTS")


def show_segment(out: Output, segment: segment_pb2.Segment, *, full: bool = True) -> None:
    if out.json:
        out.message(segment)
        return
    pairs: list[tuple[str, Any]] = [
        ("name", segment.name),
        ("display name", segment.display_name),
        ("type", enum_text(segment_pb2.SegmentType.Name(segment.type), "SEGMENT_TYPE_")),
        ("etag", segment.etag),
    ]
    if full:
        pairs += [
            ("description", segment.description),
            ("creator", segment.creator),
            ("updater", segment.updater),
            ("created", timestamp_text(segment.create_time)),
            ("updated", timestamp_text(segment.update_time)),
            ("goals", f"{segment.goal_count} (intent-based: {segment.intent_goal_count})"),
            ("engagements", segment.engagement_count),
            ("dependants", segment.dependent_segment_count),
            ("definition", compact_dict(segment.definition)),
        ]
    out.fields(pairs)


def read_segment(path: str) -> tuple[segment_pb2.Segment, set[str]]:
    """The segment a file describes (output-only fields dropped) and the keys it holds."""
    data = read_document(path)
    keys = set(data)
    for key in OUTPUT_ONLY:
        data.pop(key, None)
    return to_message(data, segment_pb2.Segment(), path), keys


def read_definition(path: str) -> dm.Definition:
    """A definition from a file holding a whole segment or only its definition."""
    data = read_document(path)
    if "definition" in data:
        data = data["definition"]
        if not isinstance(data, dict):
            raise UsageError(f"{path}: definition must be an object")
    return to_message(data, dm.Definition(), path)


def _list(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.ListSegmentsRequest(
        parent=client.project_name(),
        page_size=args.page_size,
        page_token=args.page_token or "",
        filter=args.filter or "",
        order_by=args.order_by or "",
        search=args.search or "",
    )
    response = client.call(client.definitions.ListSegments, request)
    if args.all:
        segments = list(response.segments)
        while response.next_page_token:
            request.page_token = response.next_page_token
            response = client.call(client.definitions.ListSegments, request)
            segments += response.segments
        response = ds.ListSegmentsResponse(segments=segments, total_size=response.total_size)
    if out.json:
        out.message(response)
        return
    out.table(SEGMENT_COLUMNS, segment_rows(response.segments))
    more = (
        f"; next page: --page-token {response.next_page_token}" if response.next_page_token else ""
    )
    out.note(f"{len(response.segments)} of {response.total_size} segments{more}")


def _get(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.GetSegmentRequest(name=client.segment_name(args.segment))
    show_segment(out, client.call(client.definitions.GetSegment, request))


def _create(client: Client, out: Output, args: argparse.Namespace) -> None:
    segment, _ = read_segment(args.file)
    segment_id = args.id or segment.segment_id
    segment.ClearField("segment_id")
    segment.ClearField("name")
    request = ds.CreateSegmentRequest(
        parent=client.project_name(),
        segment=segment,
        segment_id=segment_id,
        request_id=args.request_id or "",
    )
    created = client.call(client.definitions.CreateSegment, request)
    show_segment(out, created, full=False)


def _update(client: Client, out: Output, args: argparse.Namespace) -> None:
    segment, keys = read_segment(args.file)
    name = client.segment_name(args.segment) if args.segment else segment.name
    if not name:
        raise UsageError(f"name the segment: as an argument, or as name: in {args.file}")
    segment.name = name
    segment.ClearField("segment_id")
    if args.etag is not None:
        segment.etag = args.etag
    if args.force:
        segment.etag = ""
    paths = [field for field, camel in UPDATABLE.items() if field in keys or camel in keys]
    if not paths:
        raise UsageError(f"{args.file} holds none of display_name, description, definition")
    request = ds.UpdateSegmentRequest(
        segment=segment, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    show_segment(out, client.call(client.definitions.UpdateSegment, request), full=False)


def _delete(client: Client, out: Output, args: argparse.Namespace) -> None:
    names = [client.segment_name(s) for s in args.segments]
    if len(names) == 1:
        request = ds.DeleteSegmentRequest(name=names[0], etag=args.etag or "")
        client.call(client.definitions.DeleteSegment, request)
    else:
        if args.etag:
            raise UsageError("--etag applies to deleting one segment")
        parent = names[0].split("/segments/")[0]
        batch = ds.BatchDeleteSegmentsRequest(parent=parent, names=names)
        client.call(client.definitions.BatchDeleteSegments, batch)
    if out.json:
        out.data({"deleted": names})
    else:
        out.line("deleted: " + ", ".join(names))


def _clone(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.CloneSegmentRequest(
        name=client.segment_name(args.segment),
        display_name=args.name,
        segment_id=args.id or "",
        request_id=args.request_id or "",
    )
    show_segment(out, client.call(client.definitions.CloneSegment, request), full=False)


def _dependants(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.ListDependentSegmentsRequest(parent=client.segment_name(args.segment))
    segments: list[segment_pb2.Segment] = []
    while True:
        response = client.call(client.definitions.ListDependentSegments, request)
        segments += response.segments
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    if out.json:
        out.message(ds.ListDependentSegmentsResponse(segments=segments))
        return
    out.table(SEGMENT_COLUMNS, segment_rows(segments))
    out.note(f"{len(segments)} segments include or exclude {request.parent}")


def _validate(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.ValidateDefinitionRequest(
        parent=client.project_name(), definition=read_definition(args.file)
    )
    response = client.call(client.definitions.ValidateDefinition, request)
    if out.json:
        out.message(response)
        return
    kind = enum_text(segment_pb2.SegmentType.Name(response.segment_type), "SEGMENT_TYPE_")
    refs = ", ".join(response.referenced_segments) or "none"
    out.line(f"valid: a {kind} definition; segments referenced: {refs}")


def register(commands: Commands) -> None:
    p = commands.add(
        "list",
        _list,
        "list a project's segments with search, filter and order",
        """  segments segments list --project demo
  segments segments list --project demo --search buyers --order-by "display_name"
  segments segments list --project demo --filter 'type = PAST_BEHAVIOR' --all -o json""",
    )
    p.add_argument("--search", help="case-insensitive part of the name, or an exact id")
    p.add_argument(
        "--filter", help="AIP-160 filter on type, has_goals, creator, updater, create_time"
    )
    p.add_argument(
        "--order-by",
        help="display_name, create_time, update_time, engagement_count or "
        "dependent_segment_count, optionally with ' desc'",
    )
    p.add_argument("--page-size", type=int, default=0, help="segments per page (0: the maximum)")
    p.add_argument("--page-token", help="next_page_token of the previous page")
    p.add_argument("--all", action="store_true", help="every page")

    p = commands.add(
        "get",
        _get,
        "show a segment with its definition",
        "  segments segments get ny-buyers --project demo\n"
        "  segments segments get projects/demo/segments/ny-buyers -o json > ny.json",
    )
    p.add_argument("segment", help="segment id (with --project) or projects/P/segments/S")

    p = commands.add(
        "create",
        _create,
        "create a segment from a YAML or JSON file",
        "  segments segments create -f docs/examples/ny-buyers.yaml --project demo\n"
        "  segments segments create -f segment.json --id my-segment --project demo",
    )
    p.add_argument(
        "-f", "--file", required=True, help="YAML or JSON file of the segment ('-': stdin)"
    )
    p.add_argument("--id", help="segment id (default: the file's segment_id, else generated)")
    p.add_argument("--request-id", help="idempotency key: a retry with it returns the first result")

    p = commands.add(
        "update",
        _update,
        "update a segment from a file (the fields it holds among display_name, description, "
        "definition)",
        "  segments segments get ny-buyers --project demo -o json > ny.json   # edit, then:\n"
        "  segments segments update -f ny.json   # refused (ABORTED) if changed meanwhile\n"
        "  segments segments update ny-buyers -f new-definition.yaml --force --project demo",
    )
    p.add_argument("segment", nargs="?", help="the segment (default: name: in the file)")
    p.add_argument("-f", "--file", required=True, help="YAML or JSON file ('-': stdin)")
    p.add_argument("--etag", help="refuse the update if the segment changed since this etag")
    p.add_argument("--force", action="store_true", help="ignore the file's etag")

    p = commands.add(
        "delete",
        _delete,
        "delete segments (several: all or nothing)",
        "  segments segments delete old-buyers --project demo\n"
        "  segments segments delete a-segment b-segment --project demo",
    )
    p.add_argument("segments", nargs="+", help="segment ids or names")
    p.add_argument("--etag", help="refuse if the segment changed since this etag")

    p = commands.add(
        "clone",
        _clone,
        "copy a segment's definition under a new name",
        '  segments segments clone ny-buyers --name "NY buyers (copy)" --project demo',
    )
    p.add_argument("segment")
    p.add_argument("--name", required=True, help="display name of the copy")
    p.add_argument("--id", help="segment id of the copy")
    p.add_argument("--request-id", help="idempotency key")

    p = commands.add(
        "dependants",
        _dependants,
        "list the segments that include or exclude a segment",
        "  segments segments dependants ny-buyers --project demo",
    )
    p.add_argument("segment")

    p = commands.add(
        "validate",
        _validate,
        "check a segment or definition file as create would, saving nothing",
        "  segments segments validate docs/examples/ny-buyers.yaml --project demo",
    )
    p.add_argument("file", help="YAML or JSON: a whole segment or only its definition")
