"""A service whose every RPC answers UNIMPLEMENTED, with a message that says so plainly.

It lets the whole suite start and list itself through reflection before a service's
behaviour lands; health says NOT_SERVING for it (it serves nothing). No RPC returns made-up
data.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from libs.common.errors import Unimplemented


def _short_name(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


def unimplemented_message(service_name: str, method: str) -> str:
    return f"{_short_name(service_name)}.{method} is not implemented yet in this release"


def _rpc_methods(servicer_base: type) -> list[str]:
    """The RPCs of a generated servicer base: its public methods."""
    return [
        name
        for name, member in vars(servicer_base).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]


def _unary(message: str) -> Callable[..., Any]:
    async def rpc(self: object, request: object, context: object) -> Any:
        raise Unimplemented(message)

    return rpc


def _streaming(message: str) -> Callable[..., Any]:
    async def rpc(self: object, request: object, context: object) -> AsyncIterator[Any]:
        raise Unimplemented(message)
        yield  # pragma: no cover - makes this an async generator

    return rpc


def build_placeholder_servicer(
    service_name: str, servicer_base: type, streaming_methods: frozenset[str] = frozenset()
) -> object:
    """An instance of a subclass of `servicer_base` whose RPCs all raise `Unimplemented`."""
    namespace: dict[str, Any] = {}
    for method in _rpc_methods(servicer_base):
        message = unimplemented_message(service_name, method)
        factory = _streaming if method in streaming_methods else _unary
        namespace[method] = factory(message)
    cls = type(f"Placeholder{servicer_base.__name__}", (servicer_base,), namespace)
    return cls()


def _server_streaming_methods(service_name: str) -> frozenset[str]:
    """Names of the RPCs of `service_name` that stream responses (from the descriptor pool)."""
    from google.protobuf import descriptor_pool

    try:
        descriptor = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return frozenset()
    return frozenset(m.name for m in descriptor.methods if m.server_streaming)


class PlaceholderService:
    """A `Service` with no store whose RPCs all answer UNIMPLEMENTED."""

    #: Health reports NOT_SERVING for a service that implements nothing.
    implemented = False

    def __init__(
        self,
        *,
        name: str,
        servicer_base: type,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
    ) -> None:
        self.name = name
        self._add_to_server = add_to_server
        self.servicer = build_placeholder_servicer(
            name, servicer_base, _server_streaming_methods(name)
        )

    def register(self, server: grpc.aio.Server) -> None:
        self._add_to_server(self.servicer, server)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
