"""The daily job and the trend through gRPC, with a controllable clock: a week of history
across a daylight-saving change, recounted independently day by day; re-runs; failing
segments; the run log."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest

from libs.model.definition_proto import date_to_proto, datetime_to_timestamp
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import reporting_service_pb2 as pb
from services.evaluator.domain.figures import stable_sample
from tests.evaluator.grpc_stack import TIMEOUT, create, did, ingest, past
from tests.evaluator.support import event
from tests.support.auth import create_project

from .conftest import Suite, new_project_id
from .stack import FAST, at, run_day, running_reporting, trend

NY = "America/New_York"
WEEK = [date(2026, 3, 5) + timedelta(days=i) for i in range(7)]  # Mar 8: 23 hours
HOURS = (0, 1, 3, 7, 12, 18, 23)
USERS = [f"u{i}" for i in range(10)]


def _buys() -> list[tuple[str, datetime]]:
    """Who bought when: a fixed pattern over the week, near both midnights too."""
    found = []
    for d, day in enumerate(WEEK):
        for u, user in enumerate(USERS):
            if (u * 3 + d) % 4 == 0:
                hour = HOURS[(u + d) % len(HOURS)]
                found.append((user, at(day, hour, 30 if hour == 23 else 15, NY)))
    return found


def _day_end(day: date) -> datetime:
    tz = ZoneInfo(NY)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(ZoneInfo("UTC")) + (
        datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        - datetime.combine(day, datetime.min.time(), tz)
    )


def _profile(user: str, city: str, when: datetime) -> epb.Profile:
    p = epb.Profile(user_id=user, update_time=datetime_to_timestamp(when))
    p.properties["city"].string_value = city
    return p


def _city(value: str) -> dm.Definition:
    return past(
        dm.Node(
            user_property=dm.PropertyFilter(
                property="city",
                comparison=dm.Comparison(
                    operator=dm.COMPARISON_OPERATOR_EQUALS,
                    values=[dm.Value(string_value=value)],
                ),
            )
        )
    )


def _today(event_name: str) -> dm.Definition:
    return past(
        dm.Node(
            did_event=dm.DidEventCondition(
                event=dm.EventSpec(event_name=event_name), window=dm.TimeWindow(today=dm.Today())
            )
        )
    )


async def _setup(s: Suite) -> tuple[str, dict[str, str]]:
    project = new_project_id()
    await create_project(s.base.definition_channel, project, NY)
    buys = _buys()
    await ingest(
        s.base,
        project,
        [event(f"e{i}", user, "Buy", when) for i, (user, when) in enumerate(buys)],
    )
    march = datetime(2026, 3, 1, tzinfo=ZoneInfo("UTC"))
    moved = at(date(2026, 3, 9), 12, 0, NY)  # after Mar 8 ended: Mar 8 keeps the old cities
    profiles = [_profile(u, "NYC", march) for u in USERS[:5]]
    profiles += [_profile("u0", "LA", moved), _profile("u7", "NYC", moved)]
    upserted = await s.base.evaluator.UpsertProfiles(
        epb.UpsertProfilesRequest(parent=f"projects/{project}", profiles=profiles),
        timeout=TIMEOUT,
    )
    assert not upserted.errors
    segments = {
        "ever": await create(s.base, project, "ever-bought", past(did("Buy"))),
        "today": await create(s.base, project, "today-bought", _today("Buy")),
        "nyc": await create(s.base, project, "in-nyc", _city("NYC")),
    }
    return project, segments


def _expected(day: date) -> dict[str, set[str]]:
    """An independent recount of each segment as of the end of `day` in New York."""
    end = _day_end(day)
    start = end - (_day_end(day) - _day_end(day - timedelta(days=1)))
    buys = _buys()
    nyc = set(USERS[:5])
    if end > at(date(2026, 3, 9), 12, 0, NY):
        nyc = (nyc - {"u0"}) | {"u7"}
    return {
        "ever": {u for u, t in buys if t < end},
        "today": {u for u, t in buys if start <= t < end},
        "nyc": nyc,
    }


async def test_trend_equals_a_recount_of_each_day_across_a_dst_change(s: Suite) -> None:
    project, segments = await _setup(s)
    r = s.reporting
    for day in WEEK:
        run = await run_day(r, project, day)
        assert run.state == pb.DAILY_RUN_STATE_SUCCEEDED, run
        assert run.name == f"projects/{project}/dailyRuns/{day.isoformat()}"
        # the project's segments plus its two system segments
        assert run.succeeded_count == len(segments) + 2
        assert run.attempt_count == 1 and not run.failures
    for key, segment in segments.items():
        points = await trend(r, segment, WEEK[0], WEEK[-1] + timedelta(days=1))
        assert [p.computed for p in points] == [True] * 7 + [False]
        counts = [p.user_count for p in points[:7]]
        assert counts == [len(_expected(d)[key]) for d in WEEK], key
        assert {p.source for p in points[:7]} == {pb.TREND_POINT_SOURCE_DAILY_JOB}
        assert len({p.definition_version for p in points[:7]}) == 1
        assert points[7].user_count == 0 and points[7].source == 0
    # the day across the change counts what happened in its 23 hours
    assert len(_expected(date(2026, 3, 8))["today"]) > 0

    # a re-run of a day changes nothing, and its sample is the stable one
    day = date(2026, 3, 8)
    before = await trend(r, segments["ever"], WEEK[0], WEEK[-1])
    sample = await r.stub.ListSampleUsers(
        pb.ListSampleUsersRequest(segment=segments["ever"], date=date_to_proto(day), page_size=4),
        timeout=TIMEOUT,
    )
    again = await run_day(r, project, day)
    assert again.attempt_count == 2 and again.state == pb.DAILY_RUN_STATE_SUCCEEDED
    assert await trend(r, segments["ever"], WEEK[0], WEEK[-1]) == before
    resampled = await r.stub.ListSampleUsers(
        pb.ListSampleUsersRequest(segment=segments["ever"], date=date_to_proto(day), page_size=4),
        timeout=TIMEOUT,
    )
    ids = [p.user_id for p in resampled.profiles]
    assert ids == [p.user_id for p in sample.profiles]
    assert ids == stable_sample(_expected(day)["ever"], 4)

    # the run log
    listed = await r.stub.ListDailyRuns(
        pb.ListDailyRunsRequest(parent=f"projects/{project}", page_size=3), timeout=TIMEOUT
    )
    assert [x.date.day for x in listed.daily_runs] == [11, 10, 9]
    rest = await r.stub.ListDailyRuns(
        pb.ListDailyRunsRequest(
            parent=f"projects/{project}", page_size=10, page_token=listed.next_page_token
        ),
        timeout=TIMEOUT,
    )
    assert [x.date.day for x in rest.daily_runs] == [8, 7, 6, 5] and not rest.next_page_token
    got = await r.stub.GetDailyRun(pb.GetDailyRunRequest(name=again.name), timeout=TIMEOUT)
    assert got == again


async def _created_day(s: Suite, segment: str) -> date:
    """The day (in New York) `segment` was created."""
    got = await s.base.definitions.GetSegment(dpb.GetSegmentRequest(name=segment), timeout=TIMEOUT)
    return got.create_time.ToDatetime(UTC).astimezone(ZoneInfo(NY)).date()


async def _filled_week(r: Any, segments: dict[str, str]) -> dict[str, list[Any]]:
    """Waits (up to 30 s) until every segment's trend has each day of WEEK computed; checks
    each day's count against the recount and returns the points by segment key."""

    async def filled() -> bool:
        for segment in segments.values():
            if not all(p.computed for p in await trend(r, segment, WEEK[0], WEEK[-1])):
                return False
        return True

    for _ in range(600):
        if await filled():
            break
        await asyncio.sleep(0.05)
    found = {}
    for key, segment in segments.items():
        points = await trend(r, segment, WEEK[0], WEEK[-1])
        assert [p.user_count for p in points] == [len(_expected(d)[key]) for d in WEEK], key
        found[key] = points
    return found


