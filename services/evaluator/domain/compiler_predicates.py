"""Building blocks of the query compiler: bound parameters, instants, property predicates.

Nothing a user wrote ever becomes SQL text: every identifier and value goes through
`Params.bind`, which returns a `{pN:Type}` placeholder. Instants are bound as Int64
milliseconds since the epoch and turned into `DateTime64(3, 'UTC')` by the query itself, so
that neither engine nor client has to agree on how a datetime parameter is formatted or in
which time zone it is read.

Property semantics (the same for event-property filters and profile properties):

* a property lives in the map of its ingested type (`str_props`, `num_props`, `bool_props`,
  `time_props`); a comparison value picks the map by its own type (str, number, bool, time),
  so a number never equals a string and numeric operators never match a string value;
* equals / in list: the property equals one of the values (exact); contains / starts with:
  case-insensitive (UTF-8 lower case) on string values, any of the values;
* greater / less (or equal) compare with the first value, between with the first two
  (inclusive), numbers against `num_props` and times (as instants) against `time_props`;
* relative date operators compare a time property with `as_of` moved by the offset;
* negative operators are exactly the negation of their positive counterpart, so they match a
  user or an event lacking the property.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from libs.common.errors import InvalidArgument
from libs.model.definition import (
    Comparison,
    ComparisonOperator,
    PropertyFilter,
    Scalar,
)
from services.evaluator.domain.windows import clamp, shift

Op = ComparisonOperator
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

TRUE = "1"
FALSE = "0"


class Params:
    """Collects query parameters; equal values of one type share a placeholder."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._names: dict[tuple[str, Any], str] = {}
        self._aliases = 0

    def bind(self, value: Any, type_: str) -> str:
        key = (type_, tuple(value) if isinstance(value, list) else value)
        name = self._names.get(key)
        if name is None:
            name = f"p{len(self.values)}"
            self._names[key] = name
            self.values[name] = value
        return "{" + name + ":" + type_ + "}"

    def string(self, value: str) -> str:
        return self.bind(value, "String")

    def strings(self, values: Sequence[str]) -> str:
        return self.bind(list(values), "Array(String)")

    def number(self, value: float) -> str:
        return self.bind(float(value), "Float64")

    def integer(self, value: int) -> str:
        return self.bind(int(value), "Int64")

    def instant(self, value: datetime, *, rounding: str) -> str:
        """An instant as DateTime64(3, 'UTC'); `rounding` is "floor" or "ceil" to milliseconds."""
        # clamped: a DateTime64 holds years 1900 to 2299 (stored times lie within 1970-2262)
        return f"fromUnixTimestamp64Milli({self.integer(to_ms(clamp(value), rounding))}, 'UTC')"

    def alias(self, prefix: str) -> str:
        """A fresh alias, unique in the whole query (subqueries included)."""
        self._aliases += 1
        return f"{prefix}{self._aliases}"


def to_ms(value: datetime, rounding: str) -> int:
    """Milliseconds since the epoch, rounded down ("floor") or up ("ceil")."""
    delta = value.astimezone(UTC) - _EPOCH
    whole, rest = divmod(delta, _MS)
    return int(whole) + (1 if rounding == "ceil" and rest else 0)


