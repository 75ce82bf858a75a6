"""One segment as of the end of each of several consecutive days, in one query (back-fill).

Evaluating a segment as of the end of each of N days one by one scans the events N times.
Here every relevant event is read once and mapped to the range of days `[lo, hi]` (0-based,
within the N days) for which it lies inside its clause's window:

* `lo`: the first day whose end it precedes, its local day (`toDate32(event_time, zone)`)
  minus the first day; for "yesterday" the day after; for an inaction's A the day
  `t_A + T` falls in (an A counts once its T elapsed);
* `hi`: the last day whose window still starts at or before it: the local day of
  `t + N + 1 ms`, minus one, for "last N minutes/hours/days/weeks" (a day's end `A_d`
  satisfies `A_d - N <= t` exactly when the day ends at or before `t + N`), the event's own
  day for "today" and the day after for "yesterday", the last day for a window with fixed
  bounds (range, since, before, all time: those bounds filter the rows instead).

Each user's clause then holds its events' `(lo, hi)` pairs (plus the value or time a clause
needs), and each day's clause value is computed from the pairs covering that day: a count,
a sum, a minimum, or for a first-time clause the user's first time against that day's
bounds. Profiles are read as of each day's end (the latest version on or before that day,
or the current state when no profile of the project changed after the first day), the
universe from each user's first `seen_at`. A member array of N flags per user gives each
day's size, reachability per channel and sample in one grouping (`-ForEach` aggregates).

Definitions this shape covers (`unsupported` says why another one is not): past-behaviour
trees of did, did not (windows other than "last N months"), inaction, first time and user
property leaves, with no "in segment" leaf and no included or excluded segment, and no
comparison relative to the evaluation instant. The result for every day equals the
evaluation as of that day's end (tests/evaluator/compiler/test_days.py).

The module is pure: every identifier and value is a bound parameter, never SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from libs.model.definition import (
    NEGATIVE_OPERATORS,
    ComparisonOperator,
    Condition,
    Definition,
    DidEvent,
    DidNotEvent,
    EventSpec,
    FirstTime,
    Inaction,
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
    PropertyPredicates,
    and_all,
    time_compare,
)
from services.evaluator.domain.figures import CHANNELS, Figures, reachable_condition

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


def unsupported(definition: Definition) -> str | None:
    """Why `definition` cannot be evaluated over many days in one query (None: it can)."""
    if isinstance(definition, SystemDefinition):
        return None  # all users, test users
    if not isinstance(definition, PastBehaviorQuery):
        return "not a past-behaviour or system segment"
    if definition.included_segments or definition.excluded_segments:
        return "includes or excludes segments"

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


class _Profiles:
    """Each user's profile as of each day's end: predicate values and reachability.

    From the current state (`profiles FINAL`, one row per user, the same every day) when no
    profile changed after the first day; else from the versions up to the last day, sorted,
    each day reading the latest version of a day on or before it (`pvi`: its 1-based index,
    0 when the user had no profile yet)."""

    def __init__(self, params: Params, ctx: DaysContext, scan: DayScan) -> None:
        self.params = params
        self.ctx = ctx
        self.scan = scan
        self.predicates: list[str] = []
        self.from_versions = ctx.profiles_as_of
        self._bare = PropertyPredicates(params, "", scan.last, ctx.time_zone)

        #: conditions every member's profile meets (current state only): the profiles are
        #: then joined INNER, restricted to those meeting them
        self.required: list[str] = []

    def leaf(self, condition: UserProperty) -> str:
        """A user property's value on day `d`."""
        without = "1" if condition.filter.comparison.operator in NEGATIVE_OPERATORS else "0"
        return self.predicate(self._bare.filter(condition.filter), without)

    def predicate(self, sql: str, without: str) -> str:
        """A predicate over a profile's columns, its value on day `d` (`without` when the
        user has no profile yet)."""
        self.predicates.append(sql)
        return self.field(len(CHANNELS) + len(self.predicates) - 1, without, "pr.")

    def require(self, node: Node) -> None:
        """Members need a profile meeting `node` (a profile-only conjunct false without one)."""
        if not self.from_versions:
            self.required.append(expression(node, self._bare_leaf))

    def _bare_leaf(self, condition: Condition) -> str:
        assert isinstance(condition, UserProperty)
        return self._bare.filter(condition.filter)

    def carried(self) -> list[str]:
        """The columns reachability reads, carried past the member filter."""
        if self.from_versions:
            return ["pvi", "pr.vs AS vs"]
        return ["pr.pe AS pe", *(f"pr.f{i} AS f{i}" for i in range(len(CHANNELS)))]

    def reachable(self, channel: int) -> str:
        """Reachable on CHANNELS[channel] on day `d` (never without a profile), over the
        carried columns."""
        return self.field(channel, "0", "")

    def field(self, index: int, without: str, prefix: str) -> str:
        if not self.from_versions:
            return f"if({prefix}pe = 1, {prefix}f{index}, {without})"
        vs = f"{prefix}vs"
        return f"if(pvi[d + 1] = 0, {without}, tupleElement({vs}[pvi[d + 1]], {index + 3}))"

    def join(self) -> str:
        kind = "INNER" if self.required else "LEFT"
        return f" {kind} JOIN ({self.sql()}) AS pr ON pr.pid = u.uid"

    def sql(self) -> str:
        fields = [
            reachable_condition("", c, self.params.string(c)) for c in CHANNELS
        ] + self.predicates
        flags = [f"toUInt8({f})" for f in fields]
        project = f"project = {self.params.string(self.ctx.project)}"
        if not self.from_versions:
            columns = ", ".join(["user_id AS pid", "1 AS pe"] + [
                f"{f} AS f{i}" for i, f in enumerate(flags)
            ])  # fmt: skip
            where = and_all([project, *self.required])
            return f"SELECT {columns} FROM profiles FINAL WHERE {where}"  # noqa: S608
        ms = "toUnixTimestamp64Milli(update_time)"
        version = ", ".join([self.scan.day_of(ms), ms, *flags])
        upto = time_compare("update_time", "<=", self.scan.last, self.params)
        return (
            f"SELECT user_id AS pid, arraySort(groupArray(({version}))) AS vs "  # noqa: S608
            f"FROM profile_versions WHERE {project} AND {upto} GROUP BY user_id"
        )


