"""Message conversion of the reporting service: requests to domain values, results to
messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from libs.model.definition_proto import date_from_proto, date_to_proto, datetime_to_timestamp
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import reporting_service_pb2 as pb
from services.reporting.application.reports import ReachabilityReport, TrendPoint
from services.reporting.domain.days import check_day
from services.reporting.domain.figures import CHANNELS, Source, percentage
from services.reporting.domain.ports import LiveMinute
from services.reporting.domain.runs import DailyRun, RunState

_STATES = {
    RunState.RUNNING: pb.DAILY_RUN_STATE_RUNNING,
    RunState.SUCCEEDED: pb.DAILY_RUN_STATE_SUCCEEDED,
    RunState.FAILED: pb.DAILY_RUN_STATE_FAILED,
}
_SOURCES = {
    Source.DAILY: pb.TREND_POINT_SOURCE_DAILY_JOB,
    Source.BACKFILL: pb.TREND_POINT_SOURCE_BACKFILL,
}


def optional_date(msg: Any, field: str) -> date | None:
    """A google.type.Date field, or None when unset (or all zero)."""
    if not msg.HasField(field):
        return None
    value = getattr(msg, field)
    if not (value.year or value.month or value.day):
        return None
    return check_day(date_from_proto(value, field), field)


def run_to_pb(run: DailyRun) -> pb.DailyRun:
    out = pb.DailyRun(
        name=run.name,
        date=date_to_proto(run.day),
        state=_STATES[run.state],
        attempt_count=run.attempt_count,
        succeeded_count=run.succeeded_count,
        failures=[
            pb.DailyRunFailure(segment=f.segment, reason=f.reason, attempt_count=f.attempts)
            for f in run.failures
        ],
        start_time=datetime_to_timestamp(run.start_time),
    )
    if run.end_time is not None:
        out.end_time.CopyFrom(datetime_to_timestamp(run.end_time))
    return out


def trend_to_pb(points: list[TrendPoint]) -> pb.GetSegmentTrendResponse:
    out = pb.GetSegmentTrendResponse()
    add = out.points.add
    for day, figures in points:
        # fields set in place: no Date message built and copied per point
        point = add()
        point.date.year, point.date.month, point.date.day = day.year, day.month, day.day
        if figures is not None:
            point.user_count = figures.user_count
            point.computed = True
            point.source = _SOURCES[figures.source]
            point.definition_version = figures.definition_version
    return out


def reachability_to_pb(report: ReachabilityReport) -> pb.Reachability:
    return pb.Reachability(
        user_count=report.user_count,
        channels=[
            pb.ChannelReachability(
                channel=epb.Channel.Value(f"CHANNEL_{c}"),
                reachable_count=report.reachable.get(c, 0),
                percentage=percentage(report.reachable.get(c, 0), report.user_count),
            )
            for c in CHANNELS
        ],
        as_of=datetime_to_timestamp(report.as_of),
    )


def live_rate_to_pb(minutes: list[LiveMinute]) -> pb.GetLiveRateResponse:
    return pb.GetLiveRateResponse(
        points=[
            pb.LiveRatePoint(
                minute=datetime_to_timestamp(m.minute),
                entered_count=m.entered,
                active_count=m.active,
            )
            for m in minutes
        ]
    )
