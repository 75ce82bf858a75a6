"""TLS and mutual TLS from configured PEM files, with a throwaway CA: calls over TLS, a
client certificate checked, refused when missing or issued by another CA, and the access
decisions of a second process asked over mutual TLS."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from libs.common.config import Config
from libs.common.server import RunningServer, ServerError
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import reporting_service_pb2 as rpb
from segments.v1 import reporting_service_pb2_grpc as rpb_grpc
from services import healthcheck
from services.definition.service import DefinitionService
from services.reporting.service import build_service as build_reporting
from tests.support.auth import ADMIN_KEY, bearer
from tests.support.tls import Issued, ThrowawayCA


def _credentials(ca: Path, client: Issued | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


async def _get_project(address: str, credentials: grpc.ChannelCredentials | None) -> str:
    """The outcome of GetProject over TLS (or plaintext when `credentials` is None)."""
    channel = (
        grpc.aio.secure_channel(address, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        stub = dpb_grpc.SegmentDefinitionServiceStub(channel)
        try:
            await stub.CreateProject(
                dpb.CreateProjectRequest(project_id="tls"), metadata=bearer(), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return "OK"


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA(tmp_path)


async def test_tls_and_mutual_tls(tmp_path: Path, ca: ThrowawayCA) -> None:
    server_cert = ca.issue("segments-server", server=True)
    client_cert = ca.issue("campaign-orchestrator", server=False)
    rogue = ThrowawayCA(tmp_path, "rogue CA").issue("intruder", server=False)
    base = replace(
        Config(),
        data_dir=tmp_path,
        shutdown_grace_seconds=1.0,
        tls_cert_file=server_cert.cert,
        tls_key_file=server_cert.key,
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'tls.sqlite3'}"

    # TLS: a client trusting the CA is served; a plaintext client is not
    server = RunningServer(
        [DefinitionService(url, bootstrap_admin_key=ADMIN_KEY)], base, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        assert await _get_project(server.address, _credentials(ca.cert)) == "OK"
        assert await _get_project(server.address, None) == "UNAVAILABLE"
    finally:
        await server.stop()

    # mutual TLS: only clients with a certificate of the configured CA
    mutual = replace(base, tls_client_ca_file=ca.cert)
    server = RunningServer(
        [DefinitionService(url, bootstrap_admin_key=ADMIN_KEY)], mutual, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        with_cert = _credentials(ca.cert, client_cert)
        assert await _get_project(server.address, with_cert) == "ALREADY_EXISTS"
        assert await _get_project(server.address, _credentials(ca.cert)) == "UNAVAILABLE"
        assert await _get_project(server.address, _credentials(ca.cert, rogue)) == "UNAVAILABLE"
    finally:
        await server.stop()


async def test_peer_calls_and_the_health_probe_over_mutual_tls(
    tmp_path: Path, ca: ThrowawayCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition_cert = ca.issue("definition", server=True)
    reporting_cert = ca.issue("reporting", server=True)
    config = replace(
        Config(),
        data_dir=tmp_path,
        shutdown_grace_seconds=1.0,
        tls_cert_file=definition_cert.cert,
        tls_key_file=definition_cert.key,
        tls_client_ca_file=ca.cert,
        tls_ca_file=ca.cert,
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'peer.sqlite3'}"
    definition = RunningServer(
        [DefinitionService(url, bootstrap_admin_key=ADMIN_KEY)], config, host="127.0.0.1", port=0
    )
    await definition.start()
    reporting_config = replace(
        config,
        tls_cert_file=reporting_cert.cert,
        tls_key_file=reporting_cert.key,
        definition_address=definition.address,
    )
    reporting = RunningServer(
        [build_reporting(reporting_config)], reporting_config, host="127.0.0.1", port=0
    )
    await reporting.start()
    try:
        client = ca.issue("client", server=False)
        assert await _get_project(definition.address, _credentials(ca.cert, client)) == "OK"
        async with grpc.aio.secure_channel(
            reporting.address, _credentials(ca.cert, client)
        ) as channel:
            stub = rpb_grpc.SegmentReportingServiceStub(channel)
            listed = await stub.ListDailyRuns(
                rpb.ListDailyRunsRequest(parent="projects/tls"),
                metadata=bearer(ADMIN_KEY),
                timeout=10,
            )
            assert list(listed.daily_runs) == []
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListDailyRuns(
                    rpb.ListDailyRunsRequest(parent="projects/tls"),
                    metadata=bearer("sgk_00000000dead_" + "d" * 43),
                    timeout=10,
                )
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # the container health probe speaks TLS when the CA is configured
        for name, value in (
            ("SEGMENTS_TLS_CA_FILE", ca.cert),
            ("SEGMENTS_TLS_CERT_FILE", reporting_cert.cert),
            ("SEGMENTS_TLS_KEY_FILE", reporting_cert.key),
        ):
            monkeypatch.setenv(name, str(value))
        # (of the definition server: a service that implements nothing is NOT_SERVING)
        assert await asyncio.to_thread(healthcheck.main, [definition.address]) == 0
    finally:
        await reporting.stop()
        await definition.stop()


async def test_unreadable_tls_files_stop_the_server(tmp_path: Path) -> None:
    config = replace(
        Config(),
        data_dir=tmp_path,
        tls_cert_file=tmp_path / "missing.crt",
        tls_key_file=tmp_path / "missing.key",
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}"
    with pytest.raises(ServerError, match="SEGMENTS_TLS_CERT_FILE"):
        await RunningServer([DefinitionService(url)], config, host="127.0.0.1", port=0).start()
