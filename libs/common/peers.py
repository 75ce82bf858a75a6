"""Calls from one Segments service to another (peer calls).

Every peer client opens its channel with `open_peer_channel()` and sends, on every call, the
metadata of `peer_metadata()`: what the current caller's request carried that the peer must
see too (its request id, so that one caller's request is one id in every log line it causes).
Keep peer calls going through these two functions so that what travels with them is decided
in one place.
"""

from __future__ import annotations

import grpc

from libs.common.context import REQUEST_ID_KEY
from libs.common.logging import current_request_id


def peer_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata to send on a peer call made while serving the current call."""
    request_id = current_request_id()
    return ((REQUEST_ID_KEY, request_id),) if request_id else ()


def open_peer_channel(address: str) -> grpc.aio.Channel:
    """A channel to the peer service at `address` (host:port)."""
    return grpc.aio.insecure_channel(address)
