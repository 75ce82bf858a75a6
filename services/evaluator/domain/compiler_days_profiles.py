"""Profiles in a multi-day evaluation (see compiler_days): each user's profile as of each
day's end, as the values of the predicates a query needs and reachability per channel.
Pure: every value is a bound parameter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.model.definition import NEGATIVE_OPERATORS, Condition, Node, UserProperty
from services.evaluator.domain.compiler_days_scan import DayScan
from services.evaluator.domain.compiler_plan import expression
from services.evaluator.domain.compiler_predicates import (
    Params,
    PropertyPredicates,
    and_all,
    time_compare,
)
from services.evaluator.domain.figures import CHANNELS, reachable_condition

if TYPE_CHECKING:
    from services.evaluator.domain.compiler_days import DaysContext


class DayProfiles:
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
