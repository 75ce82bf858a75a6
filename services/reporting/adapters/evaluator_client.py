"""The evaluator, reached over gRPC: figures of many segments as of an instant
(ComputeSegmentFigures), of one segment as of the end of many days (ComputeDailyFigures),
live entry counts per minute (CountLiveEntries) and profiles (GetProfile)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import grpc
from google.rpc import status_pb2

from libs.common.errors import DomainError, Internal, InvalidArgument, NotFound
from libs.common.peers import open_peer_channel, peer_metadata
from libs.common.status import PEER_CODES, peer_error
from libs.model.definition_proto import (
    date_to_proto,
    datetime_to_timestamp,
    timestamp_to_datetime,
)
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
from services.reporting.domain.ports import ComputedFigures, LiveMinute


def status_error(status: status_pb2.Status) -> DomainError:
    """A segment's error in a ComputeSegmentFigures answer as the domain error it stands for."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), None)
    kind = PEER_CODES.get(code, Internal) if code is not None else Internal
    return kind(f"evaluator: {status.message}")


def computed(figures: epb.SegmentFigures) -> ComputedFigures | DomainError:
    if figures.HasField("error"):
        return status_error(figures.error)
    return day_computed(figures)


def day_computed(figures: epb.SegmentFigures | epb.DailyFigures) -> ComputedFigures:
    return ComputedFigures(
        user_count=figures.user_count,
        reachable={
            epb.Channel.Name(c.channel).removeprefix("CHANNEL_"): c.reachable_count
            for c in figures.channels
        },
        sample=tuple(figures.sample_user_ids),
    )


class GrpcFigureSource:
    """`FigureSource` over the evaluator."""

    def __init__(self, address: str, timeout_seconds: float = 600.0) -> None:
        self._address = address
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> epb_grpc.SegmentEvaluatorServiceAsyncStub:
        if self._channel is None:
            self._channel = open_peer_channel(self._address)
        return epb_grpc.SegmentEvaluatorServiceStub(self._channel)

    async def _call(self, method: str, request: Any, seconds: float | None = None) -> Any:
        try:
            return await getattr(self._stub(), method)(
                request, timeout=seconds or self._timeout, metadata=peer_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, "evaluator") from exc

    async def compute(
        self,
        project: str,
        segments: Sequence[str],
        as_of: datetime,
        entered_since: datetime,
        sample_size: int,
    ) -> list[ComputedFigures | DomainError]:
        answer = await self._call(
            "ComputeSegmentFigures",
            epb.ComputeSegmentFiguresRequest(
                parent=f"projects/{project}",
                segments=list(segments),
                as_of=datetime_to_timestamp(as_of),
                entered_since=datetime_to_timestamp(entered_since),
                sample_size=sample_size,
            ),
        )
        if len(answer.figures) != len(segments):
            raise Internal("evaluator: ComputeSegmentFigures answered for other segments")
        return [computed(f) for f in answer.figures]

    async def compute_days(
        self, segment: str, first_day: date, day_count: int, sample_size: int
    ) -> list[ComputedFigures]:
        answer = await self._call(
            "ComputeDailyFigures",
            epb.ComputeDailyFiguresRequest(
                segment=segment,
                first_day=date_to_proto(first_day),
                day_count=day_count,
                sample_size=sample_size,
            ),
        )
        if len(answer.days) != day_count:
            raise Internal("evaluator: ComputeDailyFigures answered for other days")
        return [day_computed(d) for d in answer.days]

    async def live_minutes(self, segment: str, start: datetime, end: datetime) -> list[LiveMinute]:
        answer = await self._call(
            "CountLiveEntries",
            epb.CountLiveEntriesRequest(
                segment=segment,
                start_time=datetime_to_timestamp(start),
                end_time=datetime_to_timestamp(end),
                bucket=epb.LIVE_ENTRY_BUCKET_MINUTE,
            ),
            seconds=60.0,
        )
        return [
            LiveMinute(timestamp_to_datetime(c.bucket_start), c.entered_count, c.active_count)
            for c in answer.counts
        ]

    async def profiles(self, project: str, user_ids: Sequence[str]) -> list[object]:
        """The users' current profiles (a user without one: a profile with only the id)."""

        async def one(user_id: str) -> object:
            try:
                return await self._call(
                    "GetProfile",
                    epb.GetProfileRequest(name=f"projects/{project}/profiles/{user_id}"),
                    seconds=30.0,
                )
            except (NotFound, InvalidArgument):
                return epb.Profile(name=f"projects/{project}/profiles/{user_id}", user_id=user_id)

        return list(await asyncio.gather(*(one(u) for u in user_ids)))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
