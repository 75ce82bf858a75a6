"""`segments ingest ...`, `segments projects ...` and `segments keys ...` as a subprocess against
a running server; and the reports and exports groups."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.server import RunningServer

from .cli_support import Cli, serve_project

PROJECT = "cliingest"


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, chdb_engine: ChdbEngine
) -> AsyncIterator[RunningServer]:
    async with serve_project(
        tmp_path_factory.mktemp("cli_ingest"), chdb_engine, PROJECT
    ) as running:
        yield running


@pytest.fixture
def cli(server: RunningServer) -> Cli:
    return Cli(server.address, PROJECT)


async def test_events_from_json_lines_and_csv(cli: Cli, tmp_path: Path) -> None:
    lines = [
        {"event_id": "e1", "user_id": "u1", "event_name": "Charged",
         "event_time": "2026-06-01T10:00:00Z", "properties": {"amount": 12.5, "paid": True}},
        {"event_id": "e2", "user_id": "u2", "event_name": "Charged",
         "event_time": "2026-06-02T10:00:00Z",
         "properties": {"at": {"time_value": "2026-06-02T09:00:00Z"}}},
    ]  # fmt: skip
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps(line) for line in lines)
        + "\n{not json\n"
        + json.dumps({"event_id": "e3", "user_id": "u3", "event_name": "Charged"})
        + "\n"
    )
    result = await cli("ingest", "events", str(jsonl), "-o", "json")
    assert result.code == 4, result.err  # some lines refused
    report = result.json()
    assert (report["accepted"], report["rejected"], report["unreadable"]) == (2, 1, 1)
    assert [e["line"] for e in report["errors"]] == [3, 4]
    assert "event_time" in report["errors"][1]["field"]
    again = await cli("ingest", "events", str(jsonl), "-o", "json")
    assert again.json()["duplicates"] == 2

    table = tmp_path / "events.csv"
    table.write_text(
        "event_id,user_id,event_name,event_time,amount:number\n"
        "c1,u4,Charged,2026-06-03T10:00:00Z,20\n"
        "c2,u5,Charged,2026-06-03T10:00:00Z,lots\n"
        "c3,u6,Charged\n"
    )
    from_csv = await cli("ingest", "events", str(table))
    assert from_csv.code == 4
    assert "accepted" in from_csv.out and "lots" in from_csv.out and "cells" in from_csv.out
    bad_header = tmp_path / "header.csv"
    bad_header.write_text("user_id,event_name\n")
    assert (await cli("ingest", "events", str(bad_header))).code == 2
    no_format = await cli("ingest", "events", str(tmp_path / "events.txt"))
    assert no_format.code == 2 and "--format" in no_format.err


async def test_profiles_and_custom_list(cli: Cli, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.csv"
    profiles.write_text(
        "user_id,email,display_name,blocked,city,age:number\n"
        "u1,u1@example.com,Ana,false,Berlin,31\n"
        "u2,u2@example.com,Bo,true,Paris,\n"
        "u3,u3@example.com,Cy,false,Rome,old\n"
    )
    result = await cli("ingest", "profiles", str(profiles), "-o", "json")
    assert result.code == 4
    assert (result.json()["upserted"], result.json()["unreadable"]) == (2, 1)
    assert result.json()["errors"][0]["line"] == 4
    jsonl = tmp_path / "profiles.jsonl"
    jsonl.write_text('{"user_id": "u7", "properties": {"city": "Oslo"}}\n')
    assert (await cli("ingest", "profiles", str(jsonl))).code == 0

    segment = tmp_path / "vips.yaml"
    segment.write_text(
        "display_name: VIPs\ndefinition: {custom_list: {identity_kind: IDENTITY_KIND_EMAIL}}\n"
    )
    created = await cli("segments", "create", "-f", str(segment), "--id", "vips")
    assert created.code == 0, created.err
    upload = tmp_path / "vips.csv"
    upload.write_text("email\nu1@example.com\nnobody@example.com\nu2@example.com\n\n")
    report = await cli("ingest", "list", "vips", str(upload), "--header-row", "-o", "json")
    assert report.code in (0, 4), report.err
    body = report.json()
    assert int(body["matched_count"]) == 2 and int(body["unmatched_count"]) == 1
    counted = await cli("eval", "count", "vips", "-o", "json")
    assert counted.json()["user_count"] == "2"


async def test_projects_and_keys(cli: Cli) -> None:
    created = await cli("projects", "create", "cli-other", "--time-zone", "Europe/Berlin")
    assert created.code == 0, created.err
    assert "Europe/Berlin" in created.out
    assert (await cli("projects", "create", "cli-other")).code == 4
    updated = await cli("projects", "update", "cli-other", "--time-zone", "UTC", "-o", "json")
    assert updated.json()["time_zone"] == "UTC"
    listed = await cli("projects", "list", "-o", "json")
    assert {"projects/cli-other", f"projects/{PROJECT}"} <= {
        p["name"] for p in listed.json()["projects"]
    }
    assert (await cli("projects", "get", "nowhere")).code == 3

    key = await cli(
        "keys", "create", "--person", "ana@example.com", "--grant", "cli-other=viewer",
        "--name", "laptop", "-o", "json",
    )  # fmt: skip
    assert key.code == 0, key.err
    secret, name = key.json()["secret"], key.json()["api_key"]["name"]
    key_id = name.removeprefix("apiKeys/")
    viewer = Cli(cli.address, "cli-other", key=secret)
    assert (await viewer("segments", "list")).code == 0
    denied = await viewer("projects", "update", "cli-other", "--time-zone", "UTC")
    assert denied.code == 5 and "PERMISSION_DENIED" in denied.err
    shown = await cli("keys", "get", key_id)
    assert "ana@example.com" in shown.out and "cli-other=viewer" in shown.out
    assert key_id in (await cli("keys", "list")).out
    assert (await cli("keys", "revoke", key_id)).code == 0
    assert (await viewer("segments", "list")).code == 5
    bad_grant = await cli("keys", "create", "--person", "a@example.com", "--grant", "x=boss")
    assert bad_grant.code == 2 and "PROJECT=ROLE" in bad_grant.err
    deleted = await cli("projects", "delete", "cli-other", "--force")
    assert deleted.code == 0


async def test_reports_commands(cli: Cli, tmp_path: Path) -> None:
    """The reports commands against the reporting service: a day's run, its trend point,
    reachability, the sample, the run log; a live rate of a segment that is not live."""
    jsonl = tmp_path / "opened.jsonl"
    jsonl.write_text(json.dumps({"event_id": "r1", "user_id": "ru1", "event_name": "Opened",
                                 "event_time": "2026-06-30T10:00:00Z"}) + "\n")  # fmt: skip
    ingested = await cli("ingest", "events", str(jsonl))
    assert ingested.code == 0, ingested
    run = await cli("reports", "run", "--date", "2026-06-30", "-o", "json")
    assert run.code == 0, run
    assert run.json()["state"] == "DAILY_RUN_STATE_SUCCEEDED"
    again = await cli("reports", "run-get", "2026-06-30", "-o", "json")
    assert again.code == 0 and again.json()["name"] == run.json()["name"]
    runs = await cli("reports", "runs", "-o", "json")
    # the scheduler may meanwhile have run the days since (up to yesterday) on its own
    assert run.json()["name"] in [r["name"] for r in runs.json()["daily_runs"]]
    png = tmp_path / "trend.png"
    trend = await cli("reports", "trend", "all-users", "--start", "2026-06-29",
                      "--end", "2026-06-30", "--png", str(png), "-o", "json")  # fmt: skip
    assert trend.code == 0, trend
    points = trend.json()["points"]
    assert [p["computed"] for p in points] == [False, True]
    assert int(points[1]["user_count"]) >= 1 and png.stat().st_size > 0
    reach = await cli("reports", "reachability", "all-users", "--date", "2026-06-30")
    assert reach.code == 0 and "EMAIL" in reach.out, reach
    sample = await cli("reports", "sample", "all-users", "--date", "2026-06-30", "-o", "json")
    assert "ru1" in [p["user_id"] for p in sample.json()["profiles"]]
    now = await cli("reports", "sample", "all-users")
    assert now.code == 0 and "ru1" in now.out
    live = await cli("reports", "live-rate", "all-users")
    assert live.code != 0 and "FAILED_PRECONDITION" in live.err
    assert (await cli("reports", "trend", "all-users", "--start", "June")).code == 2


async def test_exports_commands(server: RunningServer, tmp_path: Path) -> None:
    """The exports commands against the export service, on a project of their own: a FILE job
    started and watched to its end, shown, listed and downloaded (read back with the csv
    module); a STREAM job downloaded to stdout; a pending job cancelled; refusals."""
    cli = Cli(server.address, "cliexport")
    assert (await cli("projects", "create", "cliexport")).code == 0
    profiles = tmp_path / "profiles.csv"
    profiles.write_text(
        "user_id,email,display_name,blocked,city\n"
        'x1,x1@example.com,"Ana, the first",false,=cmd\n'
        "x2,x2@example.com,Bo,true,Paris\n"
        "x3,,Cy,false,Zürich\n"
    )
    assert (await cli("ingest", "profiles", str(profiles))).code == 0
    fields = "user_id,display_name,city"

    started = await cli("exports", "start", "all-users", "--fields", fields, "--watch",
                        "-o", "json")  # fmt: skip
    assert started.code == 0, started
    job = started.json()
    assert job["state"] == "EXPORT_JOB_STATE_SUCCEEDED"
    assert (int(job["exported_count"]), int(job["blocked_skipped_count"])) == (2, 1)
    job_id = job["name"].rsplit("/", 1)[1]
    shown = await cli("exports", "get", job_id)
    assert shown.code == 0 and "SUCCEEDED" in shown.out and job["output_path"] in shown.err
    listed = await cli("exports", "list", "-o", "json")
    assert [j["name"] for j in listed.json()["export_jobs"]] == [job["name"]]
    target = tmp_path / "all.csv"
    downloaded = await cli("exports", "download", job_id, "--out", str(target))
    assert downloaded.code == 0, downloaded
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["user_id", "display_name", "city"],
                    ["x1", "Ana, the first", "'=cmd"], ["x3", "Cy", "Zürich"]]  # fmt: skip
    finished = await cli("exports", "cancel", job_id)
    assert finished.code == 4 and "EXPORT_JOB_FINISHED" in finished.err, finished

    streamed = await cli("exports", "start", "all-users", "--fields", "user_id", "--stream",
                         "-o", "json")  # fmt: skip
    assert streamed.code == 0, streamed
    stream_id = streamed.json()["name"].rsplit("/", 1)[1]
    to_stdout = await cli("exports", "download", stream_id)
    assert to_stdout.code == 0 and to_stdout.out == "user_id\r\nx1\r\nx3\r\n", to_stdout

    pending = await cli("exports", "start", "all-users", "--fields", "user_id", "--stream",
                        "-o", "json")  # fmt: skip
    pending_id = pending.json()["name"].rsplit("/", 1)[1]
    cancelled = await cli("exports", "cancel", pending_id, "-o", "json")
    assert cancelled.code == 0 and cancelled.json()["state"] == "EXPORT_JOB_STATE_CANCELLED"
    watched = await cli("exports", "watch", pending_id)
    assert watched.code == 1 and "CANCELLED" in watched.out, watched

    assert (await cli("exports", "start", "all-users", "--fields", ",")).code == 2
    unknown = await cli("exports", "get", "0000000000000000")
    assert unknown.code == 3 and "EXPORT_JOB_NOT_FOUND" in unknown.err, unknown
    bad = await cli("exports", "start", "all-users", "--fields", "user_id,user_id")
    assert bad.code == 4 and "fields" in bad.err, bad
