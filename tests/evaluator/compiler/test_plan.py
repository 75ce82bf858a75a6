"""The query shape: driven by events when a behavioural conjunct needs events, profile-only
conjuncts as semi-joins, and the universe otherwise. Results are checked on both engines
against the reference evaluator (`helpers.members`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.clickhouse.port import ClickHouse
from libs.model.definition import (
    BooleanOperator,
    DidEvent,
    DidNotEvent,
    LastWindow,
    Node,
    PastBehaviorQuery,
    RelativeOffset,
    TimeUnit,
    UserProperty,
)
from libs.model.definition import ComparisonOperator as Op
from services.evaluator.domain.compiler import EvaluationContext, compile_members
from services.evaluator.domain.compiler_plan import classify, conjuncts, holds_without_profile

from .helpers import ALL, T0, ev, f, members, spec
from .world import Profile, World

H = timedelta(hours=1)
WEEK = LastWindow(RelativeOffset(7, TimeUnit.DAY))


def leaf(condition: object) -> Node:
    return Node(condition=condition)  # type: ignore[arg-type]


def both(*children: Node, operator: BooleanOperator = BooleanOperator.AND) -> PastBehaviorQuery:
    return PastBehaviorQuery(root=Node(operator=operator, children=children))


def city(op: Op, *values: str) -> Node:
    return leaf(UserProperty(f("city", op, *values)))


def sql_of(query: PastBehaviorQuery) -> str:
    ctx = EvaluationContext("p", datetime(2024, 1, 1, tzinfo=UTC), "UTC")
    return compile_members(query, ctx).sql


def test_nested_ands_flatten_into_conjuncts() -> None:
    did = leaf(DidEvent(spec("A"), ALL))
    inner = Node(operator=BooleanOperator.AND, children=(did, city(Op.EQUALS, "x")))
    root = Node(operator=BooleanOperator.AND, children=(inner, leaf(DidNotEvent(spec("B"), ALL))))
    assert len(conjuncts(root)) == 3
    plan = classify(root)
    assert (len(plan.behavioural), len(plan.profile), len(plan.mixed)) == (2, 1, 0)


def test_an_or_of_event_and_profile_leaves_is_mixed() -> None:
    root = Node(
        operator=BooleanOperator.OR,
        children=(leaf(DidEvent(spec("A"), ALL)), city(Op.EQUALS, "x")),
    )
    assert classify(root).mixed == (root,)


def test_value_without_profile_follows_negative_operators() -> None:
    assert holds_without_profile(city(Op.NOT_EQUALS, "x"))
    assert not holds_without_profile(city(Op.EQUALS, "x"))
    negated = Node(operator=BooleanOperator.NOT, children=(city(Op.EXISTS),))
    assert holds_without_profile(negated)


def test_a_needed_event_drives_the_query_from_events() -> None:
    sql = sql_of(both(leaf(DidEvent(spec("A"), WEEK)), city(Op.EQUALS, "x")))
    assert "FROM users" not in sql
    assert " HAVING " in sql
    assert "LEFT JOIN" not in sql  # the profile filter is a semi-join


def test_did_not_alone_starts_from_the_universe() -> None:
    sql = sql_of(both(leaf(DidNotEvent(spec("A"), WEEK)), city(Op.EQUALS, "x")))
    assert "FROM users" in sql


async def test_negative_profile_filter_keeps_users_without_a_profile(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "A", T0 - H), ev("u2", "A", T0 - H), ev("u3", "A", T0 - H)],
        [Profile("u1", {"city": "Boston"}), Profile("u2", {"city": "Austin"})],
    )
    query = both(leaf(DidEvent(spec("A"), WEEK)), city(Op.NOT_EQUALS, "Boston"))
    assert await members(ch, world, query) == {"u2", "u3"}


async def test_positive_and_negative_profile_conjuncts_together(ch: ClickHouse) -> None:
    world = World(
        [ev(u, "A", T0 - H) for u in ("u1", "u2", "u3", "u4")],
        [
            Profile("u1", {"city": "Boston", "tier": "gold"}),
            Profile("u2", {"city": "Boston", "tier": "basic"}),
            Profile("u3", {"city": "Austin"}),
        ],
    )
    tier = leaf(UserProperty(f("tier", Op.NOT_EQUALS, "basic")))
    query = both(leaf(DidEvent(spec("A"), WEEK)), city(Op.EQUALS, "Boston"), tier)
    assert await members(ch, world, query) == {"u1"}


async def test_events_driven_query_with_a_mixed_conjunct(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "A", T0 - H), ev("u2", "A", T0 - H), ev("u2", "B", T0 - H)],
        [Profile("u1", {"city": "Boston"}), Profile("u3", {"city": "Boston"})],
    )
    either = Node(
        operator=BooleanOperator.OR,
        children=(leaf(DidEvent(spec("B"), WEEK)), city(Op.EQUALS, "Boston")),
    )
    query = both(leaf(DidEvent(spec("A"), WEEK)), either)
    assert await members(ch, world, query) == {"u1", "u2"}


async def test_universe_query_with_profile_semi_join(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "A", T0 - H), ev("u2", "B", T0 - H)],
        [Profile("u3", {"city": "Boston"}), Profile("u4", {"city": "Austin"})],
    )
    query = both(leaf(DidNotEvent(spec("A"), WEEK)), city(Op.NOT_EQUALS, "Austin"))
    assert await members(ch, world, query) == {"u2", "u3"}
