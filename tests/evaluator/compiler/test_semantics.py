"""One explicit test per semantic rule of SPEC section 4, on both engines.

Every result is also checked against the reference evaluator (see `helpers.members`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from libs.clickhouse.port import ClickHouse
from libs.model.definition import (
    Aggregate,
    AggregateFunction,
    BooleanOperator,
    Comparison,
    DidEvent,
    DidNotEvent,
    FirstTime,
    Inaction,
    LastWindow,
    Node,
    PastBehaviorQuery,
    PropertyFilter,
    RangeWindow,
    RelativeOffset,
    Sequence,
    TimePoint,
    TimeUnit,
    TodayWindow,
    UserProperty,
    YesterdayWindow,
)
from libs.model.definition import ComparisonOperator as Op

from .helpers import ALL, MS, T0, ev, f, members, q, spec
from .world import Profile, World

H = timedelta(hours=1)
D = timedelta(days=1)


def avg(op: Op, value: float, *filters: object, flag: bool = False) -> PastBehaviorQuery:
    aggregate = Aggregate(AggregateFunction.AVG, op, (value,), "amount", flag)
    return q(DidEvent(spec("Charged", *filters), ALL, aggregate))  # type: ignore[arg-type]


async def test_average_counts_missing_property_as_zero(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "Charged", T0 - i * H, amount=v) for i, v in enumerate((3.0, 5.0, 7.0))]
        + [ev("u1", "Charged", T0 - 5 * H), ev("u1", "Charged", T0 - 6 * H)]
    )
    assert await members(ch, world, avg(Op.EQUALS, 3.0)) == {"u1"}
    assert await members(ch, world, avg(Op.GREATER_THAN, 3.0)) == set()
    # a "property exists" filter drops the events lacking it: (3 + 5 + 7) / 3
    exists = f("amount", Op.EXISTS)
    assert await members(ch, world, avg(Op.EQUALS, 5.0, exists)) == {"u1"}


async def test_min_max_ignore_events_without_the_property(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "Charged", T0, amount=4.0), ev("u1", "Charged", T0 - H), ev("u2", "Charged", T0)]
    )
    minimum = Aggregate(AggregateFunction.MIN, Op.GREATER_THAN_OR_EQUAL, (4.0,), "amount")
    assert await members(ch, world, q(DidEvent(spec("Charged"), ALL, minimum))) == {"u1"}
    lowest = Aggregate(AggregateFunction.MIN, Op.LESS_THAN, (1.0,), "amount", True)
    # u2 has no amount at all: no minimum, no match even with the flag
    assert await members(ch, world, q(DidEvent(spec("Charged"), ALL, lowest))) == set()


async def test_include_non_performers(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "Charged", T0), ev("u1", "Charged", T0 - H), ev("u3", "Other", T0)],
        [Profile("u2")],
    )
    fewer = Aggregate(AggregateFunction.COUNT, Op.LESS_THAN, (5.0,))
    flagged = Aggregate(AggregateFunction.COUNT, Op.LESS_THAN, (5.0,), "", True)
    assert await members(ch, world, q(DidEvent(spec("Charged"), ALL, fewer))) == {"u1"}
    every = {"u1", "u2", "u3"}
    assert await members(ch, world, q(DidEvent(spec("Charged"), ALL, flagged))) == every
    total = Aggregate(AggregateFunction.SUM, Op.LESS_THAN_OR_EQUAL, (0.0,), "amount", True)
    assert await members(ch, world, q(DidEvent(spec("Charged"), ALL, total))) == every
    zero = Aggregate(AggregateFunction.COUNT, Op.EQUALS, (0.0,), "", True)
    assert await members(ch, world, q(DidEvent(spec("Charged"), ALL, zero))) == {"u2", "u3"}


async def test_did_not_and_not_include_users_without_events(ch: ClickHouse) -> None:
    world = World([ev("u1", "Charged", T0)], [Profile("u2")])
    assert await members(ch, world, q(DidNotEvent(spec("Charged"), ALL))) == {"u2"}
    did = Node(condition=DidEvent(spec("Charged"), ALL))
    negated = PastBehaviorQuery(Node(operator=BooleanOperator.NOT, children=(did,)))
    assert await members(ch, world, negated) == {"u2"}


async def test_first_time(ch: ClickHouse) -> None:
    yesterday = YesterdayWindow()
    world = World(
        [
            ev("old", "Charged", T0 - 10 * D),
            ev("old", "Charged", T0 - D),
            ev("new", "Charged", T0 - D),
            # the earlier event fails the filter: the first *matching* one is yesterday
            ev("filtered", "Charged", T0 - 10 * D, currency="EUR"),
            ev("filtered", "Charged", T0 - D, currency="USD"),
        ]
    )
    assert await members(ch, world, q(FirstTime(spec("Charged"), yesterday))) == {"new"}
    usd = spec("Charged", f("currency", Op.EQUALS, "USD"))
    assert await members(ch, world, q(FirstTime(usd, yesterday))) == {"filtered"}


async def test_inaction_without_within(ch: ClickHouse) -> None:
    window = LastWindow(RelativeOffset(1, TimeUnit.DAY))
    world = World(
        [
            ev("cart", "Added", T0 - H),
            ev("bought", "Added", T0 - H),
            ev("bought", "Charged", T0 - 2 * H),
            ev("bought_before", "Added", T0 - H),
            ev("bought_before", "Charged", T0 - 2 * D),  # outside the window
        ]
    )
    result = await members(ch, world, q(Inaction(spec("Added"), spec("Charged"), window)))
    assert result == {"cart", "bought_before"}


async def test_inaction_within(ch: ClickHouse) -> None:
    t = timedelta(minutes=10)
    a = T0 - H
    world = World(
        [
            ev("exactly_t", "Added", a),
            ev("exactly_t", "Charged", a + t),  # within T includes T: no qualification
            ev("just_after", "Added", a),
            ev("just_after", "Charged", a + t + MS),
            ev("same_instant", "Added", a),
            ev("same_instant", "Charged", a),  # not after A
            ev("pending", "Added", T0 - t + MS),  # T not elapsed at as_of
            ev("elapsed", "Added", T0 - t),  # T elapses exactly at as_of
            ev("late_b", "Added", T0 - 2 * D),  # A outside the window, B irrelevant
            # B outside the window still counts as following A
            ev("edge", "Added", T0 - D),
            ev("edge", "Charged", T0 - D + t),
        ]
    )
    window = LastWindow(RelativeOffset(1, TimeUnit.DAY))
    result = await members(ch, world, q(Inaction(spec("Added"), spec("Charged"), window, t)))
    assert result == {"just_after", "same_instant", "elapsed"}


async def test_sequences(ch: ClickHouse) -> None:
    t = H
    world = World(
        [
            ev("ordered", "A", T0 - 5 * H),
            ev("ordered", "B", T0 - 4 * H),
            ev("same_time", "A", T0 - 5 * H),
            ev("same_time", "B", T0 - 5 * H),
            ev("gap_t", "A", T0 - 5 * H),
            ev("gap_t", "B", T0 - 4 * H),
            ev("gap_t", "C", T0 - 3 * H),
            ev("gap_over", "A", T0 - 5 * H),
            ev("gap_over", "B", T0 - 4 * H + MS),
            # greedy trap: the first A is too early for B, the later A works
            ev("greedy", "A", T0 - 10 * H),
            ev("greedy", "A", T0 - 5 * H),
            ev("greedy", "B", T0 - 4 * H - 30 * timedelta(minutes=1)),
            ev("greedy", "C", T0 - 4 * H),
            ev("reverse", "B", T0 - 5 * H),
            ev("reverse", "A", T0 - 4 * H),
        ]
    )
    ab = (spec("A"), spec("B"))
    assert await members(ch, world, q(Sequence(ab, ALL))) == {
        "ordered",
        "gap_t",
        "gap_over",
        "greedy",
    }
    assert await members(ch, world, q(Sequence(ab, ALL, t))) == {"ordered", "gap_t", "greedy"}
    abc = (spec("A"), spec("B"), spec("C"))
    assert await members(ch, world, q(Sequence(abc, ALL, t))) == {"gap_t", "greedy"}
    # all steps inside the window
    window = LastWindow(RelativeOffset(4, TimeUnit.HOUR))
    assert await members(ch, world, q(Sequence(ab, window))) == set()


async def test_windows_in_new_york_across_dst(ch: ClickHouse) -> None:
    ny = "America/New_York"
    as_of = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)  # 08:00 EDT, DST began at 07:00 UTC
    midnight = datetime(2024, 3, 10, 5, 0, tzinfo=UTC)  # 00:00 EST
    world = World(
        [
            ev("today", "E", midnight),
            ev("yesterday", "E", midnight - MS),
            ev("yesterday_start", "E", datetime(2024, 3, 9, 5, 0, tzinfo=UTC)),
            ev("before_yesterday", "E", datetime(2024, 3, 9, 5, 0, tzinfo=UTC) - MS),
            ev("future", "E", as_of + MS),
        ]
    )
    got = await members(ch, world, q(DidEvent(spec("E"), TodayWindow())), as_of=as_of, time_zone=ny)
    assert got == {"today"}
    got = await members(
        ch, world, q(DidEvent(spec("E"), YesterdayWindow())), as_of=as_of, time_zone=ny
    )
    assert got == {"yesterday", "yesterday_start"}
    # a bare date is local midnight; the range excludes its end
    dates = RangeWindow(TimePoint(date=date(2024, 3, 9)), TimePoint(date=date(2024, 3, 10)))
    got = await members(ch, world, q(DidEvent(spec("E"), dates)), as_of=as_of, time_zone=ny)
    assert got == {"yesterday", "yesterday_start"}


async def test_month_window_is_calendar_based_in_the_time_zone(ch: ClickHouse) -> None:
    ny = "America/New_York"
    as_of = datetime(2024, 3, 31, 18, 0, tzinfo=UTC)  # 14:00 EDT on March 31
    start = datetime(2024, 2, 29, 19, 0, tzinfo=UTC)  # 14:00 EST on February 29 (clamped)
    world = World([ev("in", "E", start), ev("out", "E", start - MS), ev("now", "E", as_of)])
    month = LastWindow(RelativeOffset(1, TimeUnit.MONTH))
    got = await members(ch, world, q(DidEvent(spec("E"), month)), as_of=as_of, time_zone=ny)
    assert got == {"in", "now"}
    # "last 1 day" is rolling 24 hours, both ends included
    day = LastWindow(RelativeOffset(1, TimeUnit.DAY))
    world = World([ev("edge", "E", as_of - D), ev("out", "E", as_of - D - MS)])
    assert await members(ch, world, q(DidEvent(spec("E"), day)), as_of=as_of) == {"edge"}


async def test_as_of_reproduces_the_past(ch: ClickHouse) -> None:
    world = World(
        [ev("u1", "E", T0 - D), ev("u1", "E", T0 + MS), ev("u2", "E", T0 + H)],
    )
    count2 = Aggregate(AggregateFunction.COUNT, Op.GREATER_THAN_OR_EQUAL, (2.0,))
    assert await members(ch, world, q(DidEvent(spec("E"), ALL, count2))) == set()
    # u2's only event is later than as_of: not even in the universe
    assert await members(ch, world, q(DidNotEvent(spec("E"), ALL))) == set()
    later = T0 + D
    assert await members(ch, world, q(DidEvent(spec("E"), ALL, count2)), as_of=later) == {"u1"}


async def test_user_properties(ch: ClickHouse) -> None:
    world = World(
        [ev("noprofile", "E", T0)],
        [
            Profile("ny", {"city": "New York", "age": 30.0, "vip": True}),
            Profile("text_age", {"city": "new york city", "age": "30"}),
            Profile("due", {"renewal": T0 + 3 * D, "signup": T0 - 40 * D, "city": "Ünïcode ÉTÉ"}),
        ],
    )

    async def prop(op: Op, name: str, *values: object) -> set[str]:
        return await members(ch, world, q(UserProperty(f(name, op, *values))))  # type: ignore[arg-type]

    assert await prop(Op.EQUALS, "city", "New York") == {"ny"}
    assert await prop(Op.NOT_EQUALS, "city", "New York") == {"text_age", "due", "noprofile"}
    assert await prop(Op.CONTAINS, "city", "YORK") == {"ny", "text_age"}
    assert await prop(Op.STARTS_WITH, "city", "ünï") == {"due"}
    assert await prop(Op.GREATER_THAN_OR_EQUAL, "age", 30.0) == {"ny"}  # "30" is text
    assert await prop(Op.EQUALS, "vip", True) == {"ny"}
    assert await prop(Op.NOT_EXISTS, "age") == {"due", "noprofile"}
    assert await prop(Op.IN_LIST, "age", 30.0, "30") == {"ny", "text_age"}
    assert await prop(Op.BETWEEN, "renewal", T0, T0 + 3 * D) == {"due"}
    within = Comparison(Op.DATE_WITHIN_NEXT, (), RelativeOffset(5, TimeUnit.DAY))
    in5 = UserProperty(PropertyFilter("renewal", within))
    assert await members(ch, world, q(in5)) == {"due"}
    ago = Comparison(Op.DATE_MORE_THAN_AGO, (), RelativeOffset(1, TimeUnit.MONTH))
    assert await members(ch, world, q(UserProperty(PropertyFilter("signup", ago)))) == {"due"}
