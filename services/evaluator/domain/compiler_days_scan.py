"""The events aggregation of a multi-day evaluation (see compiler_days): per user and
clause, the arrays each day's clause value is read from. Pure: values are bound parameters."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from libs.model.definition import (
    Aggregate,
    AggregateFunction,
    AllTimeWindow,
    BeforeWindow,
    Condition,
    DidEvent,
    DidNotEvent,
    EventSpec,
    FirstTime,
    Inaction,
    LastWindow,
    RangeWindow,
    Sequence,
    SinceWindow,
    TimeUnit,
    TimeWindow,
    TodayWindow,
    YesterdayWindow,
)
from services.evaluator.domain.compiler_clauses import chain_step, compare_sql, compare_value
from services.evaluator.domain.compiler_predicates import (
    TRUE,
    Params,
    PropertyPredicates,
    and_all,
    duration_ms,
    time_compare,
    to_ms,
)
from services.evaluator.domain.windows import CEILING, FLOOR, resolve

if TYPE_CHECKING:
    from services.evaluator.domain.compiler_days import DaysContext

FIXED_MS = {
    TimeUnit.MINUTE: 60_000,
    TimeUnit.HOUR: 3_600_000,
    TimeUnit.DAY: 86_400_000,
    TimeUnit.WEEK: 604_800_000,
}
_CEILING_MS = to_ms(CEILING, "floor")
_FLOOR_MS = to_ms(FLOOR, "floor")
_TS = "toUnixTimestamp64Milli(event_time)"


class DayScan:
    """The events aggregation: per user and clause, the arrays the day values are read from."""

    def __init__(self, params: Params, ctx: DaysContext) -> None:
        self.params = params
        self.ctx = ctx
        self.first = ctx.as_of(0)
        self.last = ctx.as_of(ctx.day_count - 1)
        self.select: list[str] = []
        self.names: dict[str, list[datetime | None]] = {}
        self.zone = params.string(ctx.time_zone)
        self.day0 = params.integer((ctx.first_day - date(1970, 1, 1)).days)
        self.days = f"range({params.integer(ctx.day_count)})"
        self._props = PropertyPredicates(params, "", self.last, ctx.time_zone)

    def day_of(self, ms: str) -> str:
        """The 0-based day index of a millisecond timestamp (negative before the first day)."""
        instant = f"fromUnixTimestamp64Milli({ms}, 'UTC')"
        return f"(toInt64(toInt32(toDate32({instant}, {self.zone}))) - {self.day0})"

    def _later(self, amount_ms: int) -> str:
        return (
            f"least({_TS} + {self.params.integer(amount_ms)}, {self.params.integer(_CEILING_MS)})"
        )

    def _add(self, alias: str, expr: str) -> str:
        self.select.append(f"{expr} AS {alias}")
        return alias

    def _matches(self, spec: EventSpec, since: datetime | None) -> str:
        self.names.setdefault(spec.event_name, []).append(since)
        name = f"event_name = {self.params.string(spec.event_name)}"
        return and_all([name, *(self._props.filter(f) for f in spec.filters)])

    def window(self, window: TimeWindow) -> tuple[str, str, str, datetime | None]:
        """(row condition, lo, hi, earliest start needed) of a window over the days."""
        start = resolve(window, self.first, self.ctx.time_zone).start
        lo = f"greatest({self.day_of(_TS)}, 0)"
        last = str(self.ctx.day_count - 1)
        match window:
            case LastWindow(offset=offset) if offset.unit is TimeUnit.MONTH:
                return TRUE, lo, self._calendar_hi(window), start
            case LastWindow(offset=offset):
                span = offset.amount * FIXED_MS[offset.unit]
                if span >= _CEILING_MS - _FLOOR_MS:
                    return TRUE, lo, last, None
                hi = f"least({self.day_of(self._later(span + 1))} - 1, {last})"
                return TRUE, lo, hi, start
            case TodayWindow():
                return TRUE, lo, self.day_of(_TS), start
            case YesterdayWindow():
                after = f"({self.day_of(_TS)} + 1)"
                return TRUE, after, after, start
            case RangeWindow() | SinceWindow() | BeforeWindow() | AllTimeWindow():
                bounds = resolve(window, self.first, self.ctx.time_zone)
                parts = []
                if bounds.start is not None:
                    parts.append(time_compare("event_time", ">=", bounds.start, self.params))
                if bounds.end is not None:
                    parts.append(time_compare("event_time", "<", bounds.end, self.params))
                return and_all(parts), lo, last, bounds.start
        raise ValueError(f"unknown time window {window!r}")

    def _calendar_hi(self, window: TimeWindow) -> str:
        """The last day whose window start (computed here for every day: calendar months
        have no fixed length) is at or before the event.

        The starts rise with the days; every start of one local day is normally the same
        instant (the day's last millisecond less N months, days clamped to the month's end).
        So for an event on local day y: the days whose start lies on an earlier local day
        count, the ones starting on a later day do not, and those starting on day y count
        when the event is at or after that start: three lookups by y. When some local day
        holds two different starts, every event is compared with every start instead."""
        zone = ZoneInfo(self.ctx.time_zone)
        starts = []
        for index in range(self.ctx.day_count):
            start = resolve(window, self.ctx.as_of(index), self.ctx.time_zone).start
            assert start is not None
            starts.append(start)
        ms = [to_ms(s, "ceil") for s in starts]
        days = [(s.astimezone(zone).date() - self.ctx.first_day).days for s in starts]
        first, final = min(days), max(days)
        instants: dict[int, set[int]] = {}
        for day, start_ms in zip(days, ms, strict=True):
            instants.setdefault(day, set()).add(start_ms)
        if final - first > 4 * self.ctx.day_count + 62 or any(
            len(v) > 1 for v in instants.values()
        ):
            bound = self.params.bind(ms, "Array(Int64)")
            return f"(arrayLastIndex(s -> s <= {_TS}, {bound}) - 1)"
        span = range(first, final + 1)
        before = [sum(1 for d in days if d < y) for y in span]
        through = [sum(1 for d in days if d <= y) for y in span]
        at = [min(instants.get(y, {0})) for y in span]
        arrays = [self.params.bind(v, "Array(Int64)") for v in (before, through, at)]
        y = self.day_of(_TS)
        i = f"({y} - {self.params.integer(first)} + 1)"
        last = self.ctx.day_count - 1
        inside = f"if({_TS} >= {arrays[2]}[{i}], {arrays[1]}[{i}], {arrays[0]}[{i}]) - 1"
        low, high = self.params.integer(first), self.params.integer(final)
        return f"if({y} < {low}, -1, if({y} > {high}, {last}, {inside}))"

    def _pairs(self, prefix: str, condition: str, lo: str, hi: str, extra: str = "") -> str:
        """groupArray of (lo, hi[, extra]) of the rows matching `condition` on some day."""
        values = f"{lo}, {hi}" + (f", {extra}" if extra else "")
        return self._add(
            prefix, f"groupArrayIf(({values}), {and_all([condition, f'{lo} <= {hi}'])})"
        )

    def per_day(self, body: str) -> str:
        """An Array(UInt8) of `body` evaluated for each day `d` (0-based)."""
        return f"arrayMap(d -> toUInt8({body}), {self.days})"

    @staticmethod
    def count(pairs: str) -> str:
        """How many of `pairs` cover day `d`."""
        return f"arrayCount(x -> x.1 <= d AND d <= x.2, {pairs})"

    @staticmethod
    def any(pairs: str) -> str:
        """Whether one of `pairs` covers day `d`."""
        return f"arrayExists(x -> x.1 <= d AND d <= x.2, {pairs})"

    @staticmethod
    def fold(function: str, pairs: str, neutral: str) -> str:
        """`function` (arraySum, arrayMin, arrayMax) of the values (x.3) of the pairs covering
        day `d`, the others counting as `neutral`."""
        return f"{function}(x -> if(x.1 <= d AND d <= x.2, x.3, {neutral}), {pairs})"

    def add(self, condition: Condition) -> tuple[str, bool]:
        """(column of the clause's Array(UInt8) of day values, value on an empty history)."""
        prefix = self.params.alias("c")
        match condition:
            case DidEvent(event=event, window=window, aggregate=aggregate):
                rows, lo, hi, since = self.window(window)
                matched = and_all([self._matches(event, since), rows])
                if aggregate is None:
                    pairs = self._pairs(f"{prefix}_p", matched, lo, hi)
                    return self._add(prefix, self.per_day(self.any(pairs))), False
                return self._aggregate(prefix, matched, lo, hi, aggregate)
            case DidNotEvent(event=event, window=window):
                rows, lo, hi, since = self.window(window)
                matched = and_all([self._matches(event, since), rows])
                pairs = self._pairs(f"{prefix}_p", matched, lo, hi)
                return self._add(prefix, self.per_day(f"NOT {self.any(pairs)}")), True
            case Inaction():
                return self._inaction(prefix, condition), False
            case FirstTime(event=event, window=window):
                return self._first_time(prefix, event, window), False
            case Sequence():
                return self._sequence(prefix, condition), False
        raise ValueError(f"not a clause evaluated over days: {condition!r}")

    def _sequence(self, prefix: str, clause: Sequence) -> str:
        """Chains t1 < t2 < ... (each within T of the previous when set) of events all inside
        day `d`'s window: the single-instant rule (compiler_clauses) over each step's events
        covering that day."""
        if not clause.steps:
            return self._add(prefix, self.per_day("0"))
        rows, lo, hi, since = self.window(clause.window)
        reach = ""
        for index, step in enumerate(clause.steps):
            matched = and_all([self._matches(step, since), rows])
            pairs = self._pairs(f"{prefix}_s{index}", matched, lo, hi, _TS)
            times = f"arrayMap(x -> x.3, arrayFilter(x -> x.1 <= d AND d <= x.2, {pairs}))"
            if index == 0:
                reach = times
            else:
                span = None if clause.within is None else duration_ms(clause.within)
                reach = chain_step(reach, times, span, self.params)
        return self._add(prefix, self.per_day(f"notEmpty({reach})"))

    def _aggregate(
        self, prefix: str, matched: str, lo: str, hi: str, aggregate: Aggregate
    ) -> tuple[str, bool]:
        fn = aggregate.function
        key = self.params.string(aggregate.property)
        test_value: str
        if fn is AggregateFunction.COUNT:
            pairs = self._pairs(f"{prefix}_p", matched, lo, hi)
            count = self.count(pairs)
            value, guard = count, f"{count} > 0"
        elif fn in (AggregateFunction.SUM, AggregateFunction.AVG):
            pairs = self._pairs(f"{prefix}_p", matched, lo, hi, f"num_props[{key}]")
            count = self.count(pairs)
            total = self.fold("arraySum", pairs, "0")
            value = (
                total if fn is AggregateFunction.SUM else f"if({count} = 0, 0, {total} / {count})"
            )
            guard = f"{count} > 0"
        else:
            present = and_all([matched, f"mapContains(num_props, {key})"])
            pairs = self._pairs(f"{prefix}_p", present, lo, hi, f"num_props[{key}]")
            extreme = "arrayMin" if fn is AggregateFunction.MIN else "arrayMax"
            neutral = "inf" if fn is AggregateFunction.MIN else "-inf"
            value, guard = self.fold(extreme, pairs, neutral), self.any(pairs)
            test_value = and_all(
                [guard, compare_sql(self.params, value, aggregate.operator, aggregate.values)]
            )
            return self._add(prefix, self.per_day(test_value)), False
        empty_value = False
        if aggregate.include_non_performers:
            guard = TRUE
            empty_value = compare_value(0.0, aggregate.operator, aggregate.values)
        test_value = and_all(
            [guard, compare_sql(self.params, value, aggregate.operator, aggregate.values)]
        )
        return self._add(prefix, self.per_day(test_value)), empty_value

    def _inaction(self, prefix: str, clause: Inaction) -> str:
        rows, lo, hi, since = self.window(clause.window)
        did = and_all([self._matches(clause.did, since), rows])
        if clause.within is None:
            did_not = and_all([self._matches(clause.did_not, since), rows])
            a = self._pairs(f"{prefix}_a", did, lo, hi)
            b = self._pairs(f"{prefix}_b", did_not, lo, hi)
            body = f"{self.any(a)} AND NOT {self.any(b)}"
            return self._add(prefix, self.per_day(body))
        # An A counts from the day its T elapses (t_A + T <= the day's end), as long as no B
        # follows it within T (a B after t_A + T is later than that day's end too).
        within = duration_ms(clause.within)
        elapsed = f"greatest({self.day_of(self._later(within))}, {lo})"
        starts = self._pairs(f"{prefix}_a", did, elapsed, hi, _TS)
        stopped = self._matches(clause.did_not, since)
        stops = self._add(f"{prefix}_b", f"groupArrayIf({_TS}, {stopped})")
        span = self.params.integer(within)
        kept = self._add(
            f"{prefix}_k",
            f"arrayFilter(x -> NOT arrayExists(b -> b > x.3 AND b <= x.3 + {span}, {stops}), "
            f"{starts})",
        )
        return self._add(prefix, self.per_day(self.any(kept)))

    def _first_time(self, prefix: str, event: EventSpec, window: TimeWindow) -> str:
        matches = self._matches(event, None)  # the first ever: all history
        first = self._add(f"{prefix}_f", f"minIf({_TS}, {matches})")
        count = self._add(f"{prefix}_n", f"countIf({matches})")
        ends, starts, stops = [], [], []
        for index in range(self.ctx.day_count):
            as_of = self.ctx.as_of(index)
            bounds = resolve(window, as_of, self.ctx.time_zone)
            ends.append(to_ms(as_of, "floor"))
            starts.append(_FLOOR_MS if bounds.start is None else to_ms(bounds.start, "ceil"))
            stops.append(_CEILING_MS + 1 if bounds.end is None else to_ms(bounds.end, "ceil"))
        arrays = [self.params.bind(v, "Array(Int64)") for v in (ends, starts, stops)]
        body = f"{count} > 0 AND {first} <= a AND {first} >= s AND {first} < e"
        return self._add(prefix, f"arrayMap((a, s, e) -> toUInt8({body}), {', '.join(arrays)})")

    def sql(self) -> str:
        """The aggregation (columns `eid`, `erows`, the clause columns)."""
        where = [
            f"project = {self.params.string(self.ctx.project)}",
            f"event_name IN {self.params.strings(list(self.names))}",
            time_compare("event_time", "<=", self.last, self.params),
        ]
        since = {n: None if None in uses else min(u for u in uses if u is not None)
                 for n, uses in self.names.items()}  # fmt: skip
        if None not in since.values():
            earliest = min(s for s in since.values() if s is not None)
            where.append(time_compare("event_time", ">=", earliest, self.params))
        columns = ", ".join(["user_id AS eid", "count() AS erows", *self.select])
        return f"SELECT {columns} FROM events WHERE {' AND '.join(where)} GROUP BY user_id"  # noqa: S608
