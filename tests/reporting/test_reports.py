"""Reachability per channel (address, unsubscribed, blocked on the channel, blocked users),
from a day's stored figures and computed now; sample users with their profiles; a live
segment's per-minute rate and its day size (distinct users who entered that day)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from libs.model.definition_proto import date_to_proto, datetime_to_timestamp
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import reporting_service_pb2 as pb
from services.evaluator.domain.figures import stable_sample
from tests.evaluator.grpc_stack import TIMEOUT, create, did, ingest, past
from tests.evaluator.live.helpers import single
from tests.evaluator.support import event
from tests.support.auth import create_project

from .conftest import NOW, Suite, new_project_id
from .stack import run_day, trend

DAY = date(2026, 3, 10)
LATER = datetime(2026, 3, 12, tzinfo=UTC)


def _profile(
    user: str,
    when: datetime,
    email: str = "",
    phone: str = "",
    blocked: bool = False,
    channels: Sequence[tuple[epb.Channel.ValueType, str, bool, bool]] = (),
) -> epb.Profile:
    p = epb.Profile(
        user_id=user,
        update_time=datetime_to_timestamp(when),
        email=email,
        phone=phone,
        blocked=blocked,
    )
    for channel, address, unsubscribed, blocked_on in channels:
        p.channels.add(
            channel=channel,
            address=address,
            unsubscribed=unsubscribed,
            blocked=blocked_on,
        )
    return p


def _reach(reply: pb.Reachability) -> dict[str, tuple[int, float]]:
    return {
        epb.Channel.Name(c.channel).removeprefix("CHANNEL_"): (c.reachable_count, c.percentage)
        for c in reply.channels
    }


async def test_reachability_per_channel_for_a_day_and_now(s: Suite) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project)
    users = [f"u{i}" for i in range(1, 8)]
    await ingest(
        s.base,
        project,
        [event(f"e{u}", u, "Open", datetime(2026, 3, 10, 9, tzinfo=UTC)) for u in users],
    )
    t = datetime(2026, 3, 1, tzinfo=UTC)
    profiles = [
        _profile("u1", t, email="u1@x.io"),  # e-mail through the profile's address
        _profile("u2", t, email="u2@x.io", channels=[(epb.CHANNEL_EMAIL, "", True, False)]),
        _profile("u3", t, email="u3@x.io", channels=[(epb.CHANNEL_EMAIL, "", False, True)]),
        _profile(
            "u4",
            t,
            email="u4@x.io",
            blocked=True,
            channels=[(epb.CHANNEL_MOBILE_PUSH, "tok4", False, False)],
        ),
        _profile(
            "u5", t, phone="+15550100", channels=[(epb.CHANNEL_WHATSAPP, "+15550100", True, False)]
        ),
        _profile(
            "u6",
            t,
            channels=[
                (epb.CHANNEL_MOBILE_PUSH, "tok6", False, False),
                (epb.CHANNEL_WEB_PUSH, "web6", False, True),
                (epb.CHANNEL_IN_APP, "app6", False, False),
            ],
        ),
        # u7 has events only: a member reachable nowhere
        # after the day: u2 subscribes again
        _profile("u2", LATER, email="u2@x.io"),
    ]
    upserted = await s.base.evaluator.UpsertProfiles(
        epb.UpsertProfilesRequest(parent=f"projects/{project}", profiles=profiles),
        timeout=TIMEOUT,
    )
    assert not upserted.errors
    segment = await create(s.base, project, "openers", past(did("Open")))
    run = await run_day(s.reporting, project, DAY)
    assert run.state == pb.DAILY_RUN_STATE_SUCCEEDED

    on_day = await s.reporting.stub.GetReachability(
        pb.GetReachabilityRequest(segment=segment, date=date_to_proto(DAY)), timeout=TIMEOUT
    )
    assert on_day.user_count == 7  # the blocked user counts
    one = 100 / 7
    assert _reach(on_day) == {
        "MOBILE_PUSH": (1, one),
        "WEB_PUSH": (0, 0.0),
        "EMAIL": (1, one),
        "SMS": (1, one),
        "WHATSAPP": (0, 0.0),
        "IN_APP": (1, one),
    }
    assert on_day.as_of.ToDatetime(UTC) == datetime(2026, 3, 11, tzinfo=UTC) - timedelta(
        milliseconds=1
    )
    now = await s.reporting.stub.GetReachability(
        pb.GetReachabilityRequest(segment=segment), timeout=TIMEOUT
    )
    assert now.user_count == 7 and _reach(now)["EMAIL"] == (2, 2 * one)
    assert now.as_of.ToDatetime(UTC) == NOW

    # sample users with their profiles: the stored day's, and one computed now
    sample = await s.reporting.stub.ListSampleUsers(
        pb.ListSampleUsersRequest(segment=segment, date=date_to_proto(DAY), page_size=7),
        timeout=TIMEOUT,
    )
    assert [p.user_id for p in sample.profiles] == stable_sample(users, 7)
    by_id = {p.user_id: p for p in sample.profiles}
    assert by_id["u1"].email == "u1@x.io" and by_id["u4"].blocked
    assert by_id["u7"].name == f"projects/{project}/profiles/u7"
    now_sample = await s.reporting.stub.ListSampleUsers(
        pb.ListSampleUsersRequest(segment=segment, page_size=3), timeout=TIMEOUT
    )
    assert [p.user_id for p in now_sample.profiles] == stable_sample(users, 3)


async def test_live_rate_per_minute_and_live_day_size(s: Suite) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project)
    live = await create(s.base, project, "live-buyers", single("Buy"))
    t = datetime(2026, 3, 19, 23, 50, tzinfo=UTC)  # the day before NOW, within a day of it
    minute = timedelta(minutes=1)
    await ingest(
        s.base,
        project,
        [
            event("a1", "u1", "Buy", t + timedelta(seconds=5)),
            event("a2", "u2", "View", t + timedelta(seconds=30)),
            event("c1", "u1", "Buy", t + 2 * minute),
            event("c2", "u3", "Buy", t + 2 * minute + timedelta(seconds=1)),
            event("c3", "u4", "View", t + 2 * minute + timedelta(seconds=2)),
            event("d1", "u5", "View", t + 3 * minute),
            event("n1", "u6", "Buy", t + 15 * minute),  # the next day
        ],
    )
    expected = [(1, 2), (0, 0), (2, 3), (0, 1)]
    request = pb.GetLiveRateRequest(
        segment=live,
        start_time=datetime_to_timestamp(t),
        end_time=datetime_to_timestamp(t + 4 * minute),
    )
    for _ in range(200):  # entries are written as the events are matched
        rate = await s.reporting.stub.GetLiveRate(request, timeout=TIMEOUT)
        if [(p.entered_count, p.active_count) for p in rate.points] == expected:
            break
        await asyncio.sleep(0.05)
    assert [(p.entered_count, p.active_count) for p in rate.points] == expected
    assert [p.minute.ToDatetime(UTC) for p in rate.points] == [t + i * minute for i in range(4)]

    run = await run_day(s.reporting, project, date(2026, 3, 19))
    assert run.state == pb.DAILY_RUN_STATE_SUCCEEDED
    points = await trend(s.reporting, live, date(2026, 3, 19), date(2026, 3, 19))
    assert (points[0].computed, points[0].user_count) == (True, 2)  # u1 (twice) and u3
