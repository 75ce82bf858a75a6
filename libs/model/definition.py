"""The definition model as plain dataclasses: what a segment means.

It mirrors `protos/segments/v1/definition_model.proto` one to one (conversion in
`libs.model.definition_proto`), so that the definition service can validate and store it and
the evaluator can compile it without touching generated proto types. Field names are the
proto field names, so a validation path (`past_behavior.root.children[2].did_event.window`)
reads the same in both worlds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

#: The supported range of every instant (events, profiles, evaluation times, time points):
#: where events can be stored. Times outside it are refused where a request carries them.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2262, 1, 1, tzinfo=UTC)
SUPPORTED_TIME_RANGE = "between 1970-01-01T00:00:00Z and 2262-01-01T00:00:00Z (exclusive)"


class BooleanOperator(enum.Enum):
    AND = "AND"
    OR = "OR"
    NOT = "NOT"


class AggregateFunction(enum.Enum):
    COUNT = "COUNT"
    SUM = "SUM"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"


class ComparisonOperator(enum.Enum):
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT_EQUALS"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    STARTS_WITH = "STARTS_WITH"
    IN_LIST = "IN_LIST"
    NOT_IN_LIST = "NOT_IN_LIST"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"
    BETWEEN = "BETWEEN"
    EXISTS = "EXISTS"
    NOT_EXISTS = "NOT_EXISTS"
    DATE_WITHIN_LAST = "DATE_WITHIN_LAST"
    DATE_WITHIN_NEXT = "DATE_WITHIN_NEXT"
    DATE_MORE_THAN_AGO = "DATE_MORE_THAN_AGO"
    DATE_MORE_THAN_AHEAD = "DATE_MORE_THAN_AHEAD"


#: Operators that match a user lacking the property.
NEGATIVE_OPERATORS = frozenset(
    {
        ComparisonOperator.NOT_EQUALS,
        ComparisonOperator.NOT_CONTAINS,
        ComparisonOperator.NOT_IN_LIST,
        ComparisonOperator.NOT_EXISTS,
    }
)
#: Operators that compare numbers (or times).
ORDERING_OPERATORS = frozenset(
    {
        ComparisonOperator.GREATER_THAN,
        ComparisonOperator.GREATER_THAN_OR_EQUAL,
        ComparisonOperator.LESS_THAN,
        ComparisonOperator.LESS_THAN_OR_EQUAL,
        ComparisonOperator.BETWEEN,
    }
)
#: Operators on a time value relative to as_of.
RELATIVE_DATE_OPERATORS = frozenset(
    {
        ComparisonOperator.DATE_WITHIN_LAST,
        ComparisonOperator.DATE_WITHIN_NEXT,
        ComparisonOperator.DATE_MORE_THAN_AGO,
        ComparisonOperator.DATE_MORE_THAN_AHEAD,
    }
)
#: Operators allowed in an aggregate comparison.
AGGREGATE_OPERATORS = ORDERING_OPERATORS | {
    ComparisonOperator.EQUALS,
    ComparisonOperator.NOT_EQUALS,
}
#: "Fewer than" style operators, for which include_non_performers applies.
LESS_OPERATORS = frozenset({ComparisonOperator.LESS_THAN, ComparisonOperator.LESS_THAN_OR_EQUAL})


class TimeUnit(enum.Enum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


#: A typed property value: str, float (numbers), bool, or an aware datetime (UTC).
Scalar = str | float | bool | datetime


@dataclass(frozen=True)
class RelativeOffset:
    amount: int
    unit: TimeUnit


@dataclass(frozen=True)
class Comparison:
    operator: ComparisonOperator
    values: tuple[Scalar, ...] = ()
    relative: RelativeOffset | None = None


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    comparison: Comparison


@dataclass(frozen=True)
class EventSpec:
    event_name: str
    filters: tuple[PropertyFilter, ...] = ()


# --- time windows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TimePoint:
    """Exactly one of `instant` (aware datetime) or `date` (midnight, project time zone)."""

    instant: datetime | None = None
    date: date | None = None


@dataclass(frozen=True)
class LastWindow:
    offset: RelativeOffset


@dataclass(frozen=True)
class TodayWindow:
    pass


@dataclass(frozen=True)
class YesterdayWindow:
    pass


@dataclass(frozen=True)
class RangeWindow:
    start: TimePoint
    end: TimePoint


@dataclass(frozen=True)
class SinceWindow:
    start: TimePoint


@dataclass(frozen=True)
class BeforeWindow:
    end: TimePoint


@dataclass(frozen=True)
class AllTimeWindow:
    pass


TimeWindow = (
    LastWindow
    | TodayWindow
    | YesterdayWindow
    | RangeWindow
    | SinceWindow
    | BeforeWindow
    | AllTimeWindow
)


# --- conditions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregate:
    function: AggregateFunction
    operator: ComparisonOperator
    values: tuple[float, ...]
    property: str = ""
    include_non_performers: bool = False


@dataclass(frozen=True)
class DidEvent:
    event: EventSpec
    window: TimeWindow
    aggregate: Aggregate | None = None  # None means count >= 1


@dataclass(frozen=True)
class DidNotEvent:
    event: EventSpec
    window: TimeWindow


@dataclass(frozen=True)
class Inaction:
    did: EventSpec
    did_not: EventSpec
    window: TimeWindow
    within: timedelta | None = None


@dataclass(frozen=True)
class FirstTime:
    event: EventSpec
    window: TimeWindow


@dataclass(frozen=True)
class Sequence:
    steps: tuple[EventSpec, ...]
    window: TimeWindow
    within: timedelta | None = None


@dataclass(frozen=True)
class UserProperty:
    filter: PropertyFilter


@dataclass(frozen=True)
class InSegment:
    segment: str  # resource name
    negate: bool = False


Condition = DidEvent | DidNotEvent | Inaction | FirstTime | Sequence | UserProperty | InSegment


@dataclass(frozen=True)
class Node:
    """A group (operator + children) or a leaf (condition)."""

    operator: BooleanOperator | None = None
    children: tuple[Node, ...] = ()
    condition: Condition | None = None


@dataclass(frozen=True)
class PastBehaviorQuery:
    root: Node | None = None
    included_segments: tuple[str, ...] = ()
    excluded_segments: tuple[str, ...] = ()


# --- live triggers --------------------------------------------------------------------------


class UrlMatchOperator(enum.Enum):
    EQUALS = "EQUALS"
    CONTAINS = "CONTAINS"
    STARTS_WITH = "STARTS_WITH"
    MATCHES = "MATCHES"


@dataclass(frozen=True)
class UrlMatch:
    operator: UrlMatchOperator
    pattern: str


@dataclass(frozen=True)
class SingleActionTrigger:
    event: EventSpec


@dataclass(frozen=True)
class InactionWithinTrigger:
    did: EventSpec
    did_not: EventSpec
    within: timedelta


@dataclass(frozen=True)
class DateTrigger:
    property: str
    days_from_today: int


@dataclass(frozen=True)
class PageVisitTrigger:
    url: UrlMatch


@dataclass(frozen=True)
class ReferrerTrigger:
    """Exactly one of referrer_url or campaign."""

    referrer_url: UrlMatch | None = None
    campaign: UrlMatch | None = None


@dataclass(frozen=True)
class PageCountTrigger:
    """`window` None means "within one session"."""

    pages: int
    window: RelativeOffset | None = None


LiveTrigger = (
    SingleActionTrigger
    | InactionWithinTrigger
    | DateTrigger
    | PageVisitTrigger
    | ReferrerTrigger
    | PageCountTrigger
)


class ReentryMode(enum.Enum):
    EVERY_OCCURRENCE = "EVERY_OCCURRENCE"
    ONCE = "ONCE"
    AFTER_COOLDOWN = "AFTER_COOLDOWN"


@dataclass(frozen=True)
class Reentry:
    """How often one user may enter a live segment (`cooldown` only for AFTER_COOLDOWN)."""

    mode: ReentryMode = ReentryMode.EVERY_OCCURRENCE
    cooldown: timedelta | None = None


@dataclass(frozen=True)
class LiveDefinition:
    trigger: LiveTrigger
    past_behavior: PastBehaviorQuery | None = None
    reentry: Reentry = Reentry()


# --- list and system segments ---------------------------------------------------------------


class IdentityKind(enum.Enum):
    USER_ID = "USER_ID"
    EMAIL = "EMAIL"
    PHONE = "PHONE"


@dataclass(frozen=True)
class CustomListDefinition:
    identity_kind: IdentityKind


@dataclass(frozen=True)
class PartnerDefinition:
    partner: str
    external_cohort_id: str


class SystemSegmentKind(enum.Enum):
    ALL_USERS = "ALL_USERS"
    TEST_USERS = "TEST_USERS"


@dataclass(frozen=True)
class SystemDefinition:
    kind: SystemSegmentKind


Definition = (
    PastBehaviorQuery | LiveDefinition | CustomListDefinition | PartnerDefinition | SystemDefinition
)


class SegmentType(enum.Enum):
    PAST_BEHAVIOR = "PAST_BEHAVIOR"
    LIVE = "LIVE"
    CUSTOM_LIST = "CUSTOM_LIST"
    PARTNER = "PARTNER"
    SYSTEM = "SYSTEM"


def segment_type(definition: Definition) -> SegmentType:
    """The segment type a definition implies."""
    match definition:
        case PastBehaviorQuery():
            return SegmentType.PAST_BEHAVIOR
        case LiveDefinition():
            return SegmentType.LIVE
        case CustomListDefinition():
            return SegmentType.CUSTOM_LIST
        case PartnerDefinition():
            return SegmentType.PARTNER
        case SystemDefinition():
            return SegmentType.SYSTEM


def referenced_segments(query: PastBehaviorQuery) -> list[str]:
    """Every segment a query references (include, exclude, in-segment leaves), in order."""
    found: list[str] = [*query.included_segments, *query.excluded_segments]

    def walk(node: Node) -> None:
        if isinstance(node.condition, InSegment):
            found.append(node.condition.segment)
        for child in node.children:
            walk(child)

    if query.root is not None:
        walk(query.root)
    return list(dict.fromkeys(found))


def definition_references(definition: Definition) -> list[str]:
    """Segments a definition references (past-behaviour part of live definitions included)."""
    if isinstance(definition, PastBehaviorQuery):
        return referenced_segments(definition)
    if isinstance(definition, LiveDefinition) and definition.past_behavior is not None:
        return referenced_segments(definition.past_behavior)
    return []
