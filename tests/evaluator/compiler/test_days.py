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
    AllTimeWindow,
    BooleanOperator,
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
    return [d for d in found if unsupported(d, case.segments) is None]


def days_context(case: Case) -> DaysContext:
    today = case.as_of.astimezone(ZoneInfo(case.time_zone)).date()
    ctx = DaysContext("proj", case.time_zone, today - timedelta(days=DAYS - 2), DAYS)
    changed = case.world.profiles_changed_after(ctx.as_of(0))
    return DaysContext(ctx.project, ctx.time_zone, ctx.first_day, DAYS, profiles_as_of=changed)


async def day_by_day(
    ch: ClickHouse,
    world: World,
    d: Definition,
    ctx: DaysContext,
    segments: dict[str, Definition] | None = None,
) -> list[Figures]:
    found = []
    for index in range(ctx.day_count):
        as_of = ctx.as_of(index)
        one = EvaluationContext(
            "proj", as_of, ctx.time_zone, segments or {},
            profiles_as_of=world.profiles_changed_after(as_of),
        )  # fmt: skip
        query = figures_query(compile_members(d, one), one)
        found.append(figures_from_row((await ch.query(query.sql, query.params))[0]))
    return found


async def in_one_query(
    ch: ClickHouse, d: Definition, ctx: DaysContext, segments: dict[str, Definition] | None = None
) -> list[Figures]:
    query = compile_daily_figures(d, ctx, 100, segments)
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
            expected = run(day_by_day(ch, case.world, definition, ctx, case.segments))
            got = run(in_one_query(ch, definition, ctx, case.segments))
            sql = compile_daily_figures(definition, ctx, 100, case.segments).sql
            assert got == expected, (definition, sql)

    await asyncio.to_thread(check)


def test_what_one_query_covers() -> None:
    week = LastWindow(RelativeOffset(7, TimeUnit.DAY))
    months = LastWindow(RelativeOffset(2, TimeUnit.MONTH))
    assert unsupported(q(DidEvent(spec("A"), week))) is None
    assert unsupported(q(Inaction(spec("A"), spec("B"), week, timedelta(hours=1)))) is None
    assert unsupported(q(DidEvent(spec("A"), months))) is None
    sequence = q(Sequence((spec("A"), spec("B")), week, None))
    assert unsupported(sequence) is None
    elsewhere = "projects/proj/segments/x"
    nowhere = q(InSegment(elsewhere))
    assert unsupported(nowhere) == f"referenced segment {elsewhere} is not available"
    assert unsupported(nowhere, {elsewhere: sequence}) is None
    assert unsupported(nowhere, {elsewhere: nowhere}) == "references itself"
    nested = PastBehaviorQuery(
        root=Node(condition=DidEvent(spec("A"), week)),
        included_segments=("projects/proj/segments/x",),
    )
    assert unsupported(nested, {"projects/proj/segments/x": sequence}) is None


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


@pytest.mark.parametrize("ch", ["chdb"], indirect=True)
async def test_referenced_segments_are_evaluated_per_day_too(ch: ClickHouse) -> None:
    """ "In segment" leaves and included/excluded segments, nested and reached twice (a
    diamond), each day as of its end."""
    zone = "Europe/Berlin"
    ctx = DaysContext("proj", zone, date(2024, 3, 28), 6)
    base = ctx.as_of(0)
    names = {k: f"projects/proj/segments/{k}" for k in ("recent", "ever", "both", "top")}
    two_days = LastWindow(RelativeOffset(2, TimeUnit.DAY))
    segments: dict[str, Definition] = {
        names["recent"]: q(DidEvent(spec("X"), two_days)),
        names["ever"]: q(DidEvent(spec("Y"), AllTimeWindow())),
        # both reach "recent": by a leaf and by inclusion
        names["both"]: PastBehaviorQuery(
            root=Node(condition=InSegment(names["recent"])),
            included_segments=(names["ever"],),
        ),
    }
    top = PastBehaviorQuery(
        root=Node(
            operator=BooleanOperator.OR,
            children=(
                Node(condition=InSegment(names["both"])),
                Node(condition=InSegment(names["recent"], negate=True)),
            ),
        ),
        included_segments=(names["both"], names["recent"]),
    )
    segments[names["top"]] = top
    only_x = PastBehaviorQuery(
        root=Node(condition=InSegment(names["recent"])), excluded_segments=(names["ever"],)
    )
    events = [
        Event(f"u{i}", name, base + timedelta(hours=13 * i))
        for i in range(10)
        for name in ("X", "Y")[: 1 + i % 2]
    ]
    world = World(events)
    await load(ch, world)
    for definition in (*segments.values(), only_x, q(InSegment(names["top"], negate=True))):
        assert unsupported(definition, segments) is None
        expected = await day_by_day(ch, world, definition, ctx, segments)
        assert await in_one_query(ch, definition, ctx, segments) == expected, definition
        assert any(f.user_count for f in expected), definition
