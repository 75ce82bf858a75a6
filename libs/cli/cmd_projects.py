"""`segments projects ...`: list, get, create, update (time zone), delete."""

from __future__ import annotations

import argparse

from google.protobuf import field_mask_pb2

from libs.cli.app import Commands
from libs.cli.connection import Client
from libs.cli.output import Output, timestamp_text
from segments.v1 import definition_service_pb2 as ds
from segments.v1 import segment_pb2

NAME = "projects"
SUMMARY = "projects: list, get, create, update, delete"
COLUMNS = ("PROJECT", "TIME ZONE", "SEGMENTS", "CREATED")


def _row(p: segment_pb2.Project) -> list[object]:
    return [
        p.name.removeprefix("projects/"),
        p.time_zone,
        p.segment_count,
        timestamp_text(p.create_time),
    ]


def _show(out: Output, project: segment_pb2.Project) -> None:
    if out.json:
        out.message(project)
    else:
        out.table(COLUMNS, [_row(project)])


def _list(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.ListProjectsRequest()
    projects: list[segment_pb2.Project] = []
    while True:
        response = client.call(client.definitions.ListProjects, request)
        projects += response.projects
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    if out.json:
        out.message(ds.ListProjectsResponse(projects=projects))
    else:
        out.table(COLUMNS, (_row(p) for p in projects))


def _get(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = ds.GetProjectRequest(name=client.project_name(args.project_id))
    _show(out, client.call(client.definitions.GetProject, request))


def _create(client: Client, out: Output, args: argparse.Namespace) -> None:
    name = client.project_name(args.project_id)
    request = ds.CreateProjectRequest(
        project_id=name.removeprefix("projects/"),
        project=segment_pb2.Project(time_zone=args.time_zone or ""),
    )
    _show(out, client.call(client.definitions.CreateProject, request))


def _update(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = segment_pb2.Project(
        name=client.project_name(args.project_id), time_zone=args.time_zone, etag=args.etag or ""
    )
    request = ds.UpdateProjectRequest(
        project=project, update_mask=field_mask_pb2.FieldMask(paths=["time_zone"])
    )
    _show(out, client.call(client.definitions.UpdateProject, request))


def _delete(client: Client, out: Output, args: argparse.Namespace) -> None:
    name = client.project_name(args.project_id)
    request = ds.DeleteProjectRequest(name=name, force=args.force, etag=args.etag or "")
    client.call(client.definitions.DeleteProject, request)
    if out.json:
        out.data({"deleted": name})
    else:
        out.line(f"deleted: {name}")


def register(commands: Commands) -> None:
    commands.add(
        "list", _list, "list the projects your key holds a role on", "  segments projects list"
    )
    p = commands.add("get", _get, "show a project", "  segments projects get demo")
    p.add_argument("project_id", metavar="PROJECT")
    p = commands.add(
        "create",
        _create,
        "create a project with its system segments (admin on all projects)",
        "  segments projects create shop --time-zone America/New_York",
    )
    p.add_argument("project_id", metavar="PROJECT")
    p.add_argument("--time-zone", help="IANA time zone of day boundaries (default UTC)")
    p = commands.add(
        "update",
        _update,
        "change a project's time zone",
        "  segments projects update shop --time-zone Europe/Berlin",
    )
    p.add_argument("project_id", metavar="PROJECT")
    p.add_argument("--time-zone", required=True)
    p.add_argument("--etag", help="refuse if the project changed since this etag")
    p = commands.add(
        "delete",
        _delete,
        "delete a project (its id is never used again)",
        "  segments projects delete shop --force",
    )
    p.add_argument("project_id", metavar="PROJECT")
    p.add_argument("--force", action="store_true", help="also delete its segments")
    p.add_argument("--etag", help="refuse if the project changed since this etag")
