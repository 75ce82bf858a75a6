"""Behavioural clauses compiled into one aggregation over `events` (one scan per segment).

Every clause (did, did not, inaction, first time, sequence) becomes a few conditional
aggregates plus one boolean column over them, all in a single

    SELECT user_id, count() AS rows, <aggregates>, <clause columns>
    FROM events WHERE project = ? AND event_name IN ? AND event_time <= as_of [AND lower bound]
    GROUP BY user_id

A user absent from that aggregation (no relevant event at all) takes each clause's value on
an empty history, which is known statically (`Clause.empty_value`): true for "did not", for
an aggregate with include_non_performers whose comparison holds for 0, false otherwise.

Aggregate rule: without include_non_performers an aggregate comparison only matches a user
with at least one matching event in the window; with it, a user without one has count, sum
and average 0 and is compared like anyone else. Min and max ignore events lacking the
property; a user with no such event has no min/max and never matches (flag or not).

Times inside arrays are Int64 milliseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from libs.model.definition import (
    Aggregate,
    AggregateFunction,
    ComparisonOperator,
    DidEvent,
    DidNotEvent,
    EventSpec,
    FirstTime,
    Inaction,
    Sequence,
    TimeWindow,
)
from services.evaluator.domain.compiler_predicates import (
    FALSE,
    TRUE,
    Params,
    PropertyPredicates,
    and_all,
    duration_ms,
    or_all,
    time_compare,
    to_ms,
)
from services.evaluator.domain.windows import Bounds, resolve

Behaviour = DidEvent | DidNotEvent | Inaction | FirstTime | Sequence

_TS = "toUnixTimestamp64Milli(event_time)"
_NO_TIME = "9223372036854775807"  # greater than any millisecond timestamp


@dataclass(frozen=True)
class Clause:
    column: str  # boolean column of the aggregation
    empty_value: bool  # the clause's value for a user with no relevant event


def compare_value(value: float, op: ComparisonOperator, values: tuple[float, ...]) -> bool:
    """An aggregate comparison on a known value (used for the empty-history value)."""
    match op:
        case ComparisonOperator.GREATER_THAN:
            return value > values[0]
        case ComparisonOperator.GREATER_THAN_OR_EQUAL:
            return value >= values[0]
        case ComparisonOperator.LESS_THAN:
            return value < values[0]
        case ComparisonOperator.LESS_THAN_OR_EQUAL:
            return value <= values[0]
        case ComparisonOperator.EQUALS:
            return value == values[0]
        case ComparisonOperator.NOT_EQUALS:
            return value != values[0]
        case ComparisonOperator.BETWEEN:
            return values[0] <= value <= values[1]
    raise ValueError(f"{op.value} is not an aggregate operator")


def chain_step(reach: str, times: str, within_ms: int | None, params: Params) -> str:
    """The times of one step of a sequence (`times`) that extend a chain of the steps before
    it, whose possible end times are `reach`: later than some end, and no more than
    `within_ms` later when set. Without a bound only the earliest end matters."""
    if within_ms is None:
        earliest = f"if(empty({reach}), {_NO_TIME}, arrayMin({reach}))"
        return f"arrayFilter(_t -> _t > {earliest}, {times})"
    span = params.integer(within_ms)
    return f"arrayFilter(_t -> arrayExists(_r -> _r < _t AND _r >= _t - {span}, {reach}), {times})"


def compare_sql(
    params: Params, value: str, op: ComparisonOperator, values: tuple[float, ...]
) -> str:
    """An aggregate comparison of the SQL expression `value` (values bound in `params`)."""
    if op is ComparisonOperator.BETWEEN:
        low, high = params.number(values[0]), params.number(values[1])
        return f"({value} >= {low} AND {value} <= {high})"
    symbol = {
        ComparisonOperator.GREATER_THAN: ">",
        ComparisonOperator.GREATER_THAN_OR_EQUAL: ">=",
        ComparisonOperator.LESS_THAN: "<",
        ComparisonOperator.LESS_THAN_OR_EQUAL: "<=",
        ComparisonOperator.EQUALS: "=",
        ComparisonOperator.NOT_EQUALS: "!=",
    }.get(op)
    if symbol is None:
        raise ValueError(f"{op.value} is not an aggregate operator")
    return f"{value} {symbol} {params.number(values[0])}"


@dataclass
class EventScan:
    """Accumulates the aggregates of every behavioural clause of one query."""

    params: Params
    project: str
    as_of: datetime
    time_zone: str
    select: list[str] = field(default_factory=list)
    #: each event name read, with the earliest time each of its uses needs (None: all history)
    names: dict[str, list[datetime | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._props = PropertyPredicates(self.params, "", self.as_of, self.time_zone)

    # --- helpers ----------------------------------------------------------------------------

    def _matches(self, spec: EventSpec, since: datetime | None) -> str:
        """The condition of one use of an event spec that needs its events from `since` on."""
        self.names.setdefault(spec.event_name, []).append(since)
        name = f"event_name = {self.params.string(spec.event_name)}"
        return and_all([name, *(self._props.filter(f) for f in spec.filters)])

    def _window(self, window: TimeWindow) -> tuple[str, datetime | None]:
        """The window's condition on event_time, and its start (None: unbounded)."""
        bounds: Bounds = resolve(window, self.as_of, self.time_zone)
        parts = []
        if bounds.start is not None:
            parts.append(time_compare("event_time", ">=", bounds.start, self.params))
        if bounds.end is not None:
            parts.append(time_compare("event_time", "<", bounds.end, self.params))
        return and_all(parts), bounds.start

    def _add(self, alias: str, expr: str) -> str:
        self.select.append(f"{expr} AS {alias}")
        return alias

    # --- clauses ----------------------------------------------------------------------------

    def add(self, clause: Behaviour) -> Clause:
        prefix = self.params.alias("c")
        match clause:
            case DidEvent(event=event, window=window, aggregate=aggregate):
                in_window, since = self._window(window)
                condition = and_all([self._matches(event, since), in_window])
                if aggregate is None:
                    count = self._add(f"{prefix}_n", f"countIf({condition})")
                    return Clause(self._add(prefix, f"{count} > 0"), empty_value=False)
                return self._aggregate(prefix, condition, aggregate)
            case DidNotEvent(event=event, window=window):
                in_window, since = self._window(window)
                condition = and_all([self._matches(event, since), in_window])
                return Clause(self._add(prefix, f"countIf({condition}) = 0"), empty_value=True)
            case Inaction():
                return self._inaction(prefix, clause)
            case FirstTime(event=event, window=window):
                matches = self._matches(event, None)  # the first ever: all history
                bounds = resolve(window, self.as_of, self.time_zone)
                first = self._add(f"{prefix}_f", f"minIf(event_time, {matches})")
                count = self._add(f"{prefix}_n", f"countIf({matches})")
                checks = [f"{count} > 0"]
                if bounds.start is not None:
                    checks.append(time_compare(first, ">=", bounds.start, self.params))
                if bounds.end is not None:
                    checks.append(time_compare(first, "<", bounds.end, self.params))
                return Clause(self._add(prefix, and_all(checks)), empty_value=False)
            case Sequence():
                return self._sequence(prefix, clause)
        raise ValueError(f"not a behavioural clause: {clause!r}")

    def _aggregate(self, prefix: str, condition: str, aggregate: Aggregate) -> Clause:
        fn = aggregate.function
        key = self.params.string(aggregate.property)
        value_of = f"num_props[{key}]"
        count = self._add(f"{prefix}_n", f"countIf({condition})")
        if fn in (AggregateFunction.MIN, AggregateFunction.MAX):
            present = and_all([condition, f"mapContains(num_props, {key})"])
            have = self._add(f"{prefix}_h", f"countIf({present})")
            extreme = "minIf" if fn is AggregateFunction.MIN else "maxIf"
            value = self._add(f"{prefix}_v", f"{extreme}({value_of}, {present})")
            guard = f"{have} > 0"
            empty_value = False
        else:
            if fn is AggregateFunction.COUNT:
                value = count
            else:
                total = self._add(f"{prefix}_s", f"sumIf({value_of}, {condition})")
                value = total
                if fn is AggregateFunction.AVG:
                    value = self._add(f"{prefix}_v", f"if({count} = 0, 0, {total} / {count})")
            guard = TRUE if aggregate.include_non_performers else f"{count} > 0"
            empty_value = aggregate.include_non_performers and compare_value(
                0.0, aggregate.operator, aggregate.values
            )
        test = compare_sql(self.params, value, aggregate.operator, aggregate.values)
        return Clause(self._add(prefix, and_all([guard, test])), empty_value=empty_value)

    def _inaction(self, prefix: str, clause: Inaction) -> Clause:
        window, since = self._window(clause.window)
        did = and_all([self._matches(clause.did, since), window])
        if clause.within is None:
            did_not = and_all([self._matches(clause.did_not, since), window])
            test = f"countIf({did}) > 0 AND countIf({did_not}) = 0"
            return Clause(self._add(prefix, test), empty_value=False)
        # An A counts only once its T has elapsed: t_A + T <= as_of. B events need not be in
        # the window, only in (t_A, t_A + T] (and <= as_of, which the scan guarantees).
        within = duration_ms(clause.within)
        latest = self.params.integer(to_ms(self.as_of, "floor") - within)
        starts = self._add(f"{prefix}_a", f"groupArrayIf({_TS}, {did} AND {_TS} <= {latest})")
        # a B only matters after an A, so not before the window's start either
        stopped = self._matches(clause.did_not, since)
        stops = self._add(f"{prefix}_b", f"groupArrayIf({_TS}, {stopped})")
        span = self.params.integer(within)
        test = (
            f"arrayExists(_a -> NOT arrayExists(_b -> _b > _a AND _b <= _a + {span}, {stops}), "
            f"{starts})"
        )
        return Clause(self._add(prefix, test), empty_value=False)

    def _sequence(self, prefix: str, clause: Sequence) -> Clause:
        """Chains t1 < t2 < ... (each within T of the previous when set), all in the window.

        `r_j` holds every time at which some chain of the first j steps can end: step j+1
        at time t extends a chain iff some r in r_j has r < t (and t - r <= T). Without T
        only the earliest end matters, so the test is t > min(r_j).
        """
        if not clause.steps:
            return Clause(FALSE, empty_value=False)
        window, since = self._window(clause.window)
        reach = ""
        for index, step in enumerate(clause.steps):
            times = self._add(
                f"{prefix}_s{index}",
                f"groupArrayIf({_TS}, {and_all([self._matches(step, since), window])})",
            )
            if index == 0:
                reach = times
                continue
            span = None if clause.within is None else duration_ms(clause.within)
            reach = self._add(f"{prefix}_r{index}", chain_step(reach, times, span, self.params))
        return Clause(self._add(prefix, f"notEmpty({reach})"), empty_value=False)

    # --- the query --------------------------------------------------------------------------

    def _earliest_needed(self) -> str:
        """Rows older than every use of their event name needs are skipped: one bound for all
        names when they share it, else a bound per name (names needing all history unbounded)."""
        since = {
            name: None if None in uses else min(u for u in uses if u is not None)
            for name, uses in self.names.items()
        }
        bounds = set(since.values())
        if len(bounds) == 1:
            (only,) = bounds
            return TRUE if only is None else time_compare("event_time", ">=", only, self.params)
        unbounded = [name for name, bound in since.items() if bound is None]
        parts = [f"event_name IN {self.params.strings(unbounded)}"] if unbounded else []
        for name, bound in since.items():
            if bound is not None:
                after = time_compare("event_time", ">=", bound, self.params)
                parts.append(f"(event_name = {self.params.string(name)} AND {after})")
        return or_all(parts)

    def sql(self, user_ids: str | None) -> str:
        """The aggregation subquery (columns `eid`, `erows`, the clause columns)."""
        where = [
            f"project = {self.params.string(self.project)}",
            f"event_name IN {self.params.strings(list(self.names))}",
            time_compare("event_time", "<=", self.as_of, self.params),
        ]
        where.append(self._earliest_needed())
        where = [w for w in where if w != TRUE]
        if user_ids is not None:
            where.append(f"has({user_ids}, user_id)")
        columns = ", ".join(["user_id AS eid", "count() AS erows", *self.select])
        return f"SELECT {columns} FROM events WHERE {' AND '.join(where)} GROUP BY user_id"  # noqa: S608
