"""The command-line client over TLS and mutual TLS (a throwaway CA)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from libs.common.config import Config
from libs.common.server import RunningServer
from services.definition.service import DefinitionService
from tests.support.auth import ADMIN_KEY
from tests.support.tls import ThrowawayCA

from .cli_support import Cli


async def test_cli_over_mutual_tls(tmp_path: Path) -> None:
    ca = ThrowawayCA(tmp_path)
    server_cert = ca.issue("segments-server", server=True)
    client_cert = ca.issue("operator-laptop", server=False)
    config = replace(
        Config(),
        data_dir=tmp_path,
        shutdown_grace_seconds=1.0,
        tls_cert_file=server_cert.cert,
        tls_key_file=server_cert.key,
        tls_client_ca_file=ca.cert,
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'tls.sqlite3'}"
    server = RunningServer(
        [DefinitionService(url, bootstrap_admin_key=ADMIN_KEY)], config, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        cli = Cli(server.address)
        variables = {
            "SEGMENTS_TLS_CA_FILE": str(ca.cert),
            "SEGMENTS_TLS_CERT_FILE": str(client_cert.cert),
            "SEGMENTS_TLS_KEY_FILE": str(client_cert.key),
        }
        mutual = await cli("projects", "list", "--timeout", "10", env=variables)
        assert mutual.code == 0, mutual.err
        no_cert = await cli("projects", "list", "--timeout", "10", "--tls-ca", str(ca.cert))
        assert no_cert.code == 1 and "UNAVAILABLE" in no_cert.err
        plaintext = await cli("projects", "list", "--timeout", "10")
        assert plaintext.code == 1 and "UNAVAILABLE" in plaintext.err
        half = await cli(
            "projects", "list", "--tls-ca", str(ca.cert), "--tls-cert", str(client_cert.cert)
        )
        assert half.code == 2 and "go together" in half.err
    finally:
        await server.stop()
