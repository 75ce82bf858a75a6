"""ComputeSegmentFigures: the figures of many segments of one project as of one instant
(see domain.figures), for reporting's daily job.

The past-behaviour and system segments share one scan of the events
(`domain.compiler_shared`) and one read of their members' profiles; a segment whose
definition cannot be compiled carries its error alone. List segments are read on their own
(their members are stored). Should the shared query fail, each segment is evaluated on its
own, so that one failing segment never fails the others. Live segments count the users who
entered from `entered_since` to the instant (their entries, not a query over the events).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from libs.common.errors import DomainError, InvalidArgument
from libs.model.definition import Definition, LiveDefinition
from services.evaluator.domain.compiler import CompiledQuery, EvaluationContext, compile_members
from services.evaluator.domain.compiler_days import (
    MAX_DAYS,
    DaysContext,
    compile_daily_figures,
    daily_figures_from_row,
    unsupported,
)
from services.evaluator.domain.compiler_shared import compile_shared, shareable
from services.evaluator.domain.figures import (
    MAX_SAMPLE,
    Figures,
    figures_from_row,
    figures_query,
    ids_members,
    shared_figures_from_rows,
    shared_figures_query,
)
from services.evaluator.domain.names import parse_segment
from services.evaluator.domain.ports import ResolvedSegment
from services.evaluator.domain.windows import local_midnight
from services.evaluator.live.reading import EntryWindow, window_members

if TYPE_CHECKING:
    from services.evaluator.application import Evaluator

MAX_FIGURE_SEGMENTS = 100
#: segments evaluated at once when each is evaluated on its own
CONCURRENCY = 4

Result = Figures | DomainError
#: The days ComputeDailyFigures accepts (their ends fit the stored times).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2261, 12, 31)


async def compute_figures(
    ev: Evaluator,
    project: str,
    segments: Sequence[str],
    as_of: datetime | None,
    entered_since: datetime | None,
) -> tuple[datetime, list[Result]]:
    if not 1 <= len(segments) <= MAX_FIGURE_SEGMENTS:
        raise InvalidArgument.field("segments", f"give 1 to {MAX_FIGURE_SEGMENTS} segments")
    for i, segment in enumerate(segments):
        if parse_segment(segment, f"segments[{i}]").project != project:
            raise InvalidArgument.field(f"segments[{i}]", f"not a segment of projects/{project}")
    zone = await ev.segments.time_zone(project)
    instant = (as_of or datetime.now(UTC)).astimezone(UTC)
    since = entered_since or local_midnight(instant, zone)
    results: list[Result | None] = [None] * len(segments)

    async def resolve(i: int) -> ResolvedSegment | None:
        try:
            return await ev.segments.resolve(parse_segment(segments[i]).name)
        except DomainError as exc:
            results[i] = exc
            return None

    resolved = await asyncio.gather(*(resolve(i) for i in range(len(segments))))
    alone_ones: list[int] = []  # live and list segments
    queried: list[int] = []
    for i, found in enumerate(resolved):
        if found is not None:
            (queried if shareable(found.definition) else alone_ones).append(i)
    if len(queried) > 1:
        await _shared(ev, project, instant, segments, resolved, queried, results)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def alone(i: int) -> None:
        found = resolved[i]
        assert found is not None
        async with gate:
            try:
                results[i] = await _one(ev, segments[i], found, instant, since)
            except DomainError as exc:
                results[i] = exc

    await asyncio.gather(*(alone(i) for i in [*alone_ones, *queried] if results[i] is None))
    return instant, [r for r in results if r is not None]


async def _shared(
    ev: Evaluator,
    project: str,
    instant: datetime,
    segments: Sequence[str],
    resolved: Sequence[ResolvedSegment | None],
    queried: list[int],
    results: list[Result | None],
) -> None:
    """Evaluates `queried` in one query; leaves the results of a failed query unset."""
    references: dict[str, Definition] = {}
    for i in queried:
        found = resolved[i]
        assert found is not None
        references.update(found.references)
    ctx = await ev.context(project, instant, references)
    items: list[tuple[str, Definition]] = []
    included: list[int] = []
    for i in queried:
        found = resolved[i]
        assert found is not None
        try:  # a definition that cannot be compiled fails alone
            compile_members(found.definition, ctx, segment_name=segments[i])
        except DomainError as exc:
            results[i] = exc
            continue
        items.append((segments[i], found.definition))
        included.append(i)
    if len(items) < 2:
        return
    shared = compile_shared(items, ctx)
    query = shared_figures_query(shared, len(items), ctx)
    try:
        rows = await ev.ch.query(query.sql, query.params)
    except DomainError:
        return  # each is evaluated on its own
    for i, figures in zip(included, shared_figures_from_rows(rows, len(items)), strict=True):
        results[i] = figures


async def _one(
    ev: Evaluator, segment: str, resolved: ResolvedSegment, as_of: datetime, since: datetime
) -> Figures:
    name = parse_segment(segment)
    if isinstance(resolved.definition, LiveDefinition) and ev.live is not None:
        ids: list[str] = []
        async for page in window_members(
            ev.live, name.project, name.segment_id, EntryWindow(since, as_of)
        ):
            ids.extend(page)
        ctx: EvaluationContext = await ev.context(name.project, as_of, {})
        members = CompiledQuery(ids_members("fig_ids"), {"fig_ids": ids})
    else:
        ctx = await ev.context(name.project, as_of, dict(resolved.references))
        members = compile_members(resolved.definition, ctx, segment_name=name.name)
    query = figures_query(members, ctx)
    rows = await ev.ch.query(query.sql, query.params)
    return figures_from_row(rows[0])


async def compute_daily_figures(
    ev: Evaluator, segment: str, first_day: date, day_count: int
) -> list[tuple[date, datetime, Figures]]:
    """A segment's figures as of the end of each of `day_count` consecutive days from
    `first_day` (the project's time zone): (day, the instant evaluated, figures) per day.

    A past-behaviour definition that `compiler_days` covers is evaluated for every day in
    one query; any other one day by day, as ComputeSegmentFigures would."""
    if not 1 <= day_count <= MAX_DAYS:
        raise InvalidArgument.field("day_count", f"must be 1 to {MAX_DAYS}")
    if not FIRST_DAY <= first_day <= LAST_DAY - timedelta(days=day_count - 1):
        raise InvalidArgument.field(
            "first_day", f"the days must lie from {FIRST_DAY} to {LAST_DAY}"
        )
    name = parse_segment(segment, "segment")
    resolved = await ev.segments.resolve(name.name)
    zone = await ev.segments.time_zone(name.project)
    ctx = DaysContext(name.project, zone, first_day, day_count)
    definition = resolved.definition
    if unsupported(definition, resolved.references) is None:
        latest = await ev.profiles.latest_update(name.project)
        ctx = replace(ctx, profiles_as_of=latest is not None and latest > ctx.as_of(0))
        query = compile_daily_figures(definition, ctx, MAX_SAMPLE, resolved.references)
        rows = await ev.ch.query(query.sql, query.params)
        figures = daily_figures_from_row(rows[0] if rows else None, ctx)
    else:
        figures = []
        for index in range(day_count):
            as_of = ctx.as_of(index)
            since = local_midnight(as_of, zone)
            figures.append(await _one(ev, name.name, resolved, as_of, since))
    return [(ctx.day(i), ctx.as_of(i), f) for i, f in enumerate(figures)]
