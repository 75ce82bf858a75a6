"""Shared helpers of the explicit compiler tests: build definitions, run them, compare."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from libs.clickhouse.port import ClickHouse
from libs.model.definition import (
    AllTimeWindow,
    Comparison,
    ComparisonOperator,
    Condition,
    Definition,
    EventSpec,
    Node,
    PastBehaviorQuery,
    PropertyFilter,
    Scalar,
)
from services.evaluator.domain.compiler import EvaluationContext, compile_members

from .reference import Reference
from .world import PROJECT, Event, World, load

T0 = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)
ALL = AllTimeWindow()
MS = timedelta(milliseconds=1)


def q(condition: Condition) -> PastBehaviorQuery:
    """A query whose root is one condition."""
    return PastBehaviorQuery(root=Node(condition=condition))


def f(prop: str, op: ComparisonOperator, *values: Scalar) -> PropertyFilter:
    return PropertyFilter(prop, Comparison(op, tuple(values)))


def spec(name: str, *filters: PropertyFilter) -> EventSpec:
    return EventSpec(name, tuple(filters))


def ev(user: str, name: str, time: datetime, **props: Scalar) -> Event:
    return Event(user, name, time, dict(props))


async def members(
    ch: ClickHouse,
    world: World,
    definition: Definition,
    *,
    as_of: datetime = T0,
    time_zone: str = "UTC",
    segments: Mapping[str, Definition] | None = None,
    user_ids: list[str] | None = None,
    segment_name: str | None = None,
) -> set[str]:
    """Members by the compiled SQL; asserts the reference evaluator agrees."""
    segments = dict(segments or {})
    await load(ch, world)
    ctx = EvaluationContext(
        PROJECT, as_of, time_zone, segments, profiles_as_of=world.profiles_changed_after(as_of)
    )
    query = compile_members(definition, ctx, user_ids=user_ids, segment_name=segment_name)
    rows = await ch.query(query.sql, query.params)
    got = [row[0] for row in rows]
    assert len(got) == len(set(got)), "a member is listed twice"
    expected = Reference(world, as_of, time_zone, segments).members(definition, segment_name)
    if user_ids is not None:
        expected &= set(user_ids)
    assert set(got) == expected, f"SQL {sorted(got)} != reference {sorted(expected)}"
    return set(got)
