"""Calls from one Segments service to another (peer calls).

Every peer client opens its channel with `open_peer_channel()` and sends, on every call, the
metadata of `peer_metadata()`: what the current caller's request carried that the peer must
see too. Keep peer calls going through these two functions so that what travels with them is
decided in one place:

* the caller's credential (``authorization``), so that the peer decides with the caller's own
  rights: a peer never trusts a call without one. Outside any call (background work such as
  running an export job) the process's service key (`SEGMENTS_SERVICE_KEY`) is sent, else the
  process's internal credential, which only a process hosting the definition service accepts,
  and only from itself;
* the person a service principal acts for (``x-user-email``);
* the request id, so that one caller's request is one id in every log line it causes;
* the trace context (``traceparent``, when tracing is on), from the channel's interceptors.

`configure_peers(config)` (called by the server bootstrap) sets the service key and TLS:
with `SEGMENTS_TLS_CA_FILE`, peer channels use TLS (`libs.common.tls`).
"""

from __future__ import annotations

import grpc

from libs.common.access import internal_credential
from libs.common.config import Config
from libs.common.context import (
    AUTHORIZATION_KEY,
    REQUEST_ID_KEY,
    USER_EMAIL_KEY,
    current_credential,
    current_principal,
)
from libs.common.logging import current_request_id
from libs.common.telemetry import peer_interceptors
from libs.common.tls import channel_credentials

_service_key: str | None = None
#: TLS credentials of the peer addresses configured with a CA, by address.
_tls_by_address: dict[str, grpc.ChannelCredentials] = {}


def configure_peers(config: Config) -> None:
    """Takes the settings of peer calls from `config` (at start-up): the service key, and TLS
    for the addresses of this configuration's peers (so that servers with different settings
    in one process, as in tests, do not change each other's)."""
    global _service_key
    _service_key = config.service_key
    credentials = channel_credentials(config)
    for service in ("definition", "evaluator"):
        address = config.peer_address(service)
        if credentials is None:
            _tls_by_address.pop(address, None)
        else:
            _tls_by_address[address] = credentials


def peer_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata to send on a peer call made while serving the current call (or outside any)."""
    items: list[tuple[str, str]] = []
    principal = current_principal()
    if principal is not None:
        credential = current_credential()
        if principal.acting_for:
            items.append((USER_EMAIL_KEY, principal.acting_for))
    else:
        credential = _service_key or internal_credential()
    if credential:
        items.append((AUTHORIZATION_KEY, f"Bearer {credential}"))
    request_id = current_request_id()
    if request_id:
        items.append((REQUEST_ID_KEY, request_id))
    return tuple(items)


def open_peer_channel(address: str) -> grpc.aio.Channel:
    """A channel to the peer service at `address` (host:port): TLS when a CA is configured."""
    credentials = _tls_by_address.get(address)
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, interceptors=peer_interceptors())
    return grpc.aio.insecure_channel(address, interceptors=peer_interceptors())
