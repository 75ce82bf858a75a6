"""Event-property filters and URL matches evaluated on one event in memory (pure).

The semantics are those of the compiled queries (`compiler_predicates`), so that a live
trigger and a past-behaviour condition with the same filter agree on every event:

* a value's type picks what it compares with: the string "30" never equals the number 30,
  and numeric operators never match a string;
* equals / in list are exact; contains / starts with are case-insensitive on strings;
* greater / less (or equal) and between compare numbers with numbers and times with times
  (times at millisecond precision, as stored);
* relative date operators compare a time property with `as_of` moved by the offset;
* negative operators are the negation of their positive counterpart, so they match an event
  lacking the property.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.model.definition import (
    Comparison,
    ComparisonOperator,
    EventSpec,
    PropertyFilter,
    Scalar,
    UrlMatch,
    UrlMatchOperator,
)
from libs.model.patterns import compile_re2
from services.evaluator.domain.windows import shift

Op = ComparisonOperator
Properties = Mapping[str, Scalar]
_NEGATIVE = {
    Op.NOT_EQUALS: Op.EQUALS,
    Op.NOT_CONTAINS: Op.CONTAINS,
    Op.NOT_IN_LIST: Op.IN_LIST,
    Op.NOT_EXISTS: Op.EXISTS,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ms(value: datetime) -> datetime:
    """A time at the millisecond precision times are stored with (rounded down)."""
    value = value.astimezone(UTC)
    return value - timedelta(microseconds=value.microsecond % 1000)


def _same_kind(a: Scalar, b: Scalar) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b)
    return type(a) is type(b)


def _equal(prop: Scalar, value: Scalar) -> bool:
    if not _same_kind(prop, value):
        return False
    if isinstance(prop, datetime) and isinstance(value, datetime):
        return _ms(prop) == value.astimezone(UTC)
    return prop == value


def _ordered(prop: Scalar, bounds: list[tuple[str, Scalar]]) -> bool:
    left: Any = prop
    if all(_is_number(v) for _, v in bounds) and _is_number(prop):
        pass
    elif all(isinstance(v, datetime) for _, v in bounds) and isinstance(prop, datetime):
        left = _ms(prop)
    else:
        return False
    for symbol, value in bounds:
        right: Any = value.astimezone(UTC) if isinstance(value, datetime) else value
        if not _COMPARE[symbol](left, right):
            return False
    return True


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _positive(prop: Scalar | None, c: Comparison, as_of: datetime, time_zone: str) -> bool:
    op, values = c.operator, c.values
    if op is Op.EXISTS:
        return prop is not None
    if prop is None:
        return False
    if op in (Op.EQUALS, Op.IN_LIST):
        return any(_equal(prop, v) for v in values)
    if op in (Op.CONTAINS, Op.STARTS_WITH):
        if not isinstance(prop, str):
            return False
        text = prop.lower()
        needles = [v.lower() for v in values if isinstance(v, str)]
        if op is Op.CONTAINS:
            return any(n in text for n in needles)
        return any(text.startswith(n) for n in needles)
    symbols = {
        Op.GREATER_THAN: ">",
        Op.GREATER_THAN_OR_EQUAL: ">=",
        Op.LESS_THAN: "<",
        Op.LESS_THAN_OR_EQUAL: "<=",
    }
    if op in symbols:
        return bool(values) and _ordered(prop, [(symbols[op], values[0])])
    if op is Op.BETWEEN:
        return len(values) >= 2 and _ordered(prop, [(">=", values[0]), ("<=", values[1])])
    offset = c.relative
    if offset is None or not isinstance(prop, datetime):
        return False
    back = shift(as_of, offset, time_zone, sign=-1)
    ahead = shift(as_of, offset, time_zone, sign=1)
    checks: dict[Op, list[tuple[str, Scalar]]] = {
        Op.DATE_WITHIN_LAST: [(">=", back), ("<=", as_of)],
        Op.DATE_WITHIN_NEXT: [(">=", as_of), ("<=", ahead)],
        Op.DATE_MORE_THAN_AGO: [("<", back)],
        Op.DATE_MORE_THAN_AHEAD: [(">", ahead)],
    }
    return _ordered(prop, checks[op])


def filter_holds(f: PropertyFilter, props: Properties, as_of: datetime, time_zone: str) -> bool:
    """Whether one property filter holds for an event with properties `props`."""
    c = f.comparison
    prop = props.get(f.property)
    positive = _NEGATIVE.get(c.operator)
    if positive is not None:
        inner = Comparison(positive, c.values, c.relative)
        return not _positive(prop, inner, as_of, time_zone)
    return _positive(prop, c, as_of, time_zone)


def event_matches(
    spec: EventSpec, name: str, props: Properties, as_of: datetime, time_zone: str
) -> bool:
    """Whether an event named `name` with `props` is an occurrence of `spec`."""
    return name == spec.event_name and all(
        filter_holds(f, props, as_of, time_zone) for f in spec.filters
    )


#: A compiled filter: (properties, as_of) -> holds.
FilterCheck = Callable[[Properties, datetime], bool]
_NUMERIC: dict[Op, Callable[[Any, Any], bool]] = {
    Op.GREATER_THAN: operator.gt,
    Op.GREATER_THAN_OR_EQUAL: operator.ge,
    Op.LESS_THAN: operator.lt,
    Op.LESS_THAN_OR_EQUAL: operator.le,
}


def compile_filter(f: PropertyFilter, time_zone: str) -> FilterCheck:
    """`filter_holds` for one filter, with the common comparisons (a number against a number,
    a string in a set of strings) reduced to a closure: the same answers, faster."""
    name, c = f.property, f.comparison
    op, values = c.operator, c.values
    if op in _NUMERIC and len(values) == 1 and _is_number(values[0]):
        bound, compare = float(values[0]), _NUMERIC[op]  # type: ignore[arg-type]

        def ordered(props: Properties, as_of: datetime) -> bool:
            value = props.get(name)
            return isinstance(value, float) and compare(value, bound)

        return ordered
    if op in _EQUALITY and values and all(isinstance(v, str) for v in values):
        wanted, negative = frozenset(values), op in (Op.NOT_EQUALS, Op.NOT_IN_LIST)

        def equal(props: Properties, as_of: datetime) -> bool:
            value = props.get(name)
            return (isinstance(value, str) and value in wanted) is not negative

        return equal
    return lambda props, as_of: filter_holds(f, props, as_of, time_zone)


_EQUALITY = frozenset({Op.EQUALS, Op.IN_LIST, Op.NOT_EQUALS, Op.NOT_IN_LIST})


def compile_spec(spec: EventSpec, time_zone: str) -> Callable[[str, Properties, datetime], bool]:
    """`event_matches` for one event spec, compiled once."""
    event_name = spec.event_name
    checks = [compile_filter(f, time_zone) for f in spec.filters]

    def matches(name: str, props: Properties, as_of: datetime) -> bool:
        return name == event_name and all(check(props, as_of) for check in checks)

    return matches


class UrlMatcher:
    """A URL-match rule compiled once: equals (exact), contains and starts with
    (case-insensitive), or an RE2 regular expression found anywhere in the value."""

    def __init__(self, match: UrlMatch) -> None:
        self.operator = match.operator
        self.pattern = match.pattern
        self._folded = match.pattern.lower()
        self._regex = (
            compile_re2(match.pattern) if match.operator is UrlMatchOperator.MATCHES else None
        )

    def __call__(self, value: Scalar | None) -> bool:
        if not isinstance(value, str):
            return False
        if self.operator is UrlMatchOperator.EQUALS:
            return value == self.pattern
        if self.operator is UrlMatchOperator.CONTAINS:
            return self._folded in value.lower()
        if self.operator is UrlMatchOperator.STARTS_WITH:
            return value.lower().startswith(self._folded)
        assert self._regex is not None
        return self._regex.search(value) is not None