def compile_daily_figures(
    definition: Definition, ctx: DaysContext, sample_size: int
) -> CompiledQuery:
    """One row: per day (arrays of `ctx.day_count`, in day order) the member count, the
    reachable count on each channel of CHANNELS, and the first `sample_size` members in
    sample order as (hex md5, user id) tuples (see domain.figures for the rules)."""
    reason = unsupported(definition)
    if reason is not None:
        raise ValueError(f"not evaluated over days in one query: {reason}")
    if not 1 <= ctx.day_count <= MAX_DAYS:
        raise ValueError(f"1 to {MAX_DAYS} days")
    params = Params()
    scan = DayScan(params, ctx)
    profiles = _Profiles(params, ctx, scan)
    clauses: dict[int, tuple[str, bool]] = {}

    def leaf(condition: Condition) -> str:
        if isinstance(condition, UserProperty):
            return profiles.leaf(condition)
        if id(condition) not in clauses:
            clauses[id(condition)] = scan.add(condition)
        column, empty = clauses[id(condition)]
        return f"if(e.erows > 0, e.{column}[d + 1], {int(empty)})"

    root: Node | None = None
    if isinstance(definition, PastBehaviorQuery):
        root = definition.root
        tree = TRUE if root is None else expression(root, leaf)
    elif isinstance(definition, SystemDefinition):
        test_users = definition.kind is SystemSegmentKind.TEST_USERS
        tree = profiles.predicate("test_user = 1", "0") if test_users else TRUE
    else:
        raise ValueError(f"not evaluated over days in one query: {definition!r}")
    member = and_all(["d >= u.ulo", tree])
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
    rows += profiles.join()
    reach = [f"{scan.per_day(profiles.reachable(i))}" for i in range(len(CHANNELS))]
    figures = ["sumForEach(m)"]
    figures += [f"sumForEach(arrayMap((x, y) -> x * y, m, {r}))" for r in reach]
    if sample_size > 0:
        figures.append(
            f"groupArraySortedIfForEach({int(sample_size)})("
            f"arrayWithConstant({ctx.day_count}, (hex(MD5(uid)), uid)), m)"
        )
    sql = (
        f"SELECT {', '.join(figures)} FROM ({rows}) WHERE has(m, 1) "  # noqa: S608
        "SETTINGS join_use_nulls = 0"
    )
    used = {k: v for k, v in params.values.items() if "{" + k + ":" in sql}
    return CompiledQuery(sql, used)


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
