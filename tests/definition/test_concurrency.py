"""Concurrent writers: exactly one wins."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import field_mask_pb2

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2 as sp

from .helpers import Stub, create


async def _outcomes(calls: list[object]) -> list[grpc.StatusCode]:
    results = await asyncio.gather(*calls, return_exceptions=True)  # type: ignore[call-overload]
    codes: list[grpc.StatusCode] = []
    for result in results:
        if isinstance(result, grpc.aio.AioRpcError):
            codes.append(result.code())
        elif isinstance(result, BaseException):
            raise result
        else:
            codes.append(grpc.StatusCode.OK)
    return sorted(codes, key=lambda c: c.name)


async def test_concurrent_updates_one_wins(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "Contended")
    for round_ in range(3):
        current = await stub.GetSegment(pb.GetSegmentRequest(name=seg.name))
        calls: list[object] = [
            stub.UpdateSegment(
                pb.UpdateSegmentRequest(
                    segment=sp.Segment(
                        name=seg.name, description=f"{round_}-{i}", etag=current.etag
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                )
            )
            for i in range(2)
        ]
        codes = await _outcomes(calls)
        assert codes == [grpc.StatusCode.ABORTED, grpc.StatusCode.OK]


async def test_concurrent_creates_with_one_name(stub: Stub, project: str) -> None:
    await stub.GetProject(pb.GetProjectRequest(name=f"projects/{project}"))
    for round_ in range(3):
        calls: list[object] = [create(stub, project, f"Same {round_}") for _ in range(2)]
        codes = await _outcomes(calls)
        assert codes == [grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OK]


async def test_first_use_of_a_project_concurrently(stub: Stub, project: str) -> None:
    calls: list[object] = [create(stub, project, f"First {i}") for i in range(4)]
    assert await _outcomes(calls) == [grpc.StatusCode.OK] * 4
    got = await stub.GetProject(pb.GetProjectRequest(name=f"projects/{project}"))
    assert got.segment_count == 6
