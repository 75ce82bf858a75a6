"""Time windows and relative offsets resolved to UTC instants (pure, no I/O).

Every window becomes a half-open or closed interval of UTC instants; the evaluation instant
`as_of` always caps it (nothing later than `as_of` is ever seen):

* last N minutes / hours / days / weeks: `[as_of - N units, as_of]`, a fixed duration (a day is
  24 hours, even across a daylight-saving change);
* last N months: from the local wall-clock time of `as_of` minus N calendar months in the
  project's time zone (the day clamped to the end of a shorter month) to `as_of`;
* today: `[local midnight of as_of's day, as_of]`; yesterday: `[midnight of the previous local
  day, midnight of today)`;
* range `[start, end)`; since `[start, as_of]`; before `(-inf, end)`; all time `(-inf, as_of]`.

Every instant a window or offset reaches is clamped to [FLOOR, CEILING], years 1900 to 2299: a
window longer than the calendar holds still evaluates, and since every stored time lies between
1970 and 2262 (the supported range), the clamped bound selects exactly what the unclamped one
would have. Definitions are refused at write time long before that (docs/definition-model.md).

A bare date is that day's midnight in the project's time zone. Local wall-clock times are
read with the offset in force before a daylight-saving change: an ambiguous time is its first
occurrence and a time inside a gap moves forward by the gap's length.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from libs.model.definition import (
    AllTimeWindow,
    BeforeWindow,
    LastWindow,
    RangeWindow,
    RelativeOffset,
    SinceWindow,
    TimePoint,
    TimeUnit,
    TimeWindow,
    TodayWindow,
    YesterdayWindow,
)

_FIXED_UNITS = {
    TimeUnit.MINUTE: timedelta(minutes=1),
    TimeUnit.HOUR: timedelta(hours=1),
    TimeUnit.DAY: timedelta(days=1),
    TimeUnit.WEEK: timedelta(weeks=1),
}


#: Before and after every stored time; what ClickHouse's DateTime64 still holds.
FLOOR = datetime(1900, 1, 1, tzinfo=UTC)
CEILING = datetime(2299, 1, 1, tzinfo=UTC)


def clamp(instant: datetime) -> datetime:
    """`instant` moved into [FLOOR, CEILING]."""
    return min(max(instant, FLOOR), CEILING)


@dataclass(frozen=True)
class Bounds:
    """`start <= t` (when set) and `t < end` (when set); `t <= as_of` always applies too."""

    start: datetime | None
    end: datetime | None


def _local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """`_wall_to_utc` clamped to [FLOOR, CEILING]."""
    try:
        return clamp(_wall_to_utc(local, zone))
    except OverflowError:  # a wall-clock time at the very end of what datetime holds
        return FLOOR if local.year < FLOOR.year else CEILING


def _wall_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time in `zone` as a UTC instant.

    The offset in force before a change applies (fold=0): an ambiguous time is its first
    occurrence, a time inside a gap moves forward by the gap's length (a midnight that does
    not exist becomes the instant of the change, the real start of that day).
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def point_instant(point: TimePoint, time_zone: str) -> datetime:
    """A time point as a UTC instant (a bare date is local midnight)."""
    if point.instant is not None:
        return clamp(point.instant.astimezone(UTC))
    if point.date is not None:
        return _local_to_utc(datetime.combine(point.date, time()), ZoneInfo(time_zone))
    raise ValueError("a time point needs an instant or a date")


def add_months(instant: datetime, months: int, time_zone: str) -> datetime:
    """`instant` moved by `months` calendar months in `time_zone` (day clamped to month end,
    result clamped to [FLOOR, CEILING])."""
    zone = ZoneInfo(time_zone)
    local = clamp(instant).astimezone(zone).replace(tzinfo=None)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    if year < FLOOR.year:
        return FLOOR
    if year > CEILING.year:
        return CEILING
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return _local_to_utc(local.replace(year=year, month=month, day=day), zone)


def shift(instant: datetime, offset: RelativeOffset, time_zone: str, *, sign: int) -> datetime:
    """`instant` plus (sign=1) or minus (sign=-1) a relative offset, clamped to [FLOOR,
    CEILING]."""
    if offset.unit is TimeUnit.MONTH:
        return add_months(instant, sign * offset.amount, time_zone)
    try:
        return clamp(instant + sign * offset.amount * _FIXED_UNITS[offset.unit])
    except OverflowError:  # beyond what datetime holds
        return FLOOR if sign * offset.amount < 0 else CEILING


def local_midnight(instant: datetime, time_zone: str, *, days_back: int = 0) -> datetime:
    """Start of the local calendar day of `instant`, `days_back` days earlier."""
    zone = ZoneInfo(time_zone)
    day = clamp(instant).astimezone(zone).date() - timedelta(days=days_back)
    return _local_to_utc(datetime.combine(day, time()), zone)


def resolve(window: TimeWindow, as_of: datetime, time_zone: str) -> Bounds:
    """The UTC bounds of a window evaluated at `as_of` (`t <= as_of` is implied)."""
    match window:
        case LastWindow(offset=offset):
            return Bounds(start=shift(as_of, offset, time_zone, sign=-1), end=None)
        case TodayWindow():
            return Bounds(start=local_midnight(as_of, time_zone), end=None)
        case YesterdayWindow():
            return Bounds(
                start=local_midnight(as_of, time_zone, days_back=1),
                end=local_midnight(as_of, time_zone),
            )
        case RangeWindow(start=start, end=end):
            return Bounds(start=point_instant(start, time_zone), end=point_instant(end, time_zone))
        case SinceWindow(start=start):
            return Bounds(start=point_instant(start, time_zone), end=None)
        case BeforeWindow(end=end):
            return Bounds(start=None, end=point_instant(end, time_zone))
        case AllTimeWindow():
            return Bounds(start=None, end=None)
    raise ValueError(f"unknown time window {window!r}")
