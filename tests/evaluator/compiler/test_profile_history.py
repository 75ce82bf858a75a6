"""Profiles as of an instant: every profile write is a version, and an evaluation as of an
instant reads each user's latest version at or before it (on both engines, checked against the
reference evaluator by `helpers.members`)."""

from __future__ import annotations

from datetime import timedelta

from libs.clickhouse.port import ClickHouse
from libs.model.definition import (
    BooleanOperator,
    DidEvent,
    Node,
    PastBehaviorQuery,
    SystemDefinition,
    SystemSegmentKind,
    UserProperty,
)
from libs.model.definition import ComparisonOperator as Op

from .helpers import ALL, T0, ev, f, members, q, spec
from .world import Profile, World

D = timedelta(days=1)
CITY_NY = q(UserProperty(f("city", Op.EQUALS, "New York")))


def _moved_to_boston() -> World:
    return World(
        [ev("u1", "Charged", T0 - 3 * D)],
        [
            Profile("u1", {"city": "New York"}, update_time=T0 - 10 * D),
            Profile("u1", {"city": "Boston"}, update_time=T0 - D),
            Profile("u2", {"city": "New York"}, update_time=T0 - 10 * D),
        ],
    )


async def test_a_profile_changed_later_keeps_its_earlier_value(ch: ClickHouse) -> None:
    world = _moved_to_boston()
    assert await members(ch, world, CITY_NY, as_of=T0 - 2 * D) == {"u1", "u2"}
    assert await members(ch, world, CITY_NY, as_of=T0) == {"u2"}
    # negative operators see the version of the day too
    not_ny = q(UserProperty(f("city", Op.NOT_EQUALS, "New York")))
    assert await members(ch, world, not_ny, as_of=T0 - 2 * D) == set()
    assert await members(ch, world, not_ny, as_of=T0) == {"u1"}


async def test_a_profile_mixed_with_events_reads_its_version(ch: ClickHouse) -> None:
    world = _moved_to_boston()
    mixed = PastBehaviorQuery(
        Node(
            operator=BooleanOperator.OR,
            children=(
                Node(condition=UserProperty(f("city", Op.EQUALS, "New York"))),
                Node(condition=DidEvent(spec("Never"), ALL)),
            ),
        )
    )
    assert await members(ch, world, mixed, as_of=T0 - 2 * D) == {"u1", "u2"}
    assert await members(ch, world, mixed, as_of=T0) == {"u2"}


async def test_a_profile_written_later_is_not_yet_a_user(ch: ClickHouse) -> None:
    world = World(
        [],
        [
            Profile("early", update_time=T0 - 5 * D),
            Profile("late", update_time=T0 - D),
            Profile("tester", test_user=False, update_time=T0 - 5 * D),
            Profile("tester", test_user=True, update_time=T0 - D),
        ],
    )
    everyone = SystemDefinition(SystemSegmentKind.ALL_USERS)
    testers = SystemDefinition(SystemSegmentKind.TEST_USERS)
    assert await members(ch, world, everyone, as_of=T0 - 2 * D) == {"early", "tester"}
    assert await members(ch, world, everyone, as_of=T0) == {"early", "late", "tester"}
    assert await members(ch, world, testers, as_of=T0 - 2 * D) == set()
    assert await members(ch, world, testers, as_of=T0) == {"tester"}
