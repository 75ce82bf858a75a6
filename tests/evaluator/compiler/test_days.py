"""Property test: a segment evaluated over many days in one query (compiler_days, the
back-fill's path) has, day by day, the figures of its evaluation as of each day's end."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings

from libs.clickhouse.port import ClickHouse
from libs.model.definition import (
    Definition,
    DidEvent,
    DidNotEvent,
    Inaction,
    InSegment,
    LastWindow,
    Node,
    PastBehaviorQuery,
    RelativeOffset,
    Sequence,
    TimeUnit,
)
from services.evaluator.domain.compiler import EvaluationContext, compile_members
from services.evaluator.domain.compiler_days import (
    DaysContext,
    compile_daily_figures,
    daily_figures_from_row,
    unsupported,
)
from services.evaluator.domain.figures import Figures, figures_from_row, figures_query
from services.evaluator.domain.windows import resolve

from .helpers import q, spec
from .strategies import Case, cases
from .test_properties import runner
from .world import Event, World, load

DAYS = 8


def candidates(case: Case) -> list[Definition]:
    """The case's definitions a multi-day query covers: the case's own, the plain segment,
    each top-level part of their trees on its own, and the system segments."""
    found: list[Definition] = [case.definition, case.segments["projects/proj/segments/plain"]]
    for definition in list(found):
        assert isinstance(definition, PastBehaviorQuery)
        root = definition.root
        if root is not None and root.condition is None:
            found += [PastBehaviorQuery(root=child) for child in root.children]
    found += [case.segments[f"projects/proj/segments/{s}"] for s in ("all", "test")]
    return [d for d in found if unsupported(d) is None]


def days_context(case: Case) -> DaysContext:
    today = case.as_of.astimezone(ZoneInfo(case.time_zone)).date()
    ctx = DaysContext("proj", case.time_zone, today - timedelta(days=DAYS - 2), DAYS)
    changed = case.world.profiles_changed_after(ctx.as_of(0))
    return DaysContext(ctx.project, ctx.time_zone, ctx.first_day, DAYS, profiles_as_of=changed)


async def day_by_day(
    ch: ClickHouse, world: World, d: Definition, ctx: DaysContext
) -> list[Figures]:
    found = []
    for index in range(ctx.day_count):
        as_of = ctx.as_of(index)
        one = EvaluationContext(
            "proj", as_of, ctx.time_zone, {}, profiles_as_of=world.profiles_changed_after(as_of)
        )
        query = figures_query(compile_members(d, one), one)
        found.append(figures_from_row((await ch.query(query.sql, query.params))[0]))
    return found


async def in_one_query(ch: ClickHouse, d: Definition, ctx: DaysContext) -> list[Figures]:
    query = compile_daily_figures(d, ctx, 100)
    rows = await ch.query(query.sql, query.params)
    return daily_figures_from_row(rows[0] if rows else None, ctx)


@pytest.mark.parametrize("ch", ["chdb"], indirect=True)  # the HTTP adapter: test_daily_figures
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
async def test_days_in_one_query_match_each_day(ch: ClickHouse) -> None:
    run = runner(asyncio.get_running_loop())

    @settings(
        max_examples=int(os.environ.get("COMPILER_DAYS_EXAMPLES", "12")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases())
    def check(case: Case) -> None:
        ctx = days_context(case)
        run(load(ch, case.world))
        for definition in candidates(case):
            expected = run(day_by_day(ch, case.world, definition, ctx))
            got = run(in_one_query(ch, definition, ctx))
            assert got == expected, (definition, compile_daily_figures(definition, ctx, 100).sql)

    await asyncio.to_thread(check)


def test_what_one_query_covers() -> None:
    week = LastWindow(RelativeOffset(7, TimeUnit.DAY))
    months = LastWindow(RelativeOffset(2, TimeUnit.MONTH))
    assert unsupported(q(DidEvent(spec("A"), week))) is None
    assert unsupported(q(Inaction(spec("A"), spec("B"), week, timedelta(hours=1)))) is None
    assert unsupported(q(DidEvent(spec("A"), months))) is None
    sequence = q(Sequence((spec("A"), spec("B")), week, None))
    assert unsupported(sequence) is None
    nowhere = q(InSegment("projects/proj/segments/x"))
    assert unsupported(nowhere) == "InSegment is evaluated day by day"
    nested = PastBehaviorQuery(
        root=Node(condition=DidEvent(spec("A"), week)),
        included_segments=("projects/proj/segments/x",),
    )
    assert unsupported(nested) == "includes or excludes segments"


@pytest.mark.parametrize("ch", ["chdb"], indirect=True)
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC"])
async def test_calendar_month_windows_at_their_boundaries(ch: ClickHouse, zone: str) -> None:
    """ "Last N months" over days across month ends (days clamped to the shorter month) and a
    daylight-saving change: events exactly at each day's window start and 1 ms before it."""
    ctx = DaysContext("proj", zone, date(2024, 3, 26), 10)
    events = []
    for months in (1, 2):
        window = LastWindow(RelativeOffset(months, TimeUnit.MONTH))
        for index in range(ctx.day_count):
            start = resolve(window, ctx.as_of(index), zone).start
            assert start is not None
            for shift, user in ((timedelta(0), "on"), (-timedelta(milliseconds=1), "before")):
                events.append(Event(f"{user}-{months}-{index}", f"M{months}", start + shift))
    world = World(events)
    await load(ch, world)
    for months in (1, 2):
        window = LastWindow(RelativeOffset(months, TimeUnit.MONTH))
        for definition in (
            q(DidEvent(spec(f"M{months}"), window)),
            q(DidNotEvent(spec(f"M{months}"), window)),
        ):
            expected = await day_by_day(ch, world, definition, ctx)
            assert await in_one_query(ch, definition, ctx) == expected, (zone, months)
            assert any(f.user_count for f in expected)
