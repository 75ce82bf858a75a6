"""The figures RPCs of the evaluator servicer, for reporting: ComputeSegmentFigures (many
segments as of one instant) and ComputeDailyFigures (one segment as of the end of each of
several days); messages converted in `figures_messages`, use cases in `figures`."""

from __future__ import annotations

from typing import Any

import grpc

from libs.common.errors import InvalidArgument
from libs.model.definition_proto import date_from_proto, datetime_to_timestamp, instant_from_proto
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.application import Evaluator
from services.evaluator.domain.figures import MAX_SAMPLE
from services.evaluator.domain.names import parse_project
from services.evaluator.figures import compute_daily_figures
from services.evaluator.figures_messages import daily_figures_to_pb, figures_to_pb

Ctx = grpc.aio.ServicerContext[Any, Any]


def _sample_size(value: int) -> int:
    if not 0 <= value <= MAX_SAMPLE:
        raise InvalidArgument.field("sample_size", f"must be 0 to {MAX_SAMPLE}")
    return value


class FigureRpcs:
    ev: Evaluator

    async def ComputeSegmentFigures(
        self, request: pb.ComputeSegmentFiguresRequest, context: Ctx
    ) -> pb.ComputeSegmentFiguresResponse:
        project = parse_project(request.parent)
        size = _sample_size(request.sample_size)
        as_of, results = await self.ev.compute_figures(
            project,
            list(request.segments),
            instant_from_proto(request.as_of, "as_of") if request.HasField("as_of") else None,
            instant_from_proto(request.entered_since, "entered_since")
            if request.HasField("entered_since")
            else None,
        )
        return pb.ComputeSegmentFiguresResponse(
            figures=[
                figures_to_pb(segment, result, size)
                for segment, result in zip(request.segments, results, strict=True)
            ],
            as_of=datetime_to_timestamp(as_of),
        )

    async def ComputeDailyFigures(
        self, request: pb.ComputeDailyFiguresRequest, context: Ctx
    ) -> pb.ComputeDailyFiguresResponse:
        size = _sample_size(request.sample_size)
        if not request.HasField("first_day"):
            raise InvalidArgument.field("first_day", "is required")
        first = date_from_proto(request.first_day, "first_day")
        days = await compute_daily_figures(self.ev, request.segment, first, request.day_count)
        return pb.ComputeDailyFiguresResponse(
            days=[daily_figures_to_pb(day, as_of, f, size) for day, as_of, f in days]
        )
