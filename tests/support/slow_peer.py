"""A network stand-in between a service and a real peer: relays server-streaming calls of one
method byte for byte, delaying each response message after the first `pass_first` by
`delay` seconds, counting the calls, and able to go away (stop) and come back.

Tests use it to make an export run long enough to be cancelled or killed part-way, and to
take the evaluator away from a running export, without touching the evaluator itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc


def _identity(data: bytes) -> bytes:
    return data


class SlowPeer:
    def __init__(self, target: str, method: str) -> None:
        self.target = target
        self.method = method  # "/package.Service/Method"
        self.delay = 0.0
        self.pass_first = 1
        self.calls = 0
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _relay(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        self.calls += 1
        assert self._channel is not None
        metadata = [
            (k, v)
            for k, v in context.invocation_metadata()
            if k.startswith("x-") or k == "authorization"
        ]
        call = self._channel.unary_stream(
            self.method, request_serializer=_identity, response_deserializer=_identity
        )(request, metadata=metadata)
        sent = 0
        try:
            async for message in call:
                if sent >= self.pass_first and self.delay:
                    await asyncio.sleep(self.delay)
                sent += 1
                yield message
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")

    async def start(self) -> SlowPeer:
        handler = grpc.method_handlers_generic_handler(
            self.method.split("/")[1],
            {
                self.method.split("/")[2]: grpc.unary_stream_rpc_method_handler(
                    self._relay, request_deserializer=_identity, response_serializer=_identity
                )
            },
        )
        self._channel = grpc.aio.insecure_channel(self.target)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()
        return self

    async def stop(self) -> None:
        """Goes away: open calls end, new ones find nobody listening (until `start()`)."""
        if self._server is not None:
            await self._server.stop(0)
            self._server = None
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
