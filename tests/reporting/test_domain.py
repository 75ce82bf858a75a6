"""Pure rules of reporting: days in the project's time zone, back-fill ranges, back-off, run
outcomes, reachability and the sample order."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.common.config import Config, ConfigError
from libs.common.errors import InvalidArgument
from services.evaluator.domain.figures import ChannelProfile, reachable, sample_key, stable_sample
from services.reporting.domain.days import (
    backfill_days,
    day_as_of,
    day_bounds,
    day_length,
    day_of,
    days,
    due_day,
    first_complete_day,
    next_due_time,
)
from services.reporting.domain.figures import percentage
from services.reporting.domain.retry import RetryPolicy
from services.reporting.domain.runs import (
    PartState,
    RunState,
    SegmentPart,
    outcome,
    parse_run_name,
    run_name,
)
from services.reporting.service import settings_from

NY = "America/New_York"


def test_day_bounds_in_the_project_time_zone() -> None:
    start, end = day_bounds(date(2026, 1, 15), NY)
    assert start == datetime(2026, 1, 15, 5, tzinfo=UTC)
    assert end == datetime(2026, 1, 16, 5, tzinfo=UTC)
    assert day_as_of(date(2026, 1, 15), NY) == end - timedelta(milliseconds=1)
    assert day_bounds(date(2026, 1, 15), "UTC")[0] == datetime(2026, 1, 15, tzinfo=UTC)


def test_daylight_saving_days_last_23_and_25_hours() -> None:
    assert day_length(date(2026, 3, 8), NY) == timedelta(hours=23)
    assert day_length(date(2026, 11, 1), NY) == timedelta(hours=25)
    assert day_length(date(2026, 3, 9), NY) == timedelta(hours=24)
    # a zone whose clocks skip midnight itself: the day starts at the first instant there is
    start, end = day_bounds(date(2026, 9, 6), "America/Santiago")
    assert end - start == timedelta(hours=23)
    assert day_of(start, "America/Santiago") == date(2026, 9, 6)


def test_first_complete_day_after_creation() -> None:
    assert first_complete_day(datetime(2026, 1, 15, 12, tzinfo=UTC), NY) == date(2026, 1, 16)
    # created exactly at local midnight: that day is complete
    assert first_complete_day(datetime(2026, 1, 15, 5, tzinfo=UTC), NY) == date(2026, 1, 15)
    # 02:00 UTC on the 16th is still the 15th in New York
    assert first_complete_day(datetime(2026, 1, 16, 2, tzinfo=UTC), NY) == date(2026, 1, 16)


def test_due_day_waits_for_the_delay_after_local_midnight() -> None:
    delay = timedelta(minutes=30)
    # 05:20 UTC on the 16th is 00:20 in New York: the 15th is not due until 00:30
    assert due_day(datetime(2026, 1, 16, 5, 20, tzinfo=UTC), NY, delay) == date(2026, 1, 14)
    assert due_day(datetime(2026, 1, 16, 5, 30, tzinfo=UTC), NY, delay) == date(2026, 1, 15)
    assert next_due_time(datetime(2026, 1, 16, 5, 20, tzinfo=UTC), NY, delay) == datetime(
        2026, 1, 16, 5, 30, tzinfo=UTC
    )


def test_backfill_ranges() -> None:
    created = datetime(2026, 1, 15, 12, tzinfo=UTC)
    now = datetime(2026, 1, 20, 12, tzinfo=UTC)
    assert backfill_days(created, now, NY, 0) == days(date(2026, 1, 16), date(2026, 1, 19))
    assert backfill_days(created, now, NY, 30)[0] == date(2025, 12, 16)
    assert backfill_days(created, now, NY, 30)[-1] == date(2026, 1, 19)
    # created today: nothing complete yet
    assert backfill_days(now, now, NY, 0) == []
    with pytest.raises(ValueError):
        backfill_days(created, now, NY, -1)
    with pytest.raises(ValueError):
        days(date(2000, 1, 1), date(2026, 1, 1))


def test_back_off_grows_to_its_cap_and_gives_up() -> None:
    policy = RetryPolicy(attempts=4, base=timedelta(seconds=1), factor=3, cap=timedelta(seconds=5))
    assert [policy.delay(n).total_seconds() for n in range(0, 5)] == [0, 1, 3, 5, 5]
    assert not policy.gives_up(3)
    assert policy.gives_up(4)


def test_run_names_and_outcomes() -> None:
    assert run_name("p1", date(2026, 3, 8)) == "projects/p1/dailyRuns/2026-03-08"
    assert parse_run_name("projects/p1/dailyRuns/2026-03-08") == ("p1", date(2026, 3, 8))
    for bad in ("projects/p1/dailyRuns/8-3-2026", "projects//dailyRuns/2026-03-08", "x"):
        with pytest.raises(InvalidArgument):
            parse_run_name(bad)
    parts = [
        SegmentPart("b", PartState.DONE, 1),
        SegmentPart("a", PartState.FAILED, 3, "gone"),
        SegmentPart("c", PartState.DONE, 2),
    ]
    state, done, failures = outcome(parts)
    assert (state, done) == (RunState.FAILED, 2)
    assert [(f.segment, f.reason, f.attempts) for f in failures] == [("a", "gone", 3)]
    assert outcome(parts[:1])[0] is RunState.SUCCEEDED


def test_reachability_rules() -> None:
    assert not reachable(None, "EMAIL")
    full = ChannelProfile(email="a@x.io", phone="+15550100", address={"MOBILE_PUSH": "tok"})
    assert [reachable(full, c) for c in ("MOBILE_PUSH", "WEB_PUSH", "EMAIL", "SMS")] == [
        True,
        False,
        True,  # falls back to the profile's e-mail
        True,  # and phone
    ]
    unsubscribed = ChannelProfile(email="a@x.io", unsubscribed={"EMAIL": True})
    assert not reachable(unsubscribed, "EMAIL")
    blocked_on_channel = ChannelProfile(email="a@x.io", channel_blocked={"EMAIL": True})
    assert not reachable(blocked_on_channel, "EMAIL")
    blocked_user = ChannelProfile(blocked=True, email="a@x.io")
    assert not reachable(blocked_user, "EMAIL")
    assert percentage(1, 4) == 25.0
    assert percentage(0, 0) == 0.0


def test_sample_is_a_stable_hash_order() -> None:
    ids = [f"u{i}" for i in range(50)]
    sample = stable_sample(ids, 5)
    assert sample == stable_sample(list(reversed(ids)), 5)
    assert sample == sorted(ids, key=lambda u: hashlib.md5(u.encode()).digest())[:5]
    assert sample_key("u1")[0] == hashlib.md5(b"u1").digest()
    # a prefix of a larger sample, and not simply the smallest ids
    assert stable_sample(ids, 10)[:5] == sample
    assert sample != sorted(ids)[:5]


def test_reporting_settings_from_the_environment() -> None:
    config = Config.from_env(
        {
            "SEGMENTS_REPORTING_SCHEDULER": "false",
            "SEGMENTS_REPORTING_DELAY_SECONDS": "600",
            "SEGMENTS_BACKFILL_DAYS": "0",
            "SEGMENTS_REPORTING_ATTEMPTS": "5",
            "SEGMENTS_REPORTING_RETRY_SECONDS": "1",
            "SEGMENTS_REPORTING_RETRY_MAX_SECONDS": "8",
        }
    )
    settings = settings_from(config)
    assert not settings.scheduler and settings.backfill_days == 0
    assert settings.schedule_delay == timedelta(minutes=10)
    assert settings.retry.attempts == 5 and settings.retry.delay(3) == timedelta(seconds=8)
    defaults = settings_from(Config.from_env({}))
    assert defaults.scheduler and defaults.backfill_days == 30
    for key, bad in (
        ("SEGMENTS_BACKFILL_DAYS", "-1"),
        ("SEGMENTS_REPORTING_ATTEMPTS", "0"),
        ("SEGMENTS_REPORTING_LEASE_SECONDS", "1"),
        ("SEGMENTS_REPORTING_SCHEDULER", "maybe"),
        ("SEGMENTS_REPORTING_RETRY_MAX_SECONDS", "1"),
    ):
        with pytest.raises(ConfigError):
            Config.from_env({key: bad})
