"""Segment references, list and system segments, the worked example and hostile input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from libs.clickhouse.port import ClickHouse
from libs.model.definition import (
    Aggregate,
    AggregateFunction,
    BooleanOperator,
    CustomListDefinition,
    Definition,
    DidEvent,
    DidNotEvent,
    FirstTime,
    IdentityKind,
    InSegment,
    LastWindow,
    LiveDefinition,
    Node,
    PastBehaviorQuery,
    RangeWindow,
    RelativeOffset,
    SingleActionTrigger,
    SystemDefinition,
    SystemSegmentKind,
    TimePoint,
    TimeUnit,
    UserProperty,
)
from libs.model.definition import ComparisonOperator as Op
from services.evaluator.domain.compiler import EvaluationContext, compile_members

from .helpers import ALL, T0, ev, f, members, q, spec
from .world import PROJECT, ListRow, Profile, World

NY = "America/New_York"
HOSTILE = (
    "x'); DROP TABLE events; --",
    'quote"double',
    "back\\slash\\'",
    "SELECT * FROM users",
    "日本語 ünï {p0:String}",
    "tab\there\nnewline",
)


def _ny(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(NY)).astimezone(UTC)


def new_york_example() -> PastBehaviorQuery:
    """Live in New York, acquired by a Facebook campaign in April, transacted three or more
    times in May and June, and not in the past two weeks.

    Model: "lives in" is the profile property `city`; "acquired in April" is the user's
    first-ever `App Installed` event falling in April, and an April install attributed to
    the campaign source `Facebook` (event property `utm_source`).
    """
    april = RangeWindow(TimePoint(date=date(2024, 4, 1)), TimePoint(date=date(2024, 5, 1)))
    may_june = RangeWindow(TimePoint(date=date(2024, 5, 1)), TimePoint(date=date(2024, 7, 1)))
    three = Aggregate(AggregateFunction.COUNT, Op.GREATER_THAN_OR_EQUAL, (3.0,))
    two_weeks = LastWindow(RelativeOffset(2, TimeUnit.WEEK))
    facebook = spec("App Installed", f("utm_source", Op.EQUALS, "Facebook"))
    leaves = (
        UserProperty(f("city", Op.EQUALS, "New York")),
        FirstTime(spec("App Installed"), april),
        DidEvent(facebook, april),
        DidEvent(spec("Charged"), may_june, three),
        DidNotEvent(spec("Charged"), two_weeks),
    )
    return PastBehaviorQuery(
        Node(operator=BooleanOperator.AND, children=tuple(Node(condition=c) for c in leaves))
    )


async def test_new_york_example(ch: ClickHouse) -> None:
    as_of = datetime(2024, 7, 20, 16, 0, tzinfo=UTC)  # two weeks back: July 6
    city = {"city": "New York"}
    installed = date(2024, 4, 10)

    def customer(user: str, charges: list[datetime], **extra: str) -> list:  # type: ignore[type-arg]
        source = extra.get("source", "Facebook")
        install_day = date.fromisoformat(extra.get("installed", installed.isoformat()))
        events = [ev(user, "App Installed", _ny(install_day, 9), utm_source=source)]
        return events + [ev(user, "Charged", t, amount=10.0) for t in charges]

    good_charges = [_ny(date(2024, 5, 5), 10), _ny(date(2024, 5, 20), 10)]
    # 23:30 on June 30 in New York is already July 1 in UTC: still "in June"
    late_june = _ny(date(2024, 6, 30), 23, 30)
    events = [
        *customer("member", [*good_charges, late_june]),
        *customer("recent", [*good_charges, late_june, _ny(date(2024, 7, 10), 10)]),
        *customer("two_only", [*good_charges, _ny(date(2024, 4, 30), 10)]),
        *customer("los_angeles", [*good_charges, late_june]),
        *customer("google", [*good_charges, late_june], source="Google"),
        *customer("march", [*good_charges, late_june], installed="2024-03-20"),
    ]
    events.append(ev("march", "App Installed", _ny(date(2024, 4, 11), 9), utm_source="Facebook"))
    profiles = [Profile(u, dict(city)) for u in ("member", "recent", "two_only", "google", "march")]
    profiles.append(Profile("los_angeles", {"city": "Los Angeles"}))
    world = World(events, profiles)
    got = await members(ch, world, new_york_example(), as_of=as_of, time_zone=NY)
    assert got == {"member"}


async def test_segment_references_nest(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "A", T0), ev("u2", "A", T0), ev("u2", "B", T0), ev("u3", "B", T0)],
        [Profile("u4", test_user=True), Profile("u1", test_user=True)],
        [
            ListRow("projects/proj/segments/list", "u3", 1, True),
            ListRow("projects/proj/segments/list", "u2", 1, True),
            ListRow("projects/proj/segments/list", "u2", 2, False),  # removed later
        ],
    )
    did_a = "projects/proj/segments/did-a"
    did_b = "projects/proj/segments/did-b"
    a_not_b = "projects/proj/segments/a-not-b"
    listed = "projects/proj/segments/list"
    tests = "projects/proj/segments/test"
    segments: dict[str, Definition] = {
        did_a: q(DidEvent(spec("A"), ALL)),
        did_b: LiveDefinition(SingleActionTrigger(spec("B")), q(DidEvent(spec("B"), ALL))),
        a_not_b: PastBehaviorQuery(included_segments=(did_a,), excluded_segments=(did_b,)),
        listed: CustomListDefinition(IdentityKind.USER_ID),
        tests: SystemDefinition(SystemSegmentKind.TEST_USERS),
    }
    assert await members(ch, world, q(InSegment(a_not_b)), segments=segments) == {"u1"}
    assert await members(ch, world, q(InSegment(a_not_b, negate=True)), segments=segments) == {
        "u2",
        "u3",
        "u4",
    }
    assert await members(ch, world, q(InSegment(listed)), segments=segments) == {"u3"}
    combined = PastBehaviorQuery(
        Node(condition=InSegment(tests)), included_segments=(did_a,), excluded_segments=()
    )
    assert await members(ch, world, combined, segments=segments) == {"u1"}
    list_segment = segments[listed]
    assert await members(ch, world, list_segment, segment_name=listed) == {"u3"}
    assert await members(ch, world, segments[tests]) == {"u1", "u4"}
    everyone = SystemDefinition(SystemSegmentKind.ALL_USERS)
    assert await members(ch, world, everyone) == {"u1", "u2", "u3", "u4"}
    got = await members(ch, world, everyone, user_ids=["u2", "u4", "nobody"])
    assert got == {"u2", "u4"}
    got = await members(ch, world, q(InSegment(a_not_b)), segments=segments, user_ids=["u1"])
    assert got == {"u1"}


async def test_hostile_input_is_bound_not_formatted(ch: ClickHouse) -> None:
    events = []
    profiles = []
    for index, text in enumerate(HOSTILE):
        user = f"{text}-user"
        events.append(ev(user, text, T0 - timedelta(minutes=index), **{text: text}))
        profiles.append(Profile(user, {text: text}))
    events.append(ev("plain", HOSTILE[0], T0, other="x"))
    world = World(events, profiles)
    for text in HOSTILE:
        did = DidEvent(spec(text, f(text, Op.EQUALS, text)), ALL)
        prop = UserProperty(f(text, Op.STARTS_WITH, text[:3]))
        definition = PastBehaviorQuery(
            Node(operator=BooleanOperator.AND, children=(Node(condition=did), Node(condition=prop)))
        )
        ctx = EvaluationContext(PROJECT, T0, "UTC", {})
        query = compile_members(definition, ctx, user_ids=[f"{text}-user", "plain"])
        for fragment in (text, f"{text}-user"):
            assert fragment not in query.sql
        got = await members(ch, world, definition, user_ids=[f"{text}-user", "plain"])
        assert got == {f"{text}-user"}
