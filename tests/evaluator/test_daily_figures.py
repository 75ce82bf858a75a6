"""ComputeDailyFigures through gRPC: a segment as of the end of each of several days equals
ComputeSegmentFigures as of each day's end, on the one-query path (compiler_days) and on the
day-by-day one, across a daylight-saving change, with profiles changing in between."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.type.date_pb2 import Date

from libs.model.definition_proto import date_to_proto, datetime_to_timestamp
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb
from tests.support.auth import create_project

from .grpc_stack import TIMEOUT, Stack, create, ingest, past, rich, stack_fixture
from .support import event

ZONE = "America/New_York"
FIRST = date(2024, 3, 8)  # New York springs forward on 2024-03-10
DAYS = 5

stack = stack_fixture("daily-figures")


def _local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def _day_end(day: date) -> datetime:
    following = datetime.combine(day + timedelta(days=1), time(), tzinfo=ZoneInfo(ZONE))
    return following.astimezone(UTC) - timedelta(milliseconds=1)


def _bought(window: dm.TimeWindow) -> dm.Node:
    return dm.Node(
        did_event=dm.DidEventCondition(event=dm.EventSpec(event_name="Buy"), window=window)
    )


def _last(amount: int, unit: dm.TimeUnit.ValueType) -> dm.TimeWindow:
    return dm.TimeWindow(last=dm.RelativeOffset(amount=amount, unit=unit))


def _city(value: str) -> dm.Node:
    equals = dm.Comparison(
        operator=dm.COMPARISON_OPERATOR_EQUALS, values=[dm.Value(string_value=value)]
    )
    return dm.Node(user_property=dm.PropertyFilter(property="city", comparison=equals))


def _and(*nodes: dm.Node) -> dm.Node:
    return dm.Node(operator=dm.BOOLEAN_OPERATOR_AND, children=list(nodes))


async def _profiles(s: Stack, project: str) -> None:
    email = pb.Channel.CHANNEL_EMAIL

    def profile(user: str, city: str, when: datetime, **more: object) -> pb.Profile:
        return pb.Profile(
            user_id=user, email=f"{user}@example.com",
            properties={"city": dm.Value(string_value=city)},
            update_time=datetime_to_timestamp(when), **more,  # type: ignore[arg-type]
        )  # fmt: skip

    before = _local(FIRST - timedelta(days=3), 9)
    profiles = [
        profile("u1", "Paris", before),
        profile(
            "u2", "Paris", before, channels=[pb.ChannelState(channel=email, unsubscribed=True)]
        ),
        profile("u3", "Paris", before, blocked=True),
        profile("u4", "Rome", before),
        # u4 moves to Paris on the DST day, u1 to Rome the day after
        profile("u4", "Paris", _local(FIRST + timedelta(days=2), 1)),
        profile("u1", "Rome", _local(FIRST + timedelta(days=3), 23)),
    ]
    await s.evaluator.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=f"projects/{project}", profiles=profiles), timeout=TIMEOUT
    )


async def _daily(s: Stack, segment: str) -> list[pb.DailyFigures]:
    answer = await s.evaluator.ComputeDailyFigures(
        pb.ComputeDailyFiguresRequest(
            segment=segment, first_day=date_to_proto(FIRST), day_count=DAYS, sample_size=10
        ),
        timeout=TIMEOUT,
    )
    return list(answer.days)


async def _each_day(s: Stack, project: str, segment: str) -> list[pb.SegmentFigures]:
    found = []
    for i in range(DAYS):
        answer = await s.evaluator.ComputeSegmentFigures(
            pb.ComputeSegmentFiguresRequest(
                parent=f"projects/{project}", segments=[segment], sample_size=10,
                as_of=datetime_to_timestamp(_day_end(FIRST + timedelta(days=i))),
            ),
            timeout=TIMEOUT,
        )  # fmt: skip
        found.append(answer.figures[0])
    return found


@pytest.mark.parametrize(
    ("segment_id", "root"),
    [
        # evaluated for all the days in one query
        ("week-parisians", _and(_city("Paris"), _bought(_last(1, dm.TIME_UNIT_DAY)))),
        ("ever-buyers", _bought(dm.TimeWindow(all_time=dm.AllTime()))),
        # a window of calendar months: day by day
        ("month-buyers", _bought(_last(1, dm.TIME_UNIT_MONTH))),
    ],
)  # fmt: skip
async def test_each_day_equals_the_figures_as_of_its_end(
    stack: Stack, segment_id: str, root: dm.Node
) -> None:
    project = f"daily-{segment_id}"
    await create_project(stack.definition_channel, project, ZONE)
    await _profiles(stack, project)
    buys = [
        ("u1", 0, 10), ("u2", 1, 23), ("u3", 2, 3), ("u4", 2, 12), ("u1", 4, 0), ("u5", -1, 12),
    ]  # fmt: skip
    await ingest(stack, project, [
        event(f"e{i}", user, "Buy", _local(FIRST + timedelta(days=day), hour))
        for i, (user, day, hour) in enumerate(buys)
    ])  # fmt: skip
    segment = await create(stack, project, segment_id, past(root))
    days = await _daily(stack, segment)
    expected = await _each_day(stack, project, segment)
    assert [d.day for d in days] == [date_to_proto(FIRST + timedelta(days=i)) for i in range(DAYS)]
    assert [d.as_of.ToDatetime(UTC) for d in days] == [
        _day_end(FIRST + timedelta(days=i)) for i in range(DAYS)
    ]
    got = [(d.user_count, list(d.channels), list(d.sample_user_ids)) for d in days]
    want = [(f.user_count, list(f.channels), list(f.sample_user_ids)) for f in expected]
    assert got == want
    assert any(d.user_count for d in days)
    if segment_id == "week-parisians":
        # the DST day lasts 23 hours, so its last 24 hours reach u2's purchase at 23:00 the
        # day before; u4 counts from the day it moved to Paris, u1 no more once in Rome;
        # u2 is unsubscribed from e-mail, u3 blocked
        assert [d.user_count for d in days] == [1, 1, 3, 0, 0]
        email = [
            next(c.reachable_count for c in d.channels if c.channel == pb.CHANNEL_EMAIL)
            for d in days
        ]
        assert email == [1, 0, 1, 0, 0]


async def test_bad_requests(stack: Stack) -> None:
    project = "daily-bad"
    await create_project(stack.definition_channel, project, ZONE)
    segment = await create(
        stack, project, "buyers", past(_bought(dm.TimeWindow(all_time=dm.AllTime())))
    )
    good = pb.ComputeDailyFiguresRequest(
        segment=segment, first_day=date_to_proto(FIRST), day_count=3
    )
    bad = grpc.StatusCode.INVALID_ARGUMENT
    cases: list[tuple[dict[str, object], grpc.StatusCode, str]] = [
        ({"day_count": 0}, bad, "day_count"),
        ({"day_count": 101}, bad, "day_count"),
        ({"sample_size": 101}, bad, "sample_size"),
        ({"first_day": Date(year=2024, month=13, day=1)}, bad, "first_day"),
        ({"first_day": Date(year=1969, month=12, day=31)}, bad, "first_day"),
        ({"segment": "nonsense"}, bad, "segment"),
        ({"segment": f"projects/{project}/segments/gone"}, grpc.StatusCode.NOT_FOUND, ""),
    ]
    for change, code, field in cases:
        request = pb.ComputeDailyFiguresRequest()
        request.CopyFrom(good)
        for key, value in change.items():
            if isinstance(value, Date):
                getattr(request, key).CopyFrom(value)
            else:
                setattr(request, key, value)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stack.evaluator.ComputeDailyFigures(request, timeout=TIMEOUT)
        assert raised.value.code() == code, change
        if field:
            assert field in {f for f, _ in rich(raised.value).violations}, change
    missing = pb.ComputeDailyFiguresRequest(segment=segment, day_count=3)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.evaluator.ComputeDailyFigures(missing, timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
