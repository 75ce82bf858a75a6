"""`segments segments ...` and what every client command shares (help, connection, keys,
errors, exit codes), run as a subprocess against a running server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.server import RunningServer

from .cli_support import REPO, Cli, serve_project

EXAMPLE = str(REPO / "docs" / "examples" / "ny-buyers.yaml")
PROJECT = "clishop"


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, chdb_engine: ChdbEngine
) -> AsyncIterator[RunningServer]:
    async with serve_project(
        tmp_path_factory.mktemp("cli_segments"), chdb_engine, PROJECT
    ) as running:
        yield running


@pytest.fixture
def cli(server: RunningServer) -> Cli:
    return Cli(server.address, PROJECT)


async def test_help_lists_every_group_with_examples(cli: Cli) -> None:
    top = await cli("--help")
    assert top.code == 0
    for group in ("serve", "demo", "segments", "eval", "snapshots", "ingest", "reports",
                  "exports", "projects", "keys"):  # fmt: skip
        assert group in top.out
    create = await cli("segments", "create", "--help")
    assert create.code == 0
    assert "examples:" in create.out and "exit codes:" in create.out
    assert "--key" in create.out and "--tls-ca" in create.out


async def test_create_get_list_update_clone_delete(cli: Cli, tmp_path: Path) -> None:
    created = await cli("segments", "create", "-f", EXAMPLE)
    assert created.code == 0, created.err
    assert "projects/clishop/segments/ny-buyers" in created.out
    again = await cli("segments", "create", "-f", EXAMPLE)
    assert again.code == 4
    assert "ALREADY_EXISTS" in again.err and "SEGMENT_ID_TAKEN" in again.err

    shown = await cli("segments", "get", "ny-buyers")
    assert shown.code == 0
    assert "New York buyers" in shown.out and "event_name: Charged" in shown.out

    listed = await cli("segments", "list", "--search", "york", "-o", "json")
    assert listed.code == 0
    assert [s["segment_id"] for s in listed.json()["segments"]] == ["ny-buyers"]
    table = await cli("segments", "list", "--order-by", "display_name", "--all")
    assert table.code == 0 and "ny-buyers" in table.out and "All Users" in table.out

    # get -o json, edit, update: the etag in the file refuses a second, stale write.
    saved = tmp_path / "ny.json"
    saved.write_text((await cli("segments", "get", "ny-buyers", "-o", "json")).out)
    saved.write_text(saved.read_text().replace("New York buyers", "NY buyers"))
    updated = await cli("segments", "update", "-f", str(saved))
    assert updated.code == 0, updated.err
    assert "NY buyers" in updated.out
    stale = await cli("segments", "update", "-f", str(saved))
    assert stale.code == 4 and "ABORTED" in stale.err and "STALE_ETAG" in stale.err
    forced = await cli("segments", "update", "-f", str(saved), "--force", "-o", "json")
    assert forced.code == 0 and forced.json()["display_name"] == "NY buyers"

    clone = await cli("segments", "clone", "ny-buyers", "--name", "NY copy", "--id", "ny-copy")
    assert clone.code == 0 and "projects/clishop/segments/ny-copy" in clone.out
    deleted = await cli("segments", "delete", "ny-copy")
    assert deleted.code == 0
    gone = await cli("segments", "get", "projects/clishop/segments/ny-copy")
    assert gone.code == 3 and "NOT_FOUND" in gone.err


async def test_dependants_and_refused_delete(cli: Cli, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "display_name: Charged ever\n"
        "definition: {past_behavior: {root: {did_event: {event: {event_name: Charged},"
        " window: {all_time: {}}}}}}\n"
    )
    assert (await cli("segments", "create", "-f", str(base), "--id", "charged-ever")).code == 0
    user = tmp_path / "user.yaml"
    user.write_text(
        "display_name: Charged ever, not test\n"
        "definition:\n"
        "  past_behavior:\n"
        "    included_segments: [projects/clishop/segments/charged-ever]\n"
    )
    assert (await cli("segments", "create", "-f", str(user), "--id", "charged-user")).code == 0
    dependants = await cli("segments", "dependants", "charged-ever")
    assert dependants.code == 0 and "charged-user" in dependants.out
    refused = await cli("segments", "delete", "charged-ever")
    assert refused.code == 4
    assert "FAILED_PRECONDITION" in refused.err and "charged-user" in refused.err
    both = await cli("segments", "delete", "charged-user", "charged-ever", "-o", "json")
    assert both.code == 0, both.err
    assert len(both.json()["deleted"]) == 2


async def test_validate_reports_every_field_to_fix(cli: Cli, tmp_path: Path) -> None:
    assert (await cli("segments", "validate", EXAMPLE)).out.startswith("valid: a PAST_BEHAVIOR")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "definition:\n  past_behavior:\n    root:\n      did_event:\n"
        "        event: {event_name: ''}\n"
        "        window: {last: {amount: 0, unit: TIME_UNIT_DAY}}\n"
    )
    result = await cli("segments", "validate", str(bad))
    assert result.code == 4
    assert "INVALID_ARGUMENT" in result.err and "fields to fix:" in result.err
    assert "did_event.event.event_name" in result.err
    assert "did_event.window.last.amount" in result.err
    as_json = await cli("segments", "validate", str(bad), "-o", "json")
    error = json.loads(as_json.err)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert {v["field"] for v in error["field_violations"]} >= {
        "definition.past_behavior.root.did_event.window.last.amount"
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("display_name: [unclosed\n", "not valid YAML or JSON at line 2"),
        ("- a list\n", "expected an object"),
        ("display_name: x\nno_such_field: 1\n", "no_such_field"),
        ("display_name: x\ndefinition: {past_behavior: {root: {operator: MAYBE}}}\n", "MAYBE"),
    ],
)
async def test_bad_files_are_usage_errors(
    cli: Cli, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "segment.yaml"
    path.write_text(content)
    result = await cli("segments", "create", "-f", str(path))
    assert result.code == 2, result
    assert message in result.err and str(path) in result.err


async def test_connection_and_credential_failures(cli: Cli, tmp_path: Path) -> None:
    no_project = await cli("segments", "list", env={"SEGMENTS_PROJECT": ""})
    assert no_project.code == 2 and "--project" in no_project.err
    missing_file = await cli("segments", "create", "-f", str(tmp_path / "nope.yaml"))
    assert missing_file.code == 2 and "cannot read" in missing_file.err
    unknown_key = await cli("segments", "list", key="sgk_000000000000_" + "x" * 43)
    assert unknown_key.code == 5 and "UNAUTHENTICATED" in unknown_key.err
    no_key = await cli("segments", "list", key="")
    assert no_key.code == 5
    # The key read from a file (what `make demo` writes).
    key_file = tmp_path / "key"
    key_file.write_text(cli.key + "\n")
    from_file = await cli("segments", "list", key="", env={"SEGMENTS_API_KEY_FILE": str(key_file)})
    assert from_file.code == 0, from_file.err
    empty = tmp_path / "empty"
    empty.write_text("")
    assert (await cli("segments", "list", "--key-file", str(empty), key="")).code == 2
    closed = await cli("segments", "list", "--address", "127.0.0.1:1", "--timeout", "5")
    assert closed.code == 1 and "UNAVAILABLE" in closed.err
    bad_ca = await cli("segments", "list", "--tls-ca", str(tmp_path / "no-ca.pem"))
    assert bad_ca.code == 2 and "TLS CA file" in bad_ca.err
    usage = await cli("segments", "list", "--page-size", "many")
    assert usage.code == 2 and "invalid int value" in usage.err
