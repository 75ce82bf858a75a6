"""The shape of the generated SQL (no engine needed) and the window module."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.common.errors import FailedPrecondition
from libs.model.definition import (
    Aggregate,
    AggregateFunction,
    BooleanOperator,
    Definition,
    DidEvent,
    DidNotEvent,
    FirstTime,
    Inaction,
    InSegment,
    LastWindow,
    LiveDefinition,
    Node,
    PastBehaviorQuery,
    RangeWindow,
    RelativeOffset,
    Sequence,
    SingleActionTrigger,
    TimePoint,
    TimeUnit,
    TodayWindow,
    UserProperty,
    YesterdayWindow,
)
from libs.model.definition import ComparisonOperator as Op
from services.evaluator.domain.compiler import EvaluationContext, compile_members
from services.evaluator.domain.windows import Bounds, add_months, resolve

from .helpers import ALL, T0, f, q, spec

CTX = EvaluationContext("acme-project", T0, "UTC", {})


def _tree(*conditions: object) -> PastBehaviorQuery:
    children = tuple(Node(condition=c) for c in conditions)  # type: ignore[arg-type]
    return PastBehaviorQuery(Node(operator=BooleanOperator.OR, children=children))


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_events_are_scanned_once_whatever_the_number_of_clauses(k: int) -> None:
    kinds = [
        DidEvent(spec("A"), ALL),
        DidNotEvent(spec("B"), LastWindow(RelativeOffset(2, TimeUnit.DAY))),
        Inaction(spec("A"), spec("B"), ALL, timedelta(hours=1)),
        FirstTime(spec("C"), TodayWindow()),
        Sequence((spec("A"), spec("B"), spec("C")), ALL, timedelta(minutes=5)),
        DidEvent(spec("A"), ALL, Aggregate(AggregateFunction.AVG, Op.GREATER_THAN, (1.0,), "x")),
        Sequence((spec("A"), spec("B")), YesterdayWindow()),
        Inaction(spec("C"), spec("A"), ALL),
        DidEvent(spec("B"), ALL, Aggregate(AggregateFunction.MAX, Op.BETWEEN, (1.0, 2.0), "x")),
    ]
    sql = compile_members(_tree(*kinds[:k]), CTX).sql
    assert len(re.findall(r"\bFROM events\b", sql)) == 1
    assert sql.count("FROM profiles") == 0


def test_every_value_is_a_parameter() -> None:
    definition = _tree(
        DidEvent(spec("Purchase", f("plan", Op.IN_LIST, "gold", "silver")), ALL),
        UserProperty(f("age", Op.BETWEEN, 18.0, 30.0)),
        UserProperty(f("signup_time", Op.GREATER_THAN, datetime(2024, 1, 1, tzinfo=UTC))),
    )
    query = compile_members(definition, CTX, user_ids=["a", "b"])
    for text in ("Purchase", "plan", "gold", "silver", "age", "signup_time", "acme-project"):
        assert text not in query.sql
    scalars = {v for v in query.params.values() if isinstance(v, str)}
    assert {"Purchase", "plan", "age", "signup_time", "acme-project"} <= scalars
    assert ["gold", "silver"] in query.params.values()
    assert ["a", "b"] in query.params.values()
    assert [v for v in query.params.values() if isinstance(v, float)] == [18.0, 30.0]
    placeholders = set(re.findall(r"\{(p\d+):", query.sql))
    assert placeholders == set(query.params)
    assert query.sql.count("FROM profiles FINAL") == 1
    assert query.sql.endswith("SETTINGS join_use_nulls = 0")


def test_an_event_name_is_bounded_only_when_every_use_of_it_has_a_start() -> None:
    last = LastWindow(RelativeOffset(3, TimeUnit.DAY))
    week = LastWindow(RelativeOffset(7, TimeUnit.DAY))

    def scan(*conditions: object) -> str:
        sql = compile_members(_tree(*conditions), CTX).sql
        return sql.split("FROM events")[1].split("GROUP BY")[0]  # the scan's WHERE

    # one bound shared by every name: a plain lower bound on event_time
    assert " OR " not in scan(DidEvent(spec("A"), last), DidNotEvent(spec("B"), last))
    assert "event_time >= " in scan(DidEvent(spec("A"), last), DidNotEvent(spec("B"), last))
    # a first time needs all of its name's history: no bound for that name, nor for any
    # name when it is the only one
    assert "event_time >= " not in scan(DidEvent(spec("A"), last), FirstTime(spec("A"), last))
    # different needs per name: a bound per name, the name needing history left unbounded
    mixed = scan(DidEvent(spec("A"), last), FirstTime(spec("B"), last), DidEvent(spec("C"), week))
    assert mixed.count("event_time >= ") == 2
    assert " OR " in mixed


def test_missing_reference_and_live_without_query_are_refused() -> None:
    with pytest.raises(FailedPrecondition, match="not available"):
        compile_members(q(InSegment("projects/proj/segments/gone")), CTX)
    live = LiveDefinition(SingleActionTrigger(spec("A")))
    with pytest.raises(FailedPrecondition, match="not evaluated by query"):
        compile_members(live, CTX)
    loop = "projects/proj/segments/loop"
    ctx = EvaluationContext("proj", T0, "UTC", {loop: q(InSegment(loop))})
    with pytest.raises(FailedPrecondition, match="references itself"):
        compile_members(q(InSegment(loop)), ctx)


def _ladder(steps: int) -> tuple[PastBehaviorQuery, dict[str, Definition]]:
    """A<k> includes B<k> and C<k> and has "in segment C<k>" as a leaf; B<k> and C<k> each
    include A<k-1>: 2^steps paths from the top to A0. Each segment does its own event."""
    segments: dict[str, Definition] = {}

    def save(name: str, query: PastBehaviorQuery) -> str:
        segments[f"projects/proj/segments/{name}"] = query
        return f"projects/proj/segments/{name}"

    top = save("A0", q(DidEvent(spec("A0"), ALL)))
    for k in range(1, steps + 1):
        b, c = (
            save(f"{s}{k}", replace(q(DidEvent(spec(f"{s}{k}"), ALL)), included_segments=(top,)))
            for s in "BC"
        )
        root = Node(
            operator=BooleanOperator.AND,
            children=(Node(condition=DidEvent(spec(f"A{k}"), ALL)), Node(condition=InSegment(c))),
        )
        top = save(f"A{k}", PastBehaviorQuery(root, included_segments=(b, c)))
    return PastBehaviorQuery(Node(condition=InSegment(top)), excluded_segments=(b,)), segments


@pytest.mark.parametrize("steps", [1, 5])
def test_a_segment_reached_by_several_paths_is_compiled_once(steps: int) -> None:
    query, segments = _ladder(steps)
    compiled = compile_members(query, EvaluationContext("proj", T0, "UTC", segments))
    names = {value: key for key, value in compiled.params.items() if isinstance(value, str)}
    for segment in segments:
        # the segment's one clause counts its event once
        event = "{" + names[segment.rsplit("/", 1)[1]] + ":String}"
        assert compiled.sql.count(f"event_name = {event}") == 1, segment
    # the references are one subquery over one scan of the events, one layer per level
    assert compiled.sql.count("FROM events") == 1
    assert compiled.sql.count("SELECT *, ") == 2 * steps + 1


NY = "America/New_York"


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_windows_resolve_in_the_project_time_zone() -> None:
    as_of = _utc(2024, 3, 10, 12)  # 08:00 EDT; DST started at 07:00 UTC
    assert resolve(TodayWindow(), as_of, NY) == Bounds(_utc(2024, 3, 10, 5), None)
    assert resolve(YesterdayWindow(), as_of, NY) == Bounds(
        _utc(2024, 3, 9, 5), _utc(2024, 3, 10, 5)
    )
    day = LastWindow(RelativeOffset(1, TimeUnit.DAY))
    assert resolve(day, as_of, NY) == Bounds(_utc(2024, 3, 9, 12), None)
    month = LastWindow(RelativeOffset(1, TimeUnit.MONTH))
    # March 31 14:00 EDT minus a month: February 29 14:00 EST
    assert resolve(month, _utc(2024, 3, 31, 18), NY) == Bounds(_utc(2024, 2, 29, 19), None)
    dates = RangeWindow(TimePoint(date=date(2024, 11, 3)), TimePoint(date=date(2024, 11, 4)))
    assert resolve(dates, as_of, NY) == Bounds(_utc(2024, 11, 3, 4), _utc(2024, 11, 4, 5))


def test_month_arithmetic_clamps_and_handles_gaps() -> None:
    assert add_months(_utc(2024, 1, 31, 12), 1, "UTC") == _utc(2024, 2, 29, 12)
    assert add_months(_utc(2024, 3, 31, 12), -13, "UTC") == _utc(2023, 2, 28, 12)
    # 02:30 local on March 10 2024 does not exist in New York: moved forward by the gap
    start = datetime(2024, 2, 10, 7, 30, tzinfo=UTC)  # 02:30 EST
    assert add_months(start, 1, NY) == _utc(2024, 3, 10, 7, 30)  # 03:30 EDT
