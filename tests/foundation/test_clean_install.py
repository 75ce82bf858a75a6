"""The package builds and serves from a clean virtual environment (non-editable install)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from libs.common.config import SERVICE_NAMES
from tests.support.auth import ADMIN_KEY, bearer

from .conftest import health_status, reflected_services

REPO = Path(__file__).resolve().parents[2]
FULL_NAMES = {
    "segments.v1.SegmentDefinitionService",
    "segments.v1.SegmentEvaluatorService",
    "segments.v1.SegmentReportingService",
    "segments.v1.SegmentExportService",
}


def _copy_sources(target: Path) -> None:
    """The working tree's files that git would see (tracked or new, never ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        source = REPO / raw.decode()
        if source.is_file():
            destination = target / raw.decode()
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _build_venv(tmp_path: Path) -> Path:
    """A new virtual environment with the package installed from a copy of the sources."""
    source = tmp_path / "src"
    _copy_sources(source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "-c", str(source / "requirements.lock"), str(source)],
        check=True,
        cwd=tmp_path,
        timeout=840,
    )
    return venv


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_clean_venv_install_and_serve(tmp_path: Path) -> None:
    venv = await asyncio.to_thread(_build_venv, tmp_path)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_")}
    env.pop("PYTHONPATH", None)
    env["SEGMENTS_DATA_DIR"] = str(tmp_path / "data")
    env["SEGMENTS_BOOTSTRAP_ADMIN_KEY"] = ADMIN_KEY
    process = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "segments"),
        "serve",
        "all",
        "--port",
        str(port),
        cwd=tmp_path,  # far from the repository: only the installed package is importable
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=120)
            for name in FULL_NAMES:
                status = await health_status(channel, name)
                # a service that implements nothing yet says NOT_SERVING; the others SERVING
                assert status in (
                    health_pb2.HealthCheckResponse.SERVING,
                    health_pb2.HealthCheckResponse.NOT_SERVING,
                )
            assert await health_status(channel, "") == health_pb2.HealthCheckResponse.SERVING
            assert await reflected_services(channel) >= FULL_NAMES
            # One RPC through the installed generated code: it answers, whatever its state.
            call = channel.unary_unary(
                "/segments.v1.SegmentReportingService/ListDailyRuns",
                request_serializer=lambda _: b"",
                response_deserializer=lambda data: data,
            )
            try:
                await call(None, timeout=30, metadata=bearer(ADMIN_KEY))
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in {
                    grpc.StatusCode.UNIMPLEMENTED,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND,
                }, exc
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        logs = (await asyncio.wait_for(process.stderr.read(), timeout=120)).decode()
        code = await asyncio.wait_for(process.wait(), timeout=120)
    assert code == 0, logs
    assert '"event": "server_stopped"' in logs
    assert len(SERVICE_NAMES) == len(FULL_NAMES)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
