"""Configuration parsing, the `segments` command line and the demo data set."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from libs.common.config import Config, ConfigError
from libs.common.placeholder import PlaceholderService
from libs.common.server import HEALTH_SERVICE_NAME
from services import cli
from services.demo import (
    DEMO_DAYS,
    WORKED_EXAMPLE_MATCHES,
    WORKED_EXAMPLE_NEAR_MISSES,
    build_demo_data,
    demo_as_of,
    month_start,
)

from .conftest import health_status, reflected_services

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("SEGMENTS_PORT", "fifty", "SEGMENTS_PORT must be an integer"),
        ("SEGMENTS_EVALUATOR_PORT", "1.5", "SEGMENTS_EVALUATOR_PORT must be an integer"),
        ("SEGMENTS_SHUTDOWN_GRACE_SECONDS", "soon", "must be a number"),
        ("SEGMENTS_QUERY_MAX_MEMORY_BYTES", "4G", "must be an integer"),
        ("SEGMENTS_LOG_LEVEL", "verbose", "SEGMENTS_LOG_LEVEL must be"),
        ("SEGMENTS_SNAPSHOTS_KEPT", "0", "SEGMENTS_SNAPSHOTS_KEPT must be at least 1"),
        ("SEGMENTS_MEMBERSHIP_CACHE_MEMBERS", "-1", "must not be negative"),
        ("SEGMENTS_SNAPSHOT_CHECK_SECONDS", "-0.5", "must not be negative"),
        ("SEGMENTS_SNAPSHOT_CHECK_SECONDS", "a while", "must be a number"),
    ],
)
def test_config_errors(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env({key: value})


def test_config_defaults_and_overrides(tmp_path: Path) -> None:
    default = Config.from_env({})
    assert default == Config()
    assert default.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert default.peer_address("definition") == "127.0.0.1:50051"
    config = Config.from_env(
        {
            "SEGMENTS_PORT": "6000",
            "SEGMENTS_EXPORT_PORT": "6004",
            "SEGMENTS_DATA_DIR": str(tmp_path),
            "SEGMENTS_LOG_LEVEL": "debug",
            "SEGMENTS_DEFINITION_ADDRESS": "definition:50061",
            "SEGMENTS_SHUTDOWN_GRACE_SECONDS": "2.5",
            "SEGMENTS_SNAPSHOTS_KEPT": "5",
            "SEGMENTS_MEMBERSHIP_CACHE_MEMBERS": "0",
            "SEGMENTS_SNAPSHOT_CHECK_SECONDS": "0",
        }
    )
    assert (config.port, config.port_for("export"), config.log_level) == (6000, 6004, "DEBUG")
    assert config.export_dir == tmp_path / "exports"
    assert config.peer_address("definition") == "definition:50061"
    assert config.shutdown_grace_seconds == 2.5
    assert (config.snapshots_kept, config.membership_cache_members) == (5, 0)
    assert config.snapshot_check_seconds == 0


def test_cli_reports_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGMENTS_PORT", "not-a-port")
    assert cli.main(["serve", "all"]) == 2
    assert "SEGMENTS_PORT must be an integer" in capsys.readouterr().err


def test_cli_rejects_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "billing"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_")}
    env["SEGMENTS_DATA_DIR"] = str(tmp_path / "var")
    env["SEGMENTS_SHUTDOWN_GRACE_SECONDS"] = "5"
    return env


async def _wait_for_address(process: asyncio.subprocess.Process, seen: list[str]) -> str:
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=120)).decode()
        if not line:
            raise AssertionError("server exited before listening:\n" + "".join(seen))
        seen.append(line)
        found = re.search(r"serving \w+ on (\S+)$", line.strip())
        if found:
            return found.group(1)


async def test_serve_one_service_as_a_subprocess(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        "reporting",
        "--port",
        "0",
        cwd=REPO,
        env=_env(tmp_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    seen: list[str] = []
    try:
        address = await _wait_for_address(process, seen)
        async with grpc.aio.insecure_channel(address) as channel:
            name = "segments.v1.SegmentReportingService"
            (reporting,) = cli.build_services("reporting", Config(data_dir=tmp_path / "unused"))
            expected = (
                health_pb2.HealthCheckResponse.NOT_SERVING
                if isinstance(reporting, PlaceholderService)
                else health_pb2.HealthCheckResponse.SERVING
            )
            assert await health_status(channel, name) == expected
            assert name in await reflected_services(channel)
            assert HEALTH_SERVICE_NAME in await reflected_services(channel)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        rest = await asyncio.wait_for(process.stderr.read(), timeout=60)
        code = await asyncio.wait_for(process.wait(), timeout=60)
    logs = "".join(seen) + rest.decode()
    assert code == 0, logs
    assert '"event": "server_stopped"' in logs


async def test_demo_command_runs_to_the_end(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "demo",
        "--port",
        "0",
        cwd=REPO,
        env=_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert any(line.startswith("  demo: get project: ") for line in lines)
    assert any(line.startswith("  demo: ingest events: ") for line in lines)
    assert not any(": failed:" in line for line in lines), out.decode()
    # the data set ends at the start of today: counts as of now show the worked example
    assert "  demo: count ny-facebook-april-lapsed: 4 users now" in lines, out.decode()
    # the worked example's export finished: its file in the export directory
    exported = [line for line in lines if line.startswith("  demo: export ")]
    assert len(exported) == 1 and re.search(
        r": 4 rows \(\d+ blocked left out\) of .* <export dir>/demo/\w+\.csv ", exported[0]
    ), out.decode()
    key_file = tmp_path / "var" / "demo.key"
    assert key_file.read_text().startswith("sgk_")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert str(key_file) in err.decode()
    # the services' logs went to the demo's log file, not to the terminal
    assert not any(line.startswith("{") for line in err.decode().splitlines()), err.decode()
    assert '"event": "server_started"' in (tmp_path / "var" / "demo.log").read_text()


def test_demo_data_is_deterministic_and_realistic() -> None:
    first, second = build_demo_data(), build_demo_data()
    as_of = first.as_of
    assert as_of == demo_as_of() and as_of.hour == as_of.minute == 0
    assert first.events == second.events and first.profiles == second.profiles
    assert len(first.profiles) == 200
    assert 4000 <= len(first.events) <= 6000
    assert len({e.event_id for e in first.events}) == len(first.events)
    times = [e.event_time.ToDatetime().replace(tzinfo=as_of.tzinfo) for e in first.events]
    assert min(times) >= as_of - timedelta(days=DEMO_DAYS) and max(times) < as_of
    names = Counter(e.event_name for e in first.events)
    assert names["Charged"] > 100 and names["Added to Cart"] > names["Charged"]
    assert len(first.segments) >= 3


@pytest.mark.parametrize("day", ["2026-07-01", "2026-12-31", "2027-03-01", "2028-02-29"])
def test_demo_worked_example_users(day: str) -> None:
    as_of = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    data = build_demo_data(as_of=as_of)
    profiles = {p.user_id: p for p in data.profiles}
    two_weeks_ago = as_of - timedelta(weeks=2)
    acquisition, purchases, end = (month_start(as_of, n) for n in (3, 2, 0))
    for user_id, profile in profiles.items():
        properties = profile.properties
        acquired = properties["acquisition_date"].time_value.ToDatetime(tzinfo=UTC)
        charges = [
            e.event_time.ToDatetime(tzinfo=UTC)
            for e in data.events
            if e.user_id == user_id and e.event_name == "Charged"
        ]
        in_example = (
            properties["city"].string_value == "New York"
            and properties["acquisition_source"].string_value == "facebook"
            and acquisition <= acquired < purchases
        )
        assert in_example == (user_id in WORKED_EXAMPLE_MATCHES + WORKED_EXAMPLE_NEAR_MISSES)
        if in_example:
            assert len([t for t in charges if purchases <= t < end]) >= 3 or (
                user_id in WORKED_EXAMPLE_NEAR_MISSES
            )
            recent = any(t >= two_weeks_ago for t in charges)
            assert recent == (user_id in WORKED_EXAMPLE_NEAR_MISSES)


def test_service_database_urls() -> None:
    embedded = Config.from_env({"SEGMENTS_DATA_DIR": "/tmp/d"})
    assert embedded.service_database_url("export") == "sqlite+aiosqlite:////tmp/d/export.sqlite3"
    assert embedded.service_database_url("definition") == embedded.effective_database_url
    shared = Config.from_env({"SEGMENTS_DATABASE_URL": "postgresql+asyncpg://h/db"})
    assert shared.service_database_url("reporting") == "postgresql+asyncpg://h/db"
    own = Config.from_env(
        {
            "SEGMENTS_DATABASE_URL": "postgresql+asyncpg://h/db",
            "SEGMENTS_EXPORT_DATABASE_URL": "postgresql+asyncpg://h/exports",
        }
    )
    assert own.service_database_url("export") == "postgresql+asyncpg://h/exports"
    assert own.service_database_url("evaluator") == "postgresql+asyncpg://h/db"