def duration_ms(value: timedelta) -> int:
    """A duration in whole milliseconds, rounded down (stored times are milliseconds)."""
    return int(value // _MS)


def time_compare(expr: str, op: str, value: datetime, params: Params) -> str:
    """`expr op value` for a millisecond-precision DateTime64 `expr`, exact for any `value`."""
    if op in (">=", "<"):
        return f"{expr} {op} {params.instant(value, rounding='ceil')}"
    if op in ("<=", ">"):
        return f"{expr} {op} {params.instant(value, rounding='floor')}"
    if to_ms(value, "floor") != to_ms(value, "ceil"):
        return FALSE  # a sub-millisecond instant never equals a stored time
    return f"{expr} = {params.instant(value, rounding='floor')}"


def or_all(parts: Sequence[str]) -> str:
    parts = [p for p in parts if p != FALSE]
    if not parts or TRUE in parts:
        return TRUE if TRUE in parts else FALSE
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def and_all(parts: Sequence[str]) -> str:
    parts = [p for p in parts if p != TRUE]
    if not parts or FALSE in parts:
        return FALSE if FALSE in parts else TRUE
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def negate(expr: str) -> str:
    if expr == TRUE:
        return FALSE
    if expr == FALSE:
        return TRUE
    return f"NOT {expr}"


def _is_number(value: Scalar) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class PropertyPredicates:
    """Predicates on the property maps of one row source (`prefix` is "" or "alias.")."""

    def __init__(self, params: Params, prefix: str, as_of: datetime, time_zone: str) -> None:
        self.params = params
        self.prefix = prefix
        self.as_of = as_of
        self.time_zone = time_zone

    def _get(self, kind: str, key: str) -> tuple[str, str]:
        """(`mapContains(...)`, `map[key]`) for one typed map."""
        column = f"{self.prefix}{kind}_props"
        return f"mapContains({column}, {key})", f"{column}[{key}]"

    def filter(self, prop: PropertyFilter) -> str:
        return self.compare(prop.property, prop.comparison)

    def compare(self, name: str, comparison: Comparison) -> str:
        op = comparison.operator
        positive = {
            Op.NOT_EQUALS: Op.EQUALS,
            Op.NOT_CONTAINS: Op.CONTAINS,
            Op.NOT_IN_LIST: Op.IN_LIST,
            Op.NOT_EXISTS: Op.EXISTS,
        }.get(op)
        if positive is not None:
            inner = Comparison(positive, comparison.values, comparison.relative)
            return negate(self._positive(name, inner))
        return self._positive(name, comparison)

    def _positive(self, name: str, comparison: Comparison) -> str:
        key = self.params.string(name)
        op = comparison.operator
        values = comparison.values
        if op is Op.EXISTS:
            return or_all([self._get(kind, key)[0] for kind in ("str", "num", "bool", "time")])
        if op in (Op.EQUALS, Op.IN_LIST):
            return self._any_equal(key, values)
        if op in (Op.CONTAINS, Op.STARTS_WITH):
            return self._text(key, op, [v for v in values if isinstance(v, str)])
        if op in (Op.GREATER_THAN, Op.GREATER_THAN_OR_EQUAL, Op.LESS_THAN, Op.LESS_THAN_OR_EQUAL):
            if not values:
                raise InvalidArgument.field("comparison.values", f"{op.value} needs a value")
            symbol = {
                Op.GREATER_THAN: ">",
                Op.GREATER_THAN_OR_EQUAL: ">=",
                Op.LESS_THAN: "<",
                Op.LESS_THAN_OR_EQUAL: "<=",
            }[op]
            return self._ordered(key, [(symbol, values[0])])
        if op is Op.BETWEEN:
            if len(values) < 2:
                raise InvalidArgument.field("comparison.values", "BETWEEN needs two values")
            low, high = values[0], values[1]
            if _is_number(low) != _is_number(high):
                return FALSE
            return self._ordered(key, [(">=", low), ("<=", high)])
        return self._relative(key, comparison)

    def _any_equal(self, key: str, values: Sequence[Scalar]) -> str:
        parts: list[str] = []
        strings = [v for v in values if isinstance(v, str)]
        if strings:
            has, value = self._get("str", key)
            parts.append(f"({has} AND has({self.params.strings(strings)}, {value}))")
        numbers = [float(v) for v in values if _is_number(v)]
        if numbers:
            has, value = self._get("num", key)
            array = self.params.bind(numbers, "Array(Float64)")
            parts.append(f"({has} AND has({array}, {value}))")
        for flag in sorted({v for v in values if isinstance(v, bool)}):
            has, value = self._get("bool", key)
            parts.append(f"({has} AND {value} = {self.params.bind(int(flag), 'UInt8')})")
        for moment in [v for v in values if isinstance(v, datetime)]:
            has, value = self._get("time", key)
            parts.append(and_all([has, time_compare(value, "=", moment, self.params)]))
        return or_all(parts)

    def _text(self, key: str, op: Op, needles: Sequence[str]) -> str:
        if not needles:
            return FALSE
        has, value = self._get("str", key)
        parts = []
        for needle in needles:
            bound = self.params.string(needle)
            if op is Op.CONTAINS:
                parts.append(f"positionUTF8(lowerUTF8({value}), lowerUTF8({bound})) > 0")
            else:
                parts.append(f"startsWith(lowerUTF8({value}), lowerUTF8({bound}))")
        return and_all([has, or_all(parts)])

    def _ordered(self, key: str, bounds: Sequence[tuple[str, Scalar]]) -> str:
        numbers = [(sym, v) for sym, v in bounds if _is_number(v)]
        times = [(sym, v) for sym, v in bounds if isinstance(v, datetime)]
        if len(numbers) == len(bounds):
            has, value = self._get("num", key)
            checks = [f"{value} {sym} {self.params.number(v)}" for sym, v in numbers]
            return and_all([has, *checks])
        if len(times) == len(bounds):
            has, value = self._get("time", key)
            return and_all([has, *(time_compare(value, sym, v, self.params) for sym, v in times)])
        return FALSE  # strings and booleans never satisfy a numeric operator

    def _relative(self, key: str, comparison: Comparison) -> str:
        offset = comparison.relative
        if offset is None:
            raise InvalidArgument.field(
                "comparison.relative", f"{comparison.operator.value} needs a relative offset"
            )
        has, value = self._get("time", key)
        back = shift(self.as_of, offset, self.time_zone, sign=-1)
        ahead = shift(self.as_of, offset, self.time_zone, sign=1)
        checks = {
            Op.DATE_WITHIN_LAST: [(">=", back), ("<=", self.as_of)],
            Op.DATE_WITHIN_NEXT: [(">=", self.as_of), ("<=", ahead)],
            Op.DATE_MORE_THAN_AGO: [("<", back)],
            Op.DATE_MORE_THAN_AHEAD: [(">", ahead)],
        }[comparison.operator]
        return and_all([has, *(time_compare(value, s, t, self.params) for s, t in checks)])
