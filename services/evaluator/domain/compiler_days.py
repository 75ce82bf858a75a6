"""One segment as of the end of each of several consecutive days, in one query (back-fill).

Evaluating a segment as of the end of each of N days one by one scans the events N times.
Here every relevant event is read once and mapped to the range of days `[lo, hi]` (0-based,
within the N days) for which it lies inside its clause's window:

* `lo`: the first day whose end it precedes, its local day (`toDate32(event_time, zone)`)
  minus the first day; for "yesterday" the day after; for an inaction's A the day
  `t_A + T` falls in (an A counts once its T elapsed);
* `hi`: the last day whose window still starts at or before it: the local day of
  `t + N + 1 ms`, minus one, for "last N minutes/hours/days/weeks" (a day's end `A_d`
  satisfies `A_d - N <= t` exactly when the day ends at or before `t + N`); for "last N
  months" a lookup by the event's local day among the days' computed starts; the event's own
  day for "today" and the day after for "yesterday"; the last day for a window with fixed
  bounds (range, since, before, all time: those bounds filter the rows instead).

Each user's clause then holds its events' `(lo, hi)` pairs (plus the value or time a clause
needs), and each day's clause value is computed from the pairs covering that day: a count,
a sum, a minimum, or for a first-time clause the user's first time against that day's
bounds. Profiles are read as of each day's end (the latest version on or before that day,
or the current state when no profile of the project changed after the first day), the
universe from each user's first `seen_at`. A member array of N flags per user gives each
day's size, reachability per channel and sample in one grouping (`-ForEach` aggregates).

Definitions this shape covers (`unsupported` says why another one is not): system segments,
and past-behaviour trees of did, did not, inaction, first time, sequence, user property and
"in segment" leaves, with included and excluded segments, whose referenced segments are
covered too (each one more per-user membership array, joined), and no comparison relative to
the evaluation instant. The result for every day equals the evaluation as of that day's end
(tests/evaluator/compiler/test_days.py).

The module is pure: every identifier and value is a bound parameter, never SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from libs.model.definition import (
    ComparisonOperator,
    Condition,
    Definition,
    DidEvent,
    DidNotEvent,
    EventSpec,
    FirstTime,
    Inaction,
    InSegment,
    Node,
    PastBehaviorQuery,
    SystemDefinition,
    SystemSegmentKind,
    UserProperty,
)
from libs.model.definition import (
    Sequence as SequenceCondition,
)
from services.evaluator.domain.compiler import CompiledQuery
from services.evaluator.domain.compiler_days_profiles import DayProfiles
from services.evaluator.domain.compiler_days_scan import DayScan
from services.evaluator.domain.compiler_plan import (
    classify,
    expression,
    holds_without_profile,
    value,
)
from services.evaluator.domain.compiler_predicates import (
    TRUE,
    Params,
    and_all,
    negate,
    time_compare,
)
from services.evaluator.domain.figures import CHANNELS, Figures

#: Days one query covers at most (a user's member array holds one flag per day).
MAX_DAYS = 100

_RELATIVE = {
    ComparisonOperator.DATE_WITHIN_LAST,
    ComparisonOperator.DATE_WITHIN_NEXT,
    ComparisonOperator.DATE_MORE_THAN_AGO,
    ComparisonOperator.DATE_MORE_THAN_AHEAD,
}


@dataclass(frozen=True)
class DaysContext:
    """The days evaluated: `day_count` consecutive local days from `first_day`."""

    project: str
    time_zone: str
    first_day: date
    day_count: int
    #: true when some profile of the project changed after the first day's end: profiles
    #: are then read from their versions as of each day
    profiles_as_of: bool = False

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)

    def as_of(self, index: int) -> datetime:
        """The end of day `index`: the last millisecond before the next local midnight."""
        following = datetime.combine(self.day(index + 1), time(), tzinfo=ZoneInfo(self.time_zone))
        return following.astimezone(UTC) - timedelta(milliseconds=1)


def unsupported(
    definition: Definition,
    segments: Mapping[str, Definition] | None = None,
    stack: tuple[str, ...] = (),
) -> str | None:
    """Why `definition` cannot be evaluated over many days in one query (None: it can).
    `segments` holds the definitions of the segments it references, by name."""
    if isinstance(definition, SystemDefinition):
        return None  # all users, test users
    if not isinstance(definition, PastBehaviorQuery):
        return "not a past-behaviour or system segment"
    known = segments or {}

    def referenced(name: str) -> str | None:
        if name in stack:
            return "references itself"
        if name not in known:
            return f"referenced segment {name} is not available"
        return unsupported(known[name], known, (*stack, name))

    for name in (*definition.included_segments, *definition.excluded_segments):
        found = referenced(name)
        if found is not None:
            return found

    def filters_relative(spec: EventSpec) -> bool:
        return any(f.comparison.operator in _RELATIVE for f in spec.filters)

    def leaf(condition: Condition) -> str | None:
        match condition:
            case UserProperty(filter=prop):
                return (
                    "compares with the evaluation instant"
                    if (prop.comparison.operator in _RELATIVE)
                    else None
                )
            case DidEvent(event=spec) | DidNotEvent(event=spec) | FirstTime(event=spec):
                specs = [spec]
            case SequenceCondition(steps=steps):
                specs = list(steps)
            case Inaction(did=did, did_not=did_not):
                specs = [did, did_not]
            case InSegment(segment=name):
                return referenced(name)
            case _:
                return f"{type(condition).__name__} is evaluated day by day"
        if any(filters_relative(s) for s in specs):
            return "compares with the evaluation instant"
        return None

    def walk(node: Node) -> str | None:
        if node.condition is not None:
            return leaf(node.condition)
        for child in node.children:
            found = walk(child)
            if found is not None:
                return found
        return None

    return None if definition.root is None else walk(definition.root)


def compile_daily_figures(
    definition: Definition,
    ctx: DaysContext,
    sample_size: int,
    segments: Mapping[str, Definition] | None = None,
) -> CompiledQuery:
    """One row: per day (arrays of `ctx.day_count`, in day order) the member count, the
    reachable count on each channel of CHANNELS, and the first `sample_size` members in
    sample order as (hex md5, user id) tuples (see domain.figures for the rules).
    `segments` holds the definitions of the segments it references, by name."""
    references = segments or {}
    reason = unsupported(definition, references)
    if reason is not None:
        raise ValueError(f"not evaluated over days in one query: {reason}")
    if not 1 <= ctx.day_count <= MAX_DAYS:
        raise ValueError(f"1 to {MAX_DAYS} days")
    params = Params()
    rows, profiles = _members(definition, _Level(params, ctx, references), ())
    reach = [profiles.scan.per_day(profiles.reachable(i)) for i in range(len(CHANNELS))]
    figures = ["sumForEach(m)"]
    figures += [f"sumForEach(arrayMap((x, y) -> x * y, m, {r}))" for r in reach]
    if sample_size > 0:
        figures.append(
            f"groupArraySortedIfForEach({int(sample_size)})("
            f"arrayWithConstant({ctx.day_count}, (hex(MD5(uid)), uid)), m)"
        )
    sql = f"SELECT {', '.join(figures)} FROM ({rows}) SETTINGS join_use_nulls = 0"  # noqa: S608
    used = {k: v for k, v in params.values.items() if "{" + k + ":" in sql}
    return CompiledQuery(sql, used)


@dataclass(frozen=True)
class _Level:
    params: Params
    ctx: DaysContext
    segments: Mapping[str, Definition]


def _members(
    definition: Definition, level: _Level, stack: tuple[str, ...]
) -> tuple[str, DayProfiles]:
    """SELECT uid, m (each user's Array(UInt8) of membership per day) and the columns
    reachability reads (DayProfiles.carried), of the users who are members on some day."""
    params, ctx = level.params, level.ctx
    scan = DayScan(params, ctx)
    profiles = DayProfiles(params, ctx, scan)
    clauses: dict[int, tuple[str, bool]] = {}
    joins: list[str] = []
    joined: dict[str, str] = {}  # referenced segment -> its membership on day `d`

    def member_of(name: str) -> str:
        """Membership of the referenced segment `name` on day `d` (joined once however often
        this definition references it)."""
        if name not in joined:
            referenced, _ = _members(level.segments[name], level, (*stack, name))
            alias = params.alias("r")
            joins.append(
                f" LEFT JOIN (SELECT uid AS {alias}_id, m AS {alias}_m "  # noqa: S608
                f"FROM ({referenced})) AS {alias} ON {alias}.{alias}_id = u.uid"
            )
            joined[name] = f"if(notEmpty({alias}.{alias}_m), {alias}.{alias}_m[d + 1], 0)"
        return joined[name]

    def leaf(condition: Condition) -> str:
        if isinstance(condition, UserProperty):
            return profiles.leaf(condition)
        if isinstance(condition, InSegment):
            inside = member_of(condition.segment)
            return negate(inside) if condition.negate else inside
        if id(condition) not in clauses:
            clauses[id(condition)] = scan.add(condition)
        column, empty = clauses[id(condition)]
        return f"if(e.erows > 0, e.{column}[d + 1], {int(empty)})"

    root: Node | None = None
    parts = ["d >= u.ulo"]
    if isinstance(definition, PastBehaviorQuery):
        root = definition.root
        parts.append(TRUE if root is None else expression(root, leaf))
        parts += [member_of(name) for name in definition.included_segments]
        parts += [negate(member_of(name)) for name in definition.excluded_segments]
    elif isinstance(definition, SystemDefinition):
        test_users = definition.kind is SystemSegmentKind.TEST_USERS
        parts.append(profiles.predicate("test_user = 1", "0") if test_users else TRUE)
    else:
        raise ValueError(f"not evaluated over days in one query: {definition!r}")
    member = and_all(parts)
    # Users who can be members on some day only: a behavioural conjunct false without events
    # limits them to the events aggregation's users, on some day true (its HAVING); a
    # profile conjunct false without a profile to the profiles meeting it.
    plan = classify(root)
    needed = [n for n in plan.behavioural if not value(n, lambda c: clauses[id(c)][1])]
    having = and_all([expression(n, lambda c: f"{clauses[id(c)][0]}[d + 1]") for n in needed])
    for node in plan.profile:
        if not holds_without_profile(node):
            profiles.require(node)
    first_seen = scan.day_of("toUnixTimestamp64Milli(min(seen_at))")
    seen = time_compare("seen_at", "<=", scan.last, params)
    universe = (
        f"SELECT user_id AS uid, greatest({first_seen}, 0) AS ulo FROM users "  # noqa: S608
        f"WHERE project = {params.string(ctx.project)} AND {seen} GROUP BY user_id"
    )
    columns = ["u.uid AS uid"]
    if profiles.from_versions:
        columns.append(f"arrayMap(d -> arrayLastIndex(x -> x.1 <= d, pr.vs), {scan.days}) AS pvi")
    columns += [f"{scan.per_day(member)} AS m", *profiles.carried()]
    if not scan.select:
        rows = f"SELECT {', '.join(columns)} FROM ({universe}) AS u"  # noqa: S608
    elif having != TRUE:
        events = f"{scan.sql()} HAVING has({scan.per_day(having)}, 1)"
        rows = (
            f"SELECT {', '.join(columns)} FROM ({events}) AS e "  # noqa: S608
            f"INNER JOIN ({universe}) AS u ON u.uid = e.eid"
        )
    else:
        rows = (
            f"SELECT {', '.join(columns)} FROM ({universe}) AS u "  # noqa: S608
            f"LEFT JOIN ({scan.sql()}) AS e ON e.eid = u.uid"
        )
    rows += profiles.join() + "".join(joins)
    return f"SELECT * FROM ({rows}) WHERE has(m, 1)", profiles  # noqa: S608


def daily_figures_from_row(row: Sequence[Any] | None, ctx: DaysContext) -> list[Figures]:
    """The figures of each day, in order, from `compile_daily_figures`'s row."""
    days = ctx.day_count
    if row is None or not row[0]:  # no member on any day
        return [Figures(0, dict.fromkeys(CHANNELS, 0), []) for _ in range(days)]
    samples = row[1 + len(CHANNELS)] if len(row) > 1 + len(CHANNELS) else [[]] * days
    return [
        Figures(
            int(row[0][d]),
            {c: int(row[1 + i][d]) for i, c in enumerate(CHANNELS)},
            [str(pair[1]) for pair in samples[d]],
        )
        for d in range(days)
    ]
