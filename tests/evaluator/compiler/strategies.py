"""Hypothesis strategies: random definitions and small event histories that hit boundaries.

Times cluster on the instants where rules change their answer: as_of itself, window starts
(rolling, calendar month, local midnights around daylight-saving changes), the `within` span
after another event, each shifted by 0 or +/- 1 ms. Values are multiples of 0.5 so that sums
and averages are exact in any summation order.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from libs.model.definition import (
    Aggregate,
    AggregateFunction,
    AllTimeWindow,
    BeforeWindow,
    BooleanOperator,
    Comparison,
    ComparisonOperator,
    CustomListDefinition,
    Definition,
    DidEvent,
    DidNotEvent,
    EventSpec,
    FirstTime,
    IdentityKind,
    Inaction,
    InSegment,
    LastWindow,
    LiveDefinition,
    Node,
    PastBehaviorQuery,
    PropertyFilter,
    RangeWindow,
    RelativeOffset,
    Scalar,
    Sequence,
    SinceWindow,
    SingleActionTrigger,
    SystemDefinition,
    SystemSegmentKind,
    TimePoint,
    TimeUnit,
    TimeWindow,
    TodayWindow,
    UserProperty,
    YesterdayWindow,
)

from .world import PROFILE_SEEN_AT, Event, ListRow, Profile, World

Op = ComparisonOperator
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata")
AS_OFS = (
    datetime(2024, 3, 10, 12, 0, tzinfo=UTC),  # New York springs forward that morning
    datetime(2024, 11, 3, 10, 30, tzinfo=UTC),  # New York falls back that morning
    datetime(2024, 3, 31, 18, 0, 0, 250000, tzinfo=UTC),  # Berlin DST day, month end
    datetime(2024, 3, 31, 18, 0, 0, 250500, tzinfo=UTC),  # sub-millisecond as_of
    datetime(2024, 6, 15, 4, 0, tzinfo=UTC),
)
NAMES = ("A", "B", "C")
USERS = ("u0", "u1", "u2", "u3", "u4", "u5", "u6", "o'Neil\\\"; DROP TABLE users --")
WITHINS = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))
NUMBERS = (-1.5, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0)
STRINGS = ("New York", "new york", "ny", "Ünïcode ÉTÉ", "o'brien\\", "", "SELECT")
SEGMENTS = {
    "plain": "projects/proj/segments/plain",
    "nested": "projects/proj/segments/nested",
    "list": "projects/proj/segments/list",
    "all": "projects/proj/segments/all",
    "test": "projects/proj/segments/test",
    "live": "projects/proj/segments/live",
}
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Case:
    world: World
    as_of: datetime
    time_zone: str
    definition: PastBehaviorQuery
    segments: dict[str, Definition]


def _floor_ms(t: datetime) -> datetime:
    return t - timedelta(microseconds=t.microsecond % 1000)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time()).replace(tzinfo=zone).astimezone(UTC)


def interesting_instants(as_of: datetime, time_zone: str) -> list[datetime]:
    zone = ZoneInfo(time_zone)
    today = as_of.astimezone(zone).date()
    found = [as_of]
    for n in (1, 2):
        for unit in (
            timedelta(minutes=1),
            timedelta(hours=1),
            timedelta(days=1),
            timedelta(weeks=1),
        ):
            found.append(as_of - n * unit)
    local = as_of.astimezone(zone)
    for n in (1, 2):
        index = local.year * 12 + local.month - 1 - n
        year, month = index // 12, index % 12 + 1
        day = min(local.day, calendar.monthrange(year, month)[1])
        found.append(local.replace(year=year, month=month, day=day).astimezone(UTC))
    for back in (0, 1, 2, 5):
        found.append(_midnight(today - timedelta(days=back), zone))
    return found


def cases() -> st.SearchStrategy[Case]:
    """A random case: as_of and time zone first, then everything clustered around them."""
    pairs = st.tuples(st.sampled_from(AS_OFS), st.sampled_from(ZONES))
    return pairs.flatmap(lambda pair: _cases_at(*pair))


@functools.cache
def _cases_at(as_of: datetime, time_zone: str) -> st.SearchStrategy[Case]:
    instants = interesting_instants(as_of, time_zone)
    zone = ZoneInfo(time_zone)
    today = as_of.astimezone(zone).date()

    moments = st.builds(
        lambda base, delta: _floor_ms(base + delta),
        st.sampled_from(instants),
        st.sampled_from(
            (timedelta(0), _MS, -_MS, timedelta(hours=-1), *WITHINS, *(-w for w in WITHINS))
        ),
    )
    values: st.SearchStrategy[Scalar] = st.one_of(
        st.sampled_from(NUMBERS), st.sampled_from(STRINGS), st.booleans(), moments
    )
    prop_values = {
        "x": st.one_of(st.sampled_from(NUMBERS), st.just("3")),
        "s": st.sampled_from(STRINGS),
        "t": moments,
        "f": st.booleans(),
    }
    props = st.fixed_dictionaries({}, optional=prop_values)

    # --- definitions ---
    points = st.one_of(
        st.builds(lambda t: TimePoint(instant=t), moments),
        st.builds(lambda d: TimePoint(date=today - timedelta(days=d)), st.integers(-1, 5)),
    )
    windows: st.SearchStrategy[TimeWindow] = st.one_of(
        st.builds(
            lambda n, u: LastWindow(RelativeOffset(n, u)),
            st.integers(1, 2),
            st.sampled_from(TimeUnit),
        ),
        st.just(TodayWindow()),
        st.just(YesterdayWindow()),
        st.builds(RangeWindow, points, points),
        st.builds(SinceWindow, points),
        st.builds(BeforeWindow, points),
        st.just(AllTimeWindow()),
    )
    offsets = st.builds(RelativeOffset, st.integers(0, 2), st.sampled_from(TimeUnit))
    comparisons = st.one_of(
        st.builds(
            Comparison,
            st.sampled_from(
                (
                    Op.EQUALS,
                    Op.NOT_EQUALS,
                    Op.IN_LIST,
                    Op.NOT_IN_LIST,
                    Op.CONTAINS,
                    Op.NOT_CONTAINS,
                    Op.STARTS_WITH,
                )
            ),
            st.lists(values, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(
            Comparison,
            st.sampled_from(
                (Op.GREATER_THAN, Op.GREATER_THAN_OR_EQUAL, Op.LESS_THAN, Op.LESS_THAN_OR_EQUAL)
            ),
            st.one_of(st.sampled_from(NUMBERS), moments, st.sampled_from(STRINGS)).map(
                lambda v: (v,)
            ),
        ),
        st.builds(
            Comparison,
            st.just(Op.BETWEEN),
            st.one_of(
                st.tuples(st.sampled_from(NUMBERS), st.sampled_from(NUMBERS)),
                st.tuples(moments, moments),
            ),
        ),
        st.builds(Comparison, st.sampled_from((Op.EXISTS, Op.NOT_EXISTS))),
        st.builds(
            Comparison,
            st.sampled_from(
                (
                    Op.DATE_WITHIN_LAST,
                    Op.DATE_WITHIN_NEXT,
                    Op.DATE_MORE_THAN_AGO,
                    Op.DATE_MORE_THAN_AHEAD,
                )
            ),
            st.just(()),
            offsets,
        ),
    )
    filters = st.builds(PropertyFilter, st.sampled_from(tuple(prop_values)), comparisons)
    specs = st.builds(EventSpec, st.sampled_from(NAMES), st.lists(filters, max_size=1).map(tuple))
    aggregates = st.one_of(
        st.none(),
        st.builds(
            Aggregate,
            st.sampled_from(AggregateFunction),
            st.sampled_from(
                (
                    Op.GREATER_THAN,
                    Op.GREATER_THAN_OR_EQUAL,
                    Op.LESS_THAN,
                    Op.LESS_THAN_OR_EQUAL,
                    Op.EQUALS,
                    Op.NOT_EQUALS,
                )
            ),
            st.sampled_from((0.0, 1.0, 2.0, 2.5, 3.0)).map(lambda v: (v,)),
            st.just("x"),
            st.booleans(),
        ),
        st.builds(
            Aggregate,
            st.sampled_from(AggregateFunction),
            st.just(Op.BETWEEN),
            st.tuples(st.sampled_from((0.0, 1.0)), st.sampled_from((1.0, 2.5, 5.0))),
            st.just("x"),
            st.booleans(),
        ),
    )
    within = st.one_of(st.none(), st.sampled_from(WITHINS))
    conditions = st.one_of(
        st.builds(DidEvent, specs, windows, aggregates),
        st.builds(DidNotEvent, specs, windows),
        st.builds(Inaction, specs, specs, windows, within),
        st.builds(FirstTime, specs, windows),
        st.builds(Sequence, st.lists(specs, min_size=1, max_size=3).map(tuple), windows, within),
        st.builds(UserProperty, filters),
        st.builds(InSegment, st.sampled_from(tuple(SEGMENTS.values())), st.booleans()),
    )
    leaves = st.builds(lambda c: Node(condition=c), conditions)
    trees = st.recursive(
        leaves,
        lambda children: st.builds(
            lambda op, kids: Node(operator=op, children=tuple(kids)),
            st.sampled_from(BooleanOperator),
            st.lists(children, min_size=1, max_size=3),
        ),
        max_leaves=5,
    )

    # mostly no included/excluded segments: excluding "all" or including an empty list
    # leaves nothing to compare
    references = st.sampled_from(((),) * 4 + tuple((name,) for name in SEGMENTS.values()))

    roots = st.one_of(trees, trees, trees, st.none())

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        # --- events: free ones plus follow-ups exactly around `within` of another ---
        base_events = draw(
            st.lists(
                st.builds(Event, st.sampled_from(USERS), st.sampled_from(NAMES), moments, props),
                min_size=8,
                max_size=40,
            )
        )
        follow = []
        for event in (
            draw(st.lists(st.sampled_from(base_events), max_size=10)) if base_events else []
        ):
            gap = draw(st.sampled_from(WITHINS)) + draw(st.sampled_from((timedelta(0), _MS, -_MS)))
            follow.append(
                Event(event.user_id, draw(st.sampled_from(NAMES)), event.time + gap, draw(props))
            )
        # a user's profile versions at distinct times, some later than as_of (read as of it)
        profiles = [
            Profile(user, draw(props), draw(st.booleans()), when)
            for user in draw(st.lists(st.sampled_from(USERS), unique=True, max_size=6))
            for when in draw(
                st.lists(
                    st.one_of(st.just(PROFILE_SEEN_AT), moments),
                    min_size=1,
                    max_size=2,
                    unique=True,
                )
            )
        ]
        list_rows = [
            ListRow(SEGMENTS["list"], user, sequence, member)
            for user, sequence, member in draw(
                st.lists(
                    st.tuples(st.sampled_from(USERS), st.integers(0, 3), st.booleans()),
                    max_size=8,
                    unique_by=lambda r: (r[0], r[1]),
                )
            )
        ]
        world = World(base_events + follow, profiles, list_rows)

        plain = PastBehaviorQuery(root=draw(trees.filter(lambda n: not _references(n))))
        segments: dict[str, Definition] = {
            SEGMENTS["plain"]: plain,
            SEGMENTS["nested"]: PastBehaviorQuery(
                root=draw(st.one_of(st.none(), leaves.filter(lambda n: not _references(n)))),
                included_segments=(SEGMENTS["plain"],),
                excluded_segments=draw(st.sampled_from(((), (SEGMENTS["test"],)))),
            ),
            SEGMENTS["list"]: CustomListDefinition(IdentityKind.USER_ID),
            SEGMENTS["all"]: SystemDefinition(SystemSegmentKind.ALL_USERS),
            SEGMENTS["test"]: SystemDefinition(SystemSegmentKind.TEST_USERS),
            SEGMENTS["live"]: LiveDefinition(SingleActionTrigger(EventSpec("A")), plain),
        }
        definition = PastBehaviorQuery(
            root=draw(roots),
            included_segments=draw(references),
            excluded_segments=draw(references),
        )
        return Case(world, as_of, time_zone, definition, segments)

    return build()


def _references(node: Node) -> bool:
    if isinstance(node.condition, InSegment):
        return True
    return any(_references(child) for child in node.children)