async def test_a_backfill_of_the_week_equals_a_recount_of_each_day(s: Suite) -> None:
    """The back-fill (one ComputeDailyFigures call per segment for the week) as of each
    day's end, across the daylight-saving change: a profile changed after a day keeps that
    day's size (u0 leaves NYC and u7 arrives on Mar 9)."""
    _, segments = await _setup(s)
    created = await _created_day(s, segments["nyc"])
    settings = replace(FAST, scheduler=True, backfill_days=(created - WEEK[0]).days)
    s.clock.set(at(WEEK[-1] + timedelta(days=1), 12, 0, NY))  # yesterday: the week's last day

    async with running_reporting(s.base, s.store_url, s.clock, settings) as r:
        for key, points in (await _filled_week(r, segments)).items():
            sources = [p.source for p in points]
            # the scheduler's daily job takes the last day; the back-fill every other one
            assert sources[:-1] == [pb.TREND_POINT_SOURCE_BACKFILL] * 6, key


async def test_a_backfill_whose_process_went_away_resumes_where_it_stopped(s: Suite) -> None:
    """Back-fills advance by runs of days: a process that stops answering mid-way (its call
    to the evaluator never returns) leaves the days it wrote; once its lease ran out another
    process takes over from the next day, and the week still equals the recount."""
    _, segments = await _setup(s)
    created = await _created_day(s, segments["nyc"])
    settings = replace(
        FAST, scheduler=True, backfill_days=(created - WEEK[0]).days, backfill_days_per_call=2
    )
    s.clock.set(at(WEEK[-1] + timedelta(days=1), 12, 0, NY))
    async with running_reporting(s.base, s.store_url, s.clock, settings) as first:
        first.source.hang_days_after = 1  # the first run of two days answers, the next hangs
        for _ in range(600):
            if len(first.source.days_asked) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(first.source.days_asked) >= 2
    (done_segment, done_day), *_ = first.source.days_asked
    assert done_day == WEEK[0]
    s.clock.set(s.clock() + timedelta(seconds=settings.lease_seconds + 1))  # its lease ran out

    async with running_reporting(s.base, s.store_url, s.clock, settings) as second:
        await _filled_week(second, segments)
        # the days the first process wrote were not computed again
        asked = [day for segment, day in second.source.days_asked if segment == done_segment]
        assert asked and WEEK[0] not in asked and min(asked) == WEEK[2]


