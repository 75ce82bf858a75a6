"""Many segments' members in one query that reads the events once (the daily job's figures).

Shape (every segment of one project, as of one instant):

    SELECT u.uid AS user_id, <membership of segment 0> AS m0, ..., <of segment n-1> AS m<n-1>
    FROM (<the universe: every user seen by as_of>) AS u
    LEFT JOIN (<one aggregation over events with the clauses of every segment>) AS e
        ON e.eid = u.uid
    LEFT JOIN (<every profile predicate of every segment, as of as_of>) AS pr
        ON pr.pid = u.uid

Each past-behaviour segment's membership is its condition tree over the shared aggregation's
columns (a user without relevant events takes each clause's empty-history value) and the
profile values (a user without a profile takes each predicate's value on an empty profile),
exactly as the single-segment compiler evaluates a query that the universe drives
(`compiler._Compiler._past_behavior`); references to other segments are `uid IN (<their
members>)`. Only past-behaviour and system segments are shared (`shareable`): the members of
a list may lie outside the universe, and live segments are not evaluated by query. Pure:
every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.model.definition import (
    NEGATIVE_OPERATORS,
    Condition,
    Definition,
    InSegment,
    PastBehaviorQuery,
    SystemDefinition,
    SystemSegmentKind,
    UserProperty,
)
from services.evaluator.domain.compiler import CompiledQuery, EvaluationContext, _Compiler
from services.evaluator.domain.compiler_clauses import Behaviour, Clause, EventScan
from services.evaluator.domain.compiler_plan import expression
from services.evaluator.domain.compiler_predicates import (
    FALSE,
    TRUE,
    Params,
    PropertyPredicates,
    and_all,
    negate,
)


def shareable(definition: Definition) -> bool:
    """Whether `compile_shared` evaluates this kind of segment."""
    return isinstance(definition, PastBehaviorQuery | SystemDefinition)


def compile_shared(
    segments: Sequence[tuple[str, Definition]], ctx: EvaluationContext
) -> CompiledQuery:
    """SQL with columns `user_id` (every user of the universe) and `m0`, `m1`, ... (UInt8:
    whether the user is a member of each segment, in order). `segments` holds each segment's
    resource name and definition, each `shareable`; `ctx.segments` must hold every segment
    they reference."""
    compiler = _SharedCompiler(ctx, Params())
    sql = compiler.shared(segments) + " SETTINGS join_use_nulls = 0"
    used = {k: v for k, v in compiler.params.values.items() if "{" + k + ":" in sql}
    return CompiledQuery(sql=sql, params=used)


@dataclass
class _Shared:
    """What the segments of one shared query accumulate."""

    uid: str
    events: str
    profiles: str
    scan: EventScan
    joined: list[str] = field(default_factory=list)  # profile predicates, read as pr.v<i>


class _SharedCompiler(_Compiler):
    def shared(self, segments: Sequence[tuple[str, Definition]]) -> str:
        universe = self.params.alias("u")
        acc = _Shared(
            uid=f"{universe}.uid",
            events=self.params.alias("e"),
            profiles=self.params.alias("pr"),
            scan=EventScan(self.params, self.ctx.project, self.ctx.as_of, self.ctx.time_zone),
        )
        columns = [f"{acc.uid} AS user_id"]
        for i, (name, definition) in enumerate(segments):
            columns.append(f"toUInt8({self._membership(acc, name, definition)}) AS m{i}")
        sql = f"SELECT {', '.join(columns)} FROM ({self._universe(None)}) AS {universe}"  # noqa: S608
        if acc.scan.select:
            scan = acc.scan.sql(None)
            sql += f" LEFT JOIN ({scan}) AS {acc.events} ON {acc.events}.eid = {acc.uid}"
        if acc.joined:
            values = self._profiles.values("pid", "pe", acc.joined, None)
            sql += f" LEFT JOIN ({values}) AS {acc.profiles} ON {acc.profiles}.pid = {acc.uid}"
        return sql

    def _membership(self, acc: _Shared, name: str, definition: Definition) -> str:
        if isinstance(definition, SystemDefinition) and (
            definition.kind is SystemSegmentKind.ALL_USERS
        ):
            return TRUE
        if not shareable(definition):
            raise ValueError(f"{name} is not a past-behaviour or system segment")
        if not isinstance(definition, PastBehaviorQuery):
            return f"{acc.uid} IN ({self.members(definition, name, None, ())})"
        bare = PropertyPredicates(self.params, "", self.ctx.as_of, self.ctx.time_zone)
        clauses: dict[int, Clause] = {}

        def leaf(condition: Condition) -> str:
            match condition:
                case UserProperty(filter=prop):
                    acc.joined.append(bare.filter(prop))
                    without = "1" if prop.comparison.operator in NEGATIVE_OPERATORS else "0"
                    index = len(acc.joined) - 1
                    return f"if({acc.profiles}.pe = 1, {acc.profiles}.v{index}, {without})"
                case InSegment(segment=ref, negate=negated):
                    inside = f"{acc.uid} IN ({self._segment(ref, None, ())})"
                    return negate(inside) if negated else inside
            assert isinstance(condition, Behaviour)
            if id(condition) not in clauses:
                clauses[id(condition)] = acc.scan.add(condition)
            found = clauses[id(condition)]
            if found.column in (TRUE, FALSE):
                return found.column
            fallback = "1" if found.empty_value else "0"
            return f"if({acc.events}.erows > 0, {acc.events}.{found.column}, {fallback})"

        parts = [] if definition.root is None else [expression(definition.root, leaf)]
        parts += [
            f"{acc.uid} IN ({self._segment(s, None, ())})" for s in definition.included_segments
        ]
        parts += [
            f"{acc.uid} NOT IN ({self._segment(s, None, ())})" for s in definition.excluded_segments
        ]
        return and_all(parts)
