"""ComputeSegmentFigures and ComputeDailyFigures messages: figures (or a segment's error) as
SegmentFigures, a day's figures as DailyFigures."""

from __future__ import annotations

from datetime import date, datetime

from libs.common.errors import DomainError
from libs.common.interceptors import rich_status
from libs.model.definition_proto import date_to_proto, datetime_to_timestamp
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.domain.figures import CHANNELS, Figures


def figures_to_pb(
    segment: str, result: Figures | DomainError, sample_size: int
) -> pb.SegmentFigures:
    if isinstance(result, DomainError):
        return pb.SegmentFigures(segment=segment, error=rich_status(result))
    return pb.SegmentFigures(
        segment=segment,
        user_count=result.user_count,
        channels=_channels(result),
        sample_user_ids=result.sample[:sample_size],
    )


def _channels(figures: Figures) -> list[pb.ChannelCount]:
    return [
        pb.ChannelCount(
            channel=pb.Channel.Value(f"CHANNEL_{c}"), reachable_count=figures.reachable[c]
        )
        for c in CHANNELS
    ]


def daily_figures_to_pb(
    day: date, as_of: datetime, figures: Figures, sample_size: int
) -> pb.DailyFigures:
    return pb.DailyFigures(
        day=date_to_proto(day),
        as_of=datetime_to_timestamp(as_of),
        user_count=figures.user_count,
        channels=_channels(figures),
        sample_user_ids=figures.sample[:sample_size],
    )