async def test_a_failing_segment_is_retried_and_reported_while_the_others_complete(
    s: Suite,
) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project, NY)
    await ingest(s.base, project, [event("e1", "u1", "Buy", at(date(2026, 3, 10), 9, 0, NY))])
    flaky = await create(s.base, project, "flaky", past(did("Buy")))
    broken = await create(s.base, project, "broken", past(did("Buy")))
    fine = await create(s.base, project, "fine-segment", past(did("Buy")))
    s.reporting.source.failures.update({flaky: 2, broken: -1})
    run = await run_day(s.reporting, project, date(2026, 3, 10))
    assert run.state == pb.DAILY_RUN_STATE_FAILED
    assert run.succeeded_count == 4  # fine, flaky (third attempt) and the system segments
    assert [(f.segment, f.attempt_count) for f in run.failures] == [(broken, 3)]
    assert "could not be computed" in run.failures[0].reason
    points = {
        name: (await trend(s.reporting, name, date(2026, 3, 10), date(2026, 3, 10)))[0]
        for name in (flaky, broken, fine)
    }
    assert (points[fine].computed, points[fine].user_count) == (True, 1)
    assert (points[flaky].computed, points[flaky].user_count) == (True, 1)
    assert not points[broken].computed


async def test_bad_requests(s: Suite) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project, NY)
    r = s.reporting.stub
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_day(s.reporting, project, date(2026, 3, 20))  # not over at NOW
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await r.GetDailyRun(
            pb.GetDailyRunRequest(name=f"projects/{project}/dailyRuns/2026-03-01"),
            timeout=TIMEOUT,
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    for bad in (f"projects/{project}/dailyRuns/03-01", f"projects/{project}/runs/2026-03-01"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await r.GetDailyRun(pb.GetDailyRunRequest(name=bad), timeout=TIMEOUT)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    segment = await create(s.base, project, "some-segment", past(did("Buy")))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await trend(s.reporting, segment, date(2026, 3, 10), date(2026, 3, 1))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await r.GetReachability(
            pb.GetReachabilityRequest(segment=segment, date=date_to_proto(date(2026, 3, 1))),
            timeout=TIMEOUT,
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await r.GetLiveRate(pb.GetLiveRateRequest(segment=segment), timeout=TIMEOUT)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    # days and instants no figures can exist for
    for call in (
        run_day(s.reporting, project, date(9999, 12, 31)),
        trend(s.reporting, segment, date(1, 1, 1), date(1, 1, 2)),
        r.GetDailyRun(
            pb.GetDailyRunRequest(name=f"projects/{project}/dailyRuns/9999-12-31"),
            timeout=TIMEOUT,
        ),
        r.GetLiveRate(
            pb.GetLiveRateRequest(
                segment=segment, end_time=datetime_to_timestamp(datetime(1, 1, 1, tzinfo=UTC))
            ),
            timeout=TIMEOUT,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
