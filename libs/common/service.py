"""What a service hands to the server bootstrap (`libs.common.server`)."""

from __future__ import annotations

from typing import Protocol

import grpc


class Service(Protocol):
    """One gRPC service and the stores it owns.

    The bootstrap calls `start()` before the port opens (open stores, run migrations),
    `register()` to add the servicer, and `stop()` after the last in-flight call finished.
    A service may also have `async def drain()`, called when shutdown begins, before the
    in-flight calls get their grace period: it ends the calls that would otherwise never end
    (change feeds it serves, feeds it follows in this process), so that shutdown does not
    wait out the grace period for them.
    """

    #: Full gRPC service name, for example "segments.v1.SegmentDefinitionService".
    name: str

    def register(self, server: grpc.aio.Server) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
