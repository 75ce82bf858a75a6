"""Placeholder services: every RPC answers UNIMPLEMENTED with a plain message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory

from libs.common.config import Config
from libs.common.placeholder import PlaceholderService
from segments.v1 import definition_service_pb2_grpc as ds
from segments.v1 import evaluator_service_pb2_grpc as ev
from segments.v1 import export_service_pb2_grpc as ex
from segments.v1 import reporting_service_pb2_grpc as rp

from .conftest import running

SERVICES = [
    ("segments.v1.SegmentDefinitionService", ds, "SegmentDefinitionService"),
    ("segments.v1.SegmentEvaluatorService", ev, "SegmentEvaluatorService"),
    ("segments.v1.SegmentReportingService", rp, "SegmentReportingService"),
    ("segments.v1.SegmentExportService", ex, "SegmentExportService"),
]


def _placeholder(full_name: str, module: Any, short: str) -> PlaceholderService:
    return PlaceholderService(
        name=full_name,
        servicer_base=getattr(module, f"{short}Servicer"),
        add_to_server=getattr(module, f"add_{short}Servicer_to_server"),
    )


async def _call(channel: grpc.aio.Channel, full_name: str, method: Any) -> grpc.aio.AioRpcError:
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    path = f"/{full_name}/{method.name}"
    kwargs: dict[str, Any] = {
        "request_serializer": request_cls.SerializeToString,
        "response_deserializer": response_cls.FromString,
    }

    def requests() -> Iterator[Any]:
        yield request_cls()

    try:
        if method.client_streaming and method.server_streaming:
            _ = [r async for r in channel.stream_stream(path, **kwargs)(requests(), timeout=10)]
        elif method.client_streaming:
            await channel.stream_unary(path, **kwargs)(requests(), timeout=10)
        elif method.server_streaming:
            _ = [r async for r in channel.unary_stream(path, **kwargs)(request_cls(), timeout=10)]
        else:
            await channel.unary_unary(path, **kwargs)(request_cls(), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"{path} answered without an error")


@pytest.mark.parametrize(("full_name", "module", "short"), SERVICES)
async def test_every_rpc_is_unimplemented(
    config: Config, full_name: str, module: Any, short: str
) -> None:
    service = _placeholder(full_name, module, short)
    descriptor = descriptor_pool.Default().FindServiceByName(full_name)
    assert len(descriptor.methods) >= 5
    async with running([service], config) as (_, channel):
        for method in descriptor.methods:
            error = await _call(channel, full_name, method)
            assert error.code() is grpc.StatusCode.UNIMPLEMENTED, method.name
            assert error.details() == (
                f"{short}.{method.name} is not implemented yet in this release"
            )


async def test_placeholder_lifecycle_is_a_no_op() -> None:
    service = _placeholder(*SERVICES[3])
    await service.start()
    await service.stop()
    assert isinstance(service.servicer, ex.SegmentExportServiceServicer)
