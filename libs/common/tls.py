"""TLS of servers and of the calls they make to each other, from the configured PEM files.

* `server_credentials`: the server's certificate and key; with `tls_client_ca_file`, clients
  must present a certificate signed by that CA (mutual TLS), and others are refused during
  the handshake.
* `channel_credentials`: for peer calls (and our own clients such as the health probe): trust
  `tls_ca_file`, and present the process's certificate as client certificate when it has one.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from libs.common.config import Config, ConfigError


def _read(path: Path | None, variable: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from exc


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """None when the server runs without TLS (no certificate configured)."""
    cert = _read(config.tls_cert_file, "SEGMENTS_TLS_CERT_FILE")
    key = _read(config.tls_key_file, "SEGMENTS_TLS_KEY_FILE")
    if cert is None or key is None:
        return None
    client_ca = _read(config.tls_client_ca_file, "SEGMENTS_TLS_CLIENT_CA_FILE")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def channel_credentials(config: Config) -> grpc.ChannelCredentials | None:
    """None when calls to peers are plaintext (no CA configured)."""
    ca = _read(config.tls_ca_file, "SEGMENTS_TLS_CA_FILE")
    if ca is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=_read(config.tls_key_file, "SEGMENTS_TLS_KEY_FILE"),
        certificate_chain=_read(config.tls_cert_file, "SEGMENTS_TLS_CERT_FILE"),
    )
