"""A plain-Python evaluator of segment definitions, written from SPEC section 4.

It shares no code with the compiler (windows included) and favours the most literal reading
of each rule over efficiency: it is the oracle the compiled SQL is checked against.

Rules implemented (and documented choices):
* universe: users with a profile version or an event at or before as_of; later events and
  profile versions are invisible everywhere (a profile is its latest version at or before
  as_of);
* windows: see `in_window` (day boundaries compared as local calendar dates in the project's
  time zone; a month back is the local wall-clock time N months earlier, day clamped, read
  with the offset before any daylight-saving change);
* aggregates: events of E in the window passing the filters; missing (or non-numeric)
  property = 0 in sum and average; min/max over numeric values only; without
  include_non_performers a user needs one such event; with it, no event means value 0
  (count, sum, average; min/max still need a value);
* a property value is compared with a value of its own type only.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

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
    Inaction,
    InSegment,
    LastWindow,
    LiveDefinition,
    Node,
    PartnerDefinition,
    PastBehaviorQuery,
    RangeWindow,
    RelativeOffset,
    Scalar,
    Sequence,
    SinceWindow,
    SystemDefinition,
    SystemSegmentKind,
    TimePoint,
    TimeUnit,
    TimeWindow,
    TodayWindow,
    UserProperty,
    YesterdayWindow,
)

from .world import Event, World

Op = ComparisonOperator
_MISSING = object()


class Reference:
    def __init__(
        self,
        world: World,
        as_of: datetime,
        time_zone: str,
        segments: Mapping[str, Definition],
    ) -> None:
        self.world = world
        self.as_of = as_of
        self.zone = ZoneInfo(time_zone)
        self.segments = segments
        self.events = [e for e in world.events if e.time <= as_of]
        self.by_user: dict[str, list[Event]] = {}
        for e in self.events:
            self.by_user.setdefault(e.user_id, []).append(e)
        # each user's profile as it was at as_of: the latest version at or before it
        self.profiles = world.latest_profiles(as_of)
        self.universe = set(self.profiles) | set(self.by_user)

    # --- membership ---------------------------------------------------------------------

    def members(self, definition: Definition, name: str | None = None) -> set[str]:
        if isinstance(definition, PastBehaviorQuery):
            return {u for u in self.universe if self.query_holds(definition, u)}
        if isinstance(definition, LiveDefinition):
            assert definition.past_behavior is not None
            return self.members(definition.past_behavior)
        if isinstance(definition, CustomListDefinition | PartnerDefinition):
            latest: dict[str, tuple[int, bool]] = {}
            for row in self.world.list_rows:
                if row.segment == name and (
                    row.user_id not in latest or row.sequence > latest[row.user_id][0]
                ):
                    latest[row.user_id] = (row.sequence, row.is_member)
            return {u for u, (_, member) in latest.items() if member}
        if isinstance(definition, SystemDefinition):
            if definition.kind is SystemSegmentKind.ALL_USERS:
                return set(self.universe)
            return {p.user_id for p in self.profiles.values() if p.test_user}
        raise AssertionError(definition)

    def query_holds(self, query: PastBehaviorQuery, user: str) -> bool:
        if query.root is not None and not self.node_holds(query.root, user):
            return False
        for name in query.included_segments:
            if user not in self.members(self.segments[name], name):
                return False
        return all(
            user not in self.members(self.segments[name], name) for name in query.excluded_segments
        )

    def node_holds(self, node: Node, user: str) -> bool:
        if node.condition is None:
            results = [self.node_holds(child, user) for child in node.children]
            if node.operator is BooleanOperator.OR:
                return any(results)
            if node.operator is BooleanOperator.NOT:
                return not all(results)
            return all(results)
        return self.condition_holds(node.condition, user)

    # --- conditions ---------------------------------------------------------------------

    def condition_holds(self, condition: object, user: str) -> bool:
        history = sorted(self.by_user.get(user, []), key=lambda e: e.time)
        if isinstance(condition, InSegment):
            inside = user in self.members(self.segments[condition.segment], condition.segment)
            return inside != condition.negate
        if isinstance(condition, UserProperty):
            profile = self.profiles.get(user)
            props = profile.props if profile is not None else {}
            return self.value_matches(
                props.get(condition.filter.property, _MISSING), condition.filter.comparison
            )
        if isinstance(condition, DidEvent):
            found = self.matching(history, condition.event, condition.window)
            if condition.aggregate is None:
                return len(found) >= 1
            return self.aggregate_holds(found, condition.aggregate)
        if isinstance(condition, DidNotEvent):
            return not self.matching(history, condition.event, condition.window)
        if isinstance(condition, Inaction):
            starts = self.matching(history, condition.did, condition.window)
            if condition.within is None:
                return bool(starts) and not self.matching(
                    history, condition.did_not, condition.window
                )
            within = condition.within
            stops = [e.time for e in history if self.event_matches(e, condition.did_not)]
            return any(
                a.time + within <= self.as_of
                and not any(a.time < b <= a.time + within for b in stops)
                for a in starts
            )
        if isinstance(condition, FirstTime):
            every = [e for e in history if self.event_matches(e, condition.event)]
            return bool(every) and self.in_window(min(e.time for e in every), condition.window)
        if isinstance(condition, Sequence):
            return self.sequence_holds(history, condition)
        raise AssertionError(condition)

    def sequence_holds(self, history: list[Event], sequence: Sequence) -> bool:
        steps = [
            [e.time for e in self.matching(history, spec, sequence.window)]
            for spec in sequence.steps
        ]
        if not steps:
            return False

        def chain(index: int, previous: datetime) -> bool:
            if index == len(steps):
                return True
            return any(
                t > previous
                and (sequence.within is None or t - previous <= sequence.within)
                and chain(index + 1, t)
                for t in steps[index]
            )

        return any(chain(1, t) for t in steps[0])

    def aggregate_holds(self, found: list[Event], aggregate: Aggregate) -> bool:
        fn = aggregate.function
        numbers = [_number(e.props.get(aggregate.property, _MISSING)) for e in found]
        if fn in (AggregateFunction.MIN, AggregateFunction.MAX):
            present = [n for n in numbers if n is not None]
            if not present:
                return False
            value = min(present) if fn is AggregateFunction.MIN else max(present)
            return _aggregate_compare(value, aggregate.operator, aggregate.values)
        if not found and not aggregate.include_non_performers:
            return False
        total = 0.0
        for n in numbers:
            total += n if n is not None else 0.0
        if fn is AggregateFunction.COUNT:
            value = float(len(found))
        elif fn is AggregateFunction.SUM:
            value = total
        else:
            value = total / len(found) if found else 0.0
        return _aggregate_compare(value, aggregate.operator, aggregate.values)

    def matching(self, history: list[Event], spec: EventSpec, window: TimeWindow) -> list[Event]:
        return [
            e for e in history if self.event_matches(e, spec) and self.in_window(e.time, window)
        ]

    def event_matches(self, event: Event, spec: EventSpec) -> bool:
        return event.name == spec.event_name and all(
            self.value_matches(event.props.get(f.property, _MISSING), f.comparison)
            for f in spec.filters
        )

    # --- values -------------------------------------------------------------------------

    def value_matches(self, value: object, comparison: Comparison) -> bool:
        op = comparison.operator
        opposite = {
            Op.NOT_EQUALS: Op.EQUALS,
            Op.NOT_CONTAINS: Op.CONTAINS,
            Op.NOT_IN_LIST: Op.IN_LIST,
            Op.NOT_EXISTS: Op.EXISTS,
        }
        if op in opposite:
            positive = Comparison(opposite[op], comparison.values, comparison.relative)
            return not self.value_matches(value, positive)
        if value is _MISSING:
            return False
        values = comparison.values
        if op is Op.EXISTS:
            return True
        if op in (Op.EQUALS, Op.IN_LIST):
            return any(_same_kind(value, v) and value == v for v in values)
        if op is Op.CONTAINS:
            return isinstance(value, str) and any(
                isinstance(v, str) and v.lower() in value.lower() for v in values
            )
        if op is Op.STARTS_WITH:
            return isinstance(value, str) and any(
                isinstance(v, str) and value.lower().startswith(v.lower()) for v in values
            )
        if op is Op.BETWEEN:
            low, high = values[0], values[1]
            return (
                _same_kind(value, low)
                and _same_kind(value, high)
                and _ordered_kind(value)
                and low <= value <= high  # type: ignore[operator]
            )
        if op in (Op.GREATER_THAN, Op.GREATER_THAN_OR_EQUAL, Op.LESS_THAN, Op.LESS_THAN_OR_EQUAL):
            other = values[0]
            if not (_same_kind(value, other) and _ordered_kind(value)):
                return False
            return {
                Op.GREATER_THAN: value > other,  # type: ignore[operator]
                Op.GREATER_THAN_OR_EQUAL: value >= other,  # type: ignore[operator]
                Op.LESS_THAN: value < other,  # type: ignore[operator]
                Op.LESS_THAN_OR_EQUAL: value <= other,  # type: ignore[operator]
            }[op]
        # relative dates
        if not isinstance(value, datetime):
            return False
        assert comparison.relative is not None
        back = self.moved(self.as_of, comparison.relative, -1)
        ahead = self.moved(self.as_of, comparison.relative, 1)
        if op is Op.DATE_WITHIN_LAST:
            return back <= value <= self.as_of
        if op is Op.DATE_WITHIN_NEXT:
            return self.as_of <= value <= ahead
        if op is Op.DATE_MORE_THAN_AGO:
            return value < back
        if op is Op.DATE_MORE_THAN_AHEAD:
            return value > ahead
        raise AssertionError(op)

    # --- time ---------------------------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def moved(self, instant: datetime, offset: RelativeOffset, sign: int) -> datetime:
        if offset.unit is not TimeUnit.MONTH:
            seconds = {
                TimeUnit.MINUTE: 60,
                TimeUnit.HOUR: 3600,
                TimeUnit.DAY: 86400,
                TimeUnit.WEEK: 7 * 86400,
            }[offset.unit]
            return instant + timedelta(seconds=sign * offset.amount * seconds)
        local = instant.astimezone(self.zone)
        months = local.year * 12 + local.month - 1 + sign * offset.amount
        year, month = months // 12, months % 12 + 1
        day = min(local.day, calendar.monthrange(year, month)[1])
        wall = datetime(year, month, day, local.hour, local.minute, local.second, local.microsecond)
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def at_or_after(self, instant: datetime, point: TimePoint) -> bool:
        if point.instant is not None:
            return instant >= point.instant
        assert point.date is not None
        return self.local_date(instant) >= point.date

    def in_window(self, instant: datetime, window: TimeWindow) -> bool:
        if instant > self.as_of:
            return False
        if isinstance(window, AllTimeWindow):
            return True
        if isinstance(window, LastWindow):
            return instant >= self.moved(self.as_of, window.offset, -1)
        if isinstance(window, TodayWindow):
            return self.local_date(instant) == self.local_date(self.as_of)
        if isinstance(window, YesterdayWindow):
            return self.local_date(instant) == self.local_date(self.as_of) - timedelta(days=1)
        if isinstance(window, RangeWindow):
            return self.at_or_after(instant, window.start) and not self.at_or_after(
                instant, window.end
            )
        if isinstance(window, SinceWindow):
            return self.at_or_after(instant, window.start)
        if isinstance(window, BeforeWindow):
            return not self.at_or_after(instant, window.end)
        raise AssertionError(window)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _same_kind(a: object, b: Scalar) -> bool:
    def kind(x: object) -> str:
        if isinstance(x, bool):
            return "bool"
        if isinstance(x, int | float):
            return "number"
        if isinstance(x, datetime):
            return "time"
        return "string" if isinstance(x, str) else "other"

    return kind(a) == kind(b)


def _ordered_kind(value: object) -> bool:
    return _number(value) is not None or isinstance(value, datetime)


def _aggregate_compare(value: float, op: ComparisonOperator, values: tuple[float, ...]) -> bool:
    if op is Op.BETWEEN:
        return values[0] <= value <= values[1]
    return {
        Op.GREATER_THAN: value > values[0],
        Op.GREATER_THAN_OR_EQUAL: value >= values[0],
        Op.LESS_THAN: value < values[0],
        Op.LESS_THAN_OR_EQUAL: value <= values[0],
        Op.EQUALS: value == values[0],
        Op.NOT_EQUALS: value != values[0],
    }[op]
