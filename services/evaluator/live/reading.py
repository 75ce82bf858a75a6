"""Reading live segments (following entries is `delivery`): counting them per time bucket
(CountLiveEntries) and membership over a window (CountSegment, StreamAudience and
CheckMembership of a live segment)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from libs.common.errors import InvalidArgument
from libs.model.definition import TimeWindow, TodayWindow
from services.evaluator.adapters.live_queries import active_users
from services.evaluator.domain.live_entries import local_day
from services.evaluator.domain.windows import local_midnight, resolve
from services.evaluator.live.engine import LiveEngine

MINUTE = timedelta(minutes=1)
MAX_MINUTE_BUCKETS = 10_080  # one week
MAX_DAY_BUCKETS = 3_660  # ten years
_MS = timedelta(milliseconds=1)


def parse_cursor(value: str, field: str) -> int | None:
    """A cursor from a previous entry (None: empty, meaning "from now on")."""
    if not value:
        return None
    # ASCII digits only (str.isdigit also accepts "²"), within a 64-bit cursor
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidArgument.field(field, f"not a cursor of a live entry: {value!r}")
    return int(value)


# --- counts per bucket ------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketCount:
    start: datetime
    entered: int
    active: int


def _floor_minute(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


async def count_entries(
    engine: LiveEngine,
    project: str,
    segment_id: str,
    start: datetime,
    end: datetime,
    by_day: bool,
    time_zone: str,
) -> list[BucketCount]:
    """Distinct users who entered, and distinct users with any event, per whole UTC minute
    or whole local day covering [start, end)."""
    if start >= end:
        raise InvalidArgument.field("end_time", "must be later than start_time")
    if by_day:
        return await _count_days(engine, project, segment_id, start, end, time_zone)
    first = _floor_minute(start)
    last = _floor_minute(end - _MS) + MINUTE
    buckets = int((last - first) / MINUTE)
    if buckets > MAX_MINUTE_BUCKETS:
        raise InvalidArgument.field(
            "end_time", f"at most {MAX_MINUTE_BUCKETS} minute buckets (one week) per call"
        )
    entered = await engine.store.entered_per_bucket(project, segment_id, first, last, MINUTE)
    active = await active_users(engine.ch, project, first, last, MINUTE, time_zone)
    return [
        BucketCount(first + i * MINUTE, entered.get(i, 0), int(active.get(i, 0)))
        for i in range(buckets)
    ]


async def _count_days(
    engine: LiveEngine, project: str, segment_id: str, start: datetime, end: datetime, zone: str
) -> list[BucketCount]:
    days: list[date] = []
    day = local_day(start, zone)
    while local_midnight_of(day, zone) < end:
        days.append(day)
        if len(days) > MAX_DAY_BUCKETS:
            raise InvalidArgument.field("end_time", f"at most {MAX_DAY_BUCKETS} day buckets")
        day += timedelta(days=1)
    bounds = [local_midnight_of(d, zone) for d in [*days, day]]
    active = await active_users(engine.ch, project, bounds[0], bounds[-1], None, zone)
    out: list[BucketCount] = []
    for i, d in enumerate(days):
        entered = await engine.store.member_count(
            project, segment_id, bounds[i], bounds[i + 1] - _MS
        )
        out.append(BucketCount(bounds[i], entered, int(active.get(d, 0))))
    return out


def local_midnight_of(day: date, zone: str) -> datetime:
    return local_midnight(datetime(day.year, day.month, day.day, 12, tzinfo=UTC), zone)


# --- membership -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryWindow:
    """Entries made in [start, end] (inclusive, milliseconds) are members."""

    start: datetime | None
    end: datetime


def entry_window(window: TimeWindow | None, as_of: datetime, time_zone: str) -> EntryWindow:
    """The entries a live window covers as of `as_of` (default window: today)."""
    bounds = resolve(window or TodayWindow(), as_of, time_zone)
    end = as_of if bounds.end is None else min(as_of, bounds.end - _MS)
    return EntryWindow(bounds.start, end)


async def window_members(
    engine: LiveEngine,
    project: str,
    segment_id: str,
    window: EntryWindow,
    user_ids: Sequence[str] | None = None,
) -> AsyncIterator[list[str]]:
    """The members (users with an entry in the window), in pages ordered by user id."""
    after = ""
    while True:
        page = await engine.store.member_ids(
            project, segment_id, window.start, window.end, user_ids, after
        )
        if page:
            yield page
        if len(page) < 10_000:
            return
        after = page[-1]
