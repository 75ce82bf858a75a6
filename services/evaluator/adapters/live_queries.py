"""What the live engine asks ClickHouse: the B events that cancel inaction timers, profiles
whose date property falls on a day, and active users per time bucket. Every identifier and
value is a bound parameter (`compiler_predicates.Params`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from libs.clickhouse.port import ClickHouse
from libs.model.definition import EventSpec, TimePoint
from services.evaluator.domain.compiler_predicates import Params, PropertyPredicates, and_all
from services.evaluator.domain.windows import local_midnight, point_instant


async def event_times(
    ch: ClickHouse,
    project: str,
    spec: EventSpec,
    user_ids: Sequence[str],
    after: datetime,
    until: datetime,
    as_of: datetime,
    time_zone: str,
) -> dict[str, list[datetime]]:
    """Times of the users' stored events matching `spec` in (after, until]."""
    if not user_ids:
        return {}
    params = Params()
    filters = PropertyPredicates(params, "", as_of, time_zone)
    where = and_all(
        [
            f"project = {params.string(project)}",
            f"event_name = {params.string(spec.event_name)}",
            f"has({params.strings(sorted(set(user_ids)))}, user_id)",
            f"event_time > {params.instant(after, rounding='floor')}",
            f"event_time <= {params.instant(until, rounding='floor')}",
            *(filters.filter(f) for f in spec.filters),
        ]
    )
    rows = await ch.query(
        f"SELECT user_id, event_time FROM events WHERE {where}",  # noqa: S608 - bound values
        params.values,
    )
    found: dict[str, list[datetime]] = {}
    for user_id, when in rows:
        found.setdefault(user_id, []).append(when)
    return found


async def profiles_on_day(
    ch: ClickHouse, project: str, prop: str, day: date, time_zone: str
) -> list[tuple[str, datetime]]:
    """(user, value) of the profiles whose time property `prop` falls on `day` (local)."""
    params = Params()
    start = point_instant(TimePoint(date=day), time_zone)
    end = local_midnight(start + timedelta(hours=36), time_zone)
    key = params.string(prop)
    sql = (
        "SELECT user_id, time_props[" + key + "] FROM profiles FINAL "  # noqa: S608
        f"WHERE project = {params.string(project)} AND mapContains(time_props, {key}) "
        f"AND time_props[{key}] >= {params.instant(start, rounding='ceil')} "
        f"AND time_props[{key}] < {params.instant(end, rounding='ceil')}"
    )
    return [(r[0], r[1]) for r in await ch.query(sql, params.values)]


async def active_users(
    ch: ClickHouse,
    project: str,
    start: datetime,
    end: datetime,
    bucket: timedelta | None,
    time_zone: str,
) -> dict[object, int]:
    """Distinct users with any event in [start, end), per bucket: {bucket index: count} for
    fixed-size buckets, {local date: count} for days (`bucket` None)."""
    params = Params()
    if bucket is None:
        key = f"toDate(event_time, {params.string(time_zone)})"
    else:
        size = params.integer(int(bucket / timedelta(milliseconds=1)))
        start_ms = params.integer(int(start.timestamp() * 1000))
        key = f"intDiv(toUnixTimestamp64Milli(event_time) - {start_ms}, {size})"
    sql = (
        f"SELECT {key} AS b, uniqExact(user_id) FROM events "  # noqa: S608 - bound values
        f"WHERE project = {params.string(project)} "
        f"AND event_time >= {params.instant(start, rounding='ceil')} "
        f"AND event_time < {params.instant(end, rounding='ceil')} GROUP BY b"
    )
    return {r[0]: int(r[1]) for r in await ch.query(sql, params.values)}
