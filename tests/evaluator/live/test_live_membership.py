"""Reading live segments over gRPC: membership over a window (CountSegment, StreamAudience,
CheckMembership), CountLiveEntries per minute and per day, and date triggers (on a profile
write and when the day starts)."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb

from ..grpc_stack import TIMEOUT, rich
from ..support import event
from .conftest import T0
from .helpers import Live, live_def, single, users


async def test_live_membership_is_the_users_who_entered_in_the_window(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    live.clock.set(T0 + timedelta(hours=1))
    await live.ingest(
        event("e1", "u1", "Buy", T0 - timedelta(hours=13)),  # the previous day (UTC)
        event("e2", "u2", "Buy", T0),
        event("e3", "u3", "Buy", T0 + timedelta(minutes=30)),
    )
    await live.entries(3)
    ev = live.stack.evaluator
    today = await ev.CountSegment(pb.CountSegmentRequest(segment=seg, sample_size=5))
    assert (today.user_count, list(today.sample_user_ids)) == (2, ["u2", "u3"])
    window = dm.TimeWindow(last=dm.RelativeOffset(amount=1, unit=dm.TIME_UNIT_DAY))
    day = await ev.CountSegment(pb.CountSegmentRequest(segment=seg, live_window=window))
    assert day.user_count == 3
    as_of = await ev.CountSegment(
        pb.CountSegmentRequest(segment=seg, as_of=datetime_to_timestamp(T0))
    )
    assert as_of.user_count == 1  # only u2 had entered today by T0
    chunks = [c async for c in ev.StreamAudience(pb.StreamAudienceRequest(segment=seg))]
    assert [u for c in chunks for u in c.user_ids] == ["u2", "u3"]
    check = await ev.CheckMembership(
        pb.CheckMembershipRequest(segment=seg, user_ids=["u1", "u2", "x"])
    )
    assert list(check.is_member) == [False, True, False]


async def test_count_live_entries_per_minute_and_per_day(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    live.clock.set(T0 + timedelta(minutes=5))
    minute = timedelta(minutes=1)
    await live.ingest(
        event("e1", "u1", "Buy", T0 + timedelta(seconds=10)),
        event("e2", "u1", "Buy", T0 + timedelta(seconds=20)),
        event("e3", "u2", "Buy", T0 + 2 * minute),
        event("v1", "u3", "View", T0 + 2 * minute),
    )
    await live.entries(3)
    ev = live.stack.evaluator
    counts = await ev.CountLiveEntries(
        pb.CountLiveEntriesRequest(
            segment=seg, start_time=datetime_to_timestamp(T0),
            end_time=datetime_to_timestamp(T0 + 3 * minute),
        )
    )  # fmt: skip
    assert [(c.entered_count, c.active_count) for c in counts.counts] == [(1, 1), (0, 0), (1, 2)]
    days = await ev.CountLiveEntries(
        pb.CountLiveEntriesRequest(
            segment=seg, start_time=datetime_to_timestamp(T0 - timedelta(days=1)),
            end_time=datetime_to_timestamp(T0 + minute), bucket=pb.LIVE_ENTRY_BUCKET_DAY,
        )
    )  # fmt: skip
    assert [(c.entered_count, c.active_count) for c in days.counts] == [(0, 0), (2, 3)]
    for bad in (
        pb.CountLiveEntriesRequest(segment=seg, start_time=datetime_to_timestamp(T0)),
        pb.CountLiveEntriesRequest(
            segment=seg, start_time=datetime_to_timestamp(T0),
            end_time=datetime_to_timestamp(T0 + timedelta(days=30)),
        ),
        pb.CountLiveEntriesRequest(segment=seg, start_time=Timestamp(), end_time=Timestamp()),
    ):  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ev.CountLiveEntries(bad, timeout=TIMEOUT)
        err = rich(caught.value)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert err.violations


async def test_a_date_trigger_enters_on_a_profile_write_and_when_the_day_starts(
    live: Live,
) -> None:
    ev = live.stack.evaluator

    def profile(user_id: str, days: int) -> pb.Profile:
        p = pb.Profile(user_id=user_id)
        p.properties["appointment"].time_value.CopyFrom(
            datetime_to_timestamp(T0 + timedelta(days=days, hours=3))
        )
        return p

    await ev.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=live.parent, profiles=[profile("u1", 5), profile("u2", 6)])
    )
    trigger = dm.LiveTrigger(on_date=dm.DateTrigger(property="appointment", days_from_today=5))
    await live.define("appointment-in-5-days", live_def(trigger))
    await live.workers.check_days()  # the day's check: u1's appointment is in 5 days
    assert users(await live.entries(1)) == ["u1"]
    await ev.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=live.parent, profiles=[profile("u3", 5)])
    )
    assert users(await live.entries(2)) == ["u1", "u3"]
    await live.workers.check_days()  # checked once per day: nothing new
    live.clock.set(T0 + timedelta(days=1))
    await live.workers.check_days()  # the next day: u2's appointment is 5 days away
    found = await live.entries(3)
    assert users(found) == ["u1", "u3", "u2"]
    assert found[2].HasField("trigger_event") is False
