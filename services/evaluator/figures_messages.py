"""ComputeSegmentFigures messages: figures (or a segment's error) as SegmentFigures."""

from __future__ import annotations

from libs.common.errors import DomainError
from libs.common.interceptors import rich_status
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
        channels=[
            pb.ChannelCount(
                channel=pb.Channel.Value(f"CHANNEL_{c}"), reachable_count=result.reachable[c]
            )
            for c in CHANNELS
        ],
        sample_user_ids=result.sample[:sample_size],
    )
