"""`segments eval ...` and `segments snapshots ...` as a subprocess against a running server."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.server import RunningServer
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from segments.v1 import segment_pb2
from tests.evaluator.grpc_stack import did, past
from tests.evaluator.support import event, stream
from tests.support.auth import authorized_channel, create_project

from .cli_support import REPO, Cli, serve_all

PROJECT = "clieval"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AS_OF = "2026-07-01T00:00:00Z"
EXAMPLE = str(REPO / "docs" / "examples" / "ny-buyers.yaml")


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, chdb_engine: ChdbEngine
) -> AsyncIterator[RunningServer]:
    async with serve_all(tmp_path_factory.mktemp("cli_eval"), chdb_engine) as running:
        async with authorized_channel(running.address) as channel:
            await create_project(channel, PROJECT)
            definitions = dpb_grpc.SegmentDefinitionServiceStub(channel)
            await definitions.CreateSegment(
                dpb.CreateSegmentRequest(
                    parent=f"projects/{PROJECT}",
                    segment_id="buyers",
                    segment=segment_pb2.Segment(
                        display_name="Buyers", definition=past(did("Charged"))
                    ),
                )
            )
            evaluator = pb_grpc.SegmentEvaluatorServiceStub(channel)
            events = [event(f"e{i}", f"u{i}", "Charged", T0) for i in range(1, 4)]
            await evaluator.IngestEvents(
                stream([pb.IngestEventsRequest(parent=f"projects/{PROJECT}", events=events)])
            )
            profiles = [
                pb.Profile(user_id=f"u{i}", email=f"u{i}@example.com", display_name=f"User {i}")
                for i in range(1, 4)
            ]
            profiles[0].properties["city"].string_value = "New York, NY"
            await evaluator.UpsertProfiles(
                pb.UpsertProfilesRequest(parent=f"projects/{PROJECT}", profiles=profiles)
            )
        yield running


@pytest.fixture
def cli(server: RunningServer) -> Cli:
    return Cli(server.address, PROJECT)


async def test_count_estimate_explain(cli: Cli) -> None:
    counted = await cli("eval", "count", "buyers", "--as-of", AS_OF, "--sample", "5")
    assert counted.code == 0, counted.err
    assert "members" in counted.out and "3" in counted.out and "u1" in counted.out
    as_json = (await cli("eval", "count", "buyers", "--as-of", AS_OF, "-o", "json")).json()
    assert as_json["user_count"] == "3" and as_json["as_of"] == AS_OF
    estimate = await cli("eval", "estimate", EXAMPLE, "--as-of", AS_OF, "-o", "json")
    assert estimate.code == 0, estimate.err
    assert estimate.json()["user_count"] == "0"  # nobody's city is exactly "New York"
    explained = await cli("eval", "explain", "buyers")
    assert explained.code == 0
    assert "-- SQL" in explained.out and "SELECT" in explained.out and "-- plan" in explained.out
    from_file = await cli("eval", "explain", "-f", EXAMPLE, "-o", "json")
    assert from_file.code == 0 and "sql" in from_file.json()
    neither = await cli("eval", "explain")
    assert neither.code == 2
    bad_time = await cli("eval", "count", "buyers", "--as-of", "yesterday")
    assert bad_time.code == 2 and "ISO 8601" in bad_time.err
    missing = await cli("eval", "count", "nobody")
    assert missing.code == 3


async def test_audience_to_files(cli: Cli, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    written = await cli("eval", "audience", "buyers", "--as-of", AS_OF, "--out", str(ids))
    assert written.code == 0, written.err
    assert sorted(ids.read_text().split()) == ["u1", "u2", "u3"]
    table = tmp_path / "members.csv"
    with_fields = await cli(
        "eval", "audience", "buyers", "--fields", "email,city", "--out", str(table)
    )
    assert with_fields.code == 0, with_fields.err
    rows = list(csv.reader(io.StringIO(table.read_text())))
    assert rows[0] == ["user_id", "email", "city"]
    assert sorted(rows[1:]) == [
        ["u1", "u1@example.com", "New York, NY"],
        ["u2", "u2@example.com", ""],
        ["u3", "u3@example.com", ""],
    ]
    to_stdout = await cli("eval", "audience", "buyers")
    assert sorted(to_stdout.out.split()) == ["u1", "u2", "u3"]


async def test_check_membership(cli: Cli, tmp_path: Path) -> None:
    args = await cli("eval", "check", "buyers", "u1", "u9")
    assert args.code == 0
    assert "1 of 2 are members" in args.err
    ids = tmp_path / "ids.txt"
    ids.write_text("u2\n\n  u3  \nu4\n")
    from_file = await cli(
        "eval", "check", "buyers", "--ids-file", str(ids), "--realtime", "-o", "json"
    )
    assert from_file.json()["is_member"] == [True, True, False]
    from_stdin = await cli("eval", "check", "buyers", "--ids-file", "-", "-o", "json", stdin="u3\n")
    assert from_stdin.json()["member_user_ids"] == ["u3"]
    nothing = await cli("eval", "check", "buyers")
    assert nothing.code == 2 and "no user ids" in nothing.err


async def test_snapshots(cli: Cli) -> None:
    first = await cli(
        "snapshots", "create", "buyers", "--as-of", "2026-05-01T00:00:00Z", "-o", "json"
    )
    assert first.code == 0, first.err
    assert first.json()["user_count"] == "0"
    second = await cli("snapshots", "create", "buyers", "--as-of", AS_OF, "-o", "json")
    v1, v2 = first.json()["version"], second.json()["version"]
    listed = await cli("snapshots", "list", "buyers")
    assert listed.code == 0 and "VERSION" in listed.out
    got = await cli("snapshots", "get", "buyers", str(v2), "-o", "json")
    assert got.json()["user_count"] == "3"
    changes = await cli("snapshots", "changes", "buyers", str(v1), str(v2))
    assert changes.code == 0
    assert "3 entered, 0 left" in changes.err and "ENTERED" in changes.out
    check = await cli("eval", "check", "buyers", "u1", "--snapshot", str(v1), "-o", "json")
    assert check.json()["is_member"] == [False]
    missing = await cli("snapshots", "get", "buyers", "999")
    assert missing.code == 3
