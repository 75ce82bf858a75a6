"""Days in a project's time zone: their bounds, which days are due, back-fill ranges.

A day is a calendar date in the project's IANA time zone. It runs from its local midnight
(included) to the next day's local midnight (excluded), so a day across a daylight-saving
change lasts 23 or 25 hours. A day's figures describe the segment as of the day's last
millisecond (`day_as_of`): nothing at or after the next midnight is seen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from libs.common.errors import InvalidArgument

_MS = timedelta(milliseconds=1)
#: The longest range a trend or a back-fill covers.
MAX_DAYS = 3_660
#: The days figures can be kept for (the range of a ClickHouse Date).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2149, 6, 5)


def check_day(day: date, field: str) -> date:
    """`day`, or InvalidArgument naming `field` when no figures can exist for it."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidArgument.field(
            field, f"must be from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
        )
    return day


def local_midnight(day: date, zone: str) -> datetime:
    """The instant (UTC) `day` starts in `zone`. A midnight skipped by a daylight-saving
    change reads with the offset before the change, which is the first instant of the day;
    a midnight that happens twice is its first occurrence."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """[start, end) of `day` in UTC."""
    return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)


def day_length(day: date, zone: str) -> timedelta:
    start, end = day_bounds(day, zone)
    return end - start


def day_as_of(day: date, zone: str) -> datetime:
    """The instant a day's figures describe: its last millisecond."""
    return day_bounds(day, zone)[1] - _MS


def day_of(instant: datetime, zone: str) -> date:
    """The local date of `instant` in `zone`."""
    return instant.astimezone(ZoneInfo(zone)).date()


def yesterday(now: datetime, zone: str) -> date:
    return day_of(now, zone) - timedelta(days=1)


def first_complete_day(created: datetime, zone: str) -> date:
    """The first day that starts at or after `created`."""
    day = day_of(created, zone)
    return day if local_midnight(day, zone) >= created else day + timedelta(days=1)


def due_day(now: datetime, zone: str, delay: timedelta) -> date:
    """The latest day whose daily job is due at `now`: it ended, and `delay` passed since."""
    day = yesterday(now, zone)
    while day_bounds(day, zone)[1] + delay > now:
        day -= timedelta(days=1)
    return day


def next_due_time(now: datetime, zone: str, delay: timedelta) -> datetime:
    """When the next day (after `due_day(now)`) becomes due."""
    day = due_day(now, zone, delay) + timedelta(days=1)
    return day_bounds(day, zone)[1] + delay


def days(start: date, end: date) -> list[date]:
    """start..end, both included (empty when end < start)."""
    count = (end - start).days + 1
    if count > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days")
    return [start + timedelta(days=i) for i in range(max(0, count))]


def backfill_days(created: datetime, now: datetime, zone: str, days_before: int) -> list[date]:
    """The days a segment created at `created` gets back-filled, up to yesterday: from
    `days_before` days before its creation day, or (0) from its first complete day."""
    if days_before < 0:
        raise ValueError("days_before must be 0 or more")
    if days_before == 0:
        start = first_complete_day(created, zone)
    else:
        start = day_of(created, zone) - timedelta(days=days_before)
    end = yesterday(now, zone)
    return days(start, end) if start <= end else []
