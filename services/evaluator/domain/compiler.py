"""Compiles a segment definition into one ClickHouse query listing its members.

Shape of a past-behaviour query (one scan of `events` whatever the number of clauses):

    SELECT u.uid AS user_id
    FROM (SELECT DISTINCT user_id AS uid FROM users WHERE project = ? AND seen_at <= as_of) AS u
    LEFT JOIN (<one aggregation over events, see compiler_clauses>) AS e ON e.eid = u.uid
    LEFT JOIN (SELECT user_id AS pid, 1 AS pe, <profile predicates> FROM profiles ...) AS pr
        ON pr.pid = u.uid
    LEFT JOIN (SELECT user_id AS r_id, 1 AS r_in FROM (<in segment>)) AS r ON r.r_id = u.uid
    LEFT SEMI JOIN (<included>) AS i ON i.user_id = u.uid
    LEFT ANTI JOIN (<excluded>) AS x ON x.user_id = u.uid
    WHERE <boolean tree>
    SETTINGS join_use_nulls = 0

The universe is every user with a profile or an event at or before `as_of`, so NOT and
"did not" include users with no events at all. Segments referenced by "in segment" leaves or
included/excluded lists are compiled recursively and joined as above, as long as no segment
is reached by two paths; otherwise (a diamond: A includes B and C, each including D) every
referenced segment is one membership column of one joined subquery (compiler_references),
so that each distinct segment is evaluated once. Profiles are read as
they were at `as_of`: from the current state (`profiles FINAL`) when no profile of the project
changed after `as_of` (`EvaluationContext.profiles_as_of` false), else each user's latest
version at or before `as_of` from `profile_versions`.

The module is pure: every identifier and value is a bound parameter (see
`compiler_predicates.Params`), never SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from libs.common.errors import FailedPrecondition
from libs.model.definition import (
    NEGATIVE_OPERATORS,
    Condition,
    CustomListDefinition,
    Definition,
    InSegment,
    LiveDefinition,
    Node,
    PartnerDefinition,
    PastBehaviorQuery,
    SystemDefinition,
    SystemSegmentKind,
    UserProperty,
)
from services.evaluator.domain.compiler_clauses import Behaviour, Clause, EventScan
from services.evaluator.domain.compiler_plan import (
    classify,
    expression,
    holds_without_profile,
    value,
)
from services.evaluator.domain.compiler_predicates import (
    FALSE,
    TRUE,
    Params,
    PropertyPredicates,
    and_all,
    negate,
    or_all,
    time_compare,
)
from services.evaluator.domain.compiler_profiles import ProfileReader
from services.evaluator.domain.compiler_references import References


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: dict[str, Any]  # values for the {name:Type} placeholders


@dataclass(frozen=True)
class EvaluationContext:
    project: str
    as_of: datetime  # aware, UTC
    time_zone: str  # IANA name, for day and month boundaries
    segments: Mapping[str, Definition] = field(default_factory=dict)  # by resource name
    #: true when some profile of the project changed after `as_of`: profiles are then read
    #: from their versions as of `as_of` instead of their current state
    profiles_as_of: bool = False


def compile_members(
    definition: Definition,
    ctx: EvaluationContext,
    *,
    user_ids: Seq[str] | None = None,
    segment_name: str | None = None,
) -> CompiledQuery:
    """SQL returning one column `user_id`, each member once (only `user_ids` when given).

    `segment_name` is the segment's resource name; list segments (custom list, partner) need
    it, since their members are stored under it.
    """
    compiler = _Compiler(ctx, Params())
    compiler.merge_references = compiler.reached_twice(definition)
    ids = None if user_ids is None else compiler.params.strings(list(user_ids))
    sql = compiler.members(definition, segment_name, ids, ()) + " SETTINGS join_use_nulls = 0"
    # drop parameters of parts that simplified away (a constant-false predicate, ...)
    used = {k: v for k, v in compiler.params.values.items() if "{" + k + ":" in sql}
    return CompiledQuery(sql=sql, params=used)


class _Compiler:
    def __init__(self, ctx: EvaluationContext, params: Params) -> None:
        self.ctx = ctx
        self.params = params
        self.profiles = ProfileReader(params, ctx.project, ctx.as_of, ctx.profiles_as_of)
        #: every referenced segment as one column of one subquery (compiler_references)
        #: rather than each reference joined on its own
        self.merge_references = False

    def members(
        self, definition: Definition, name: str | None, ids: str | None, stack: tuple[str, ...]
    ) -> str:
        project = self.params.string(self.ctx.project)
        only = "" if ids is None else f" AND has({ids}, user_id)"
        match definition:
            case PastBehaviorQuery():
                return self._past_behavior(definition, ids, stack)
            case LiveDefinition(past_behavior=past):
                if past is None:
                    raise FailedPrecondition(
                        "live membership is not evaluated by query: the live segment has no "
                        "past-behaviour part",
                        reason="LIVE_NOT_QUERYABLE",
                    )
                return self._past_behavior(past, ids, stack)
            case CustomListDefinition():
                # the members of the list's latest finished upload
                segment = self._list_name(name)
                return (
                    "SELECT DISTINCT user_id FROM list_upload_members "  # noqa: S608
                    f"WHERE project = {project} AND segment = {segment} AND version = "
                    f"(SELECT max(version) FROM list_uploads WHERE project = {project} "
                    f"AND segment = {segment}){only}"
                )
            case PartnerDefinition():
                segment = self._list_name(name)
                return (
                    "SELECT DISTINCT user_id FROM list_members FINAL "  # noqa: S608
                    f"WHERE project = {project} AND segment = {segment} AND is_member = 1{only}"
                )
            case SystemDefinition(kind=SystemSegmentKind.ALL_USERS):
                return f"SELECT uid AS user_id FROM ({self.universe(ids)})"  # noqa: S608
            case SystemDefinition(kind=SystemSegmentKind.TEST_USERS):
                return self.profiles.matching("test_user = 1", ids)
        raise ValueError(f"unknown definition {definition!r}")

    def _list_name(self, name: str | None) -> str:
        if name is None:
            raise FailedPrecondition(
                "a list segment has members only once saved: evaluate it by name",
                reason="LIST_SEGMENT_NOT_SAVED",
            )
        return self.params.string(name)

    def universe(self, ids: str | None) -> str:
        where = [
            f"project = {self.params.string(self.ctx.project)}",
            time_compare("seen_at", "<=", self.ctx.as_of, self.params),
        ]
        if ids is not None:
            where.append(f"has({ids}, user_id)")
        return f"SELECT DISTINCT user_id AS uid FROM users WHERE {' AND '.join(where)}"  # noqa: S608

    def definition(self, name: str, stack: tuple[str, ...]) -> Definition:
        """The definition of the segment `name`, referenced through `stack`."""
        if name in stack:
            raise FailedPrecondition(
                f"segment {name} references itself through {' -> '.join(stack)}",
                reason="SEGMENT_CYCLE",
                metadata={"segment": name},
            )
        definition = self.ctx.segments.get(name)
        if definition is None:
            raise FailedPrecondition(
                f"referenced segment {name} is not available",
                reason="SEGMENT_REFERENCE_MISSING",
                metadata={"segment": name},
            )
        return definition

    def _segment(self, name: str, ids: str | None, stack: tuple[str, ...]) -> str:
        return self.members(self.definition(name, stack), name, ids, (*stack, name))

    def reached_twice(self, definition: Definition) -> bool:
        """Whether some segment is reached by more than one path from `definition` (a
        diamond, or a segment referenced twice by one definition)."""
        seen: set[str] = set()

        def visit(definition: Definition, stack: tuple[str, ...]) -> bool:
            for name in _references(definition):
                if name in seen:
                    return True
                seen.add(name)
                if visit(self.definition(name, stack), (*stack, name)):
                    return True
            return False

        return visit(definition, ())

    def _past_behavior(
        self, query: PastBehaviorQuery, ids: str | None, stack: tuple[str, ...]
    ) -> str:
        universe = self.params.alias("u")
        events = self.params.alias("e")
        profiles = self.params.alias("pr")
        scan = EventScan(self.params, self.ctx.project, self.ctx.as_of, self.ctx.time_zone)
        bare = PropertyPredicates(self.params, "", self.ctx.as_of, self.ctx.time_zone)
        clauses: dict[int, Clause] = {}
        plan = classify(query.root)
        joined: list[str] = []  # profile predicates read by the mixed conjuncts
        # Referenced segments are joined, never `uid IN (subquery)`: the engine analyses an
        # IN subquery twice, so a chain of segments each referencing the next cost 2^depth
        # to plan; a join is analysed once (tests/robustness/test_reference_chains.py).
        # When some segment is reached by several paths, every referenced segment is one
        # membership column of one joined subquery instead (compiler_references), so that
        # each is evaluated once; otherwise each reference is joined on its own, which is
        # cheaper (a semi-join with a segment's members reads no user outside them).
        joins: list[str] = []
        references: References | None = None
        reached = self.params.alias("r")

        def member(name: str) -> str:
            nonlocal references
            if not self.merge_references:
                alias = self.params.alias("r")
                members = self._segment(name, ids, stack)
                joins.append(
                    f" LEFT JOIN (SELECT user_id AS {alias}_id, 1 AS {alias}_in "  # noqa: S608
                    f"FROM ({members})) AS {alias} ON {alias}.{alias}_id = {uid}"
                )
                return f"{alias}.{alias}_in = 1"  # 0 without a match (join_use_nulls = 0)
            if references is None:
                references = References(self, ids)
            return f"{reached}.{references.column(name, stack)} = 1"  # 0 without a match

        def clause(condition: Condition) -> Clause:
            assert isinstance(condition, Behaviour)
            if id(condition) not in clauses:
                clauses[id(condition)] = scan.add(condition)
            return clauses[id(condition)]

        # Behavioural conjuncts first: their empty-history values decide the driving table, and
        # over the aggregation's own columns they are its HAVING when it drives the query.
        having = and_all([expression(n, lambda c: clause(c).column) for n in plan.behavioural])
        driven_by_events = any(
            not value(node, lambda c: clause(c).empty_value) for node in plan.behavioural
        )
        uid = f"{events}.eid" if driven_by_events else f"{universe}.uid"

        def joined_leaf(condition: Condition) -> str:
            match condition:
                case UserProperty(filter=prop):
                    joined.append(bare.filter(prop))
                    without = "1" if prop.comparison.operator in NEGATIVE_OPERATORS else "0"
                    return f"if({profiles}.pe = 1, {profiles}.v{len(joined) - 1}, {without})"
                case InSegment(segment=name, negate=negated):
                    inside = member(name)
                    return negate(inside) if negated else inside
            found = clause(condition)
            if found.column in (TRUE, FALSE):
                return found.column
            column = f"{events}.{found.column}"
            if driven_by_events:  # every user of the aggregation has relevant events
                return column
            fallback = "1" if found.empty_value else "0"
            return f"if({events}.erows > 0, {column}, {fallback})"

        where = [expression(node, joined_leaf) for node in plan.mixed]
        if not driven_by_events:
            where += [expression(node, joined_leaf) for node in plan.behavioural]
        # Profile conjuncts apply to the aggregation's result, not inside the events scan:
        # checking every scanned event against a set of users costs more than it saves
        # (measured, bench/queries.py).
        profile_join, profile_anti = self._profile_semi_joins(uid, plan.profile, ids)
        where += profile_anti
        for kind, names in (("SEMI", query.included_segments), ("ANTI", query.excluded_segments)):
            for name in names:
                if self.merge_references:
                    inside = member(name)
                    where.append(inside if kind == "SEMI" else negate(inside))
                    continue
                alias = self.params.alias("r")
                members = self._segment(name, ids, stack)
                joins.append(f" LEFT {kind} JOIN ({members}) AS {alias} ON {alias}.user_id = {uid}")

        if driven_by_events:
            sql = f"SELECT {uid} AS user_id FROM ({scan.sql(ids)} HAVING {having}) AS {events}"  # noqa: S608
        else:
            sql = f"SELECT {uid} AS user_id FROM ({self.universe(ids)}) AS {universe}"  # noqa: S608
            if scan.select:
                sql += f" LEFT JOIN ({scan.sql(ids)}) AS {events} ON {events}.eid = {uid}"
        sql += profile_join
        sql += "".join(joins)
        if references is not None:
            sql += (
                f" LEFT JOIN ({references.sql()}) AS {reached}"
                f" ON {reached}.{references.key} = {uid}"
            )
        if joined:
            values = self.profiles.values("pid", "pe", joined, ids)
            sql += f" LEFT JOIN ({values}) AS {profiles} ON {profiles}.pid = {uid}"
        condition = and_all(where)
        if condition != TRUE:
            sql += f" WHERE {condition}"
        return sql

    def _profile_semi_joins(
        self, uid: str, nodes: Seq[Node], ids: str | None
    ) -> tuple[str, list[str]]:
        """Profile-only conjuncts as at most two semi-joins on `profiles`: an inner join with
        the profiles matching every conjunct false without a profile, and `uid NOT IN
        (profiles failing some conjunct true without one)`, since a user lacking the
        properties (or any profile) satisfies exactly the latter kind.

        Returns the join clause (or "") and the conditions for WHERE. The join, not
        `uid IN (...)`: the engine builds a join's table while the events aggregation runs,
        but builds an IN set before it starts (about 15% of the benchmark segment's time,
        bench/queries.py). The profiles hold one row per user, so the join adds no rows.
        """
        bare = PropertyPredicates(self.params, "", self.ctx.as_of, self.ctx.time_zone)

        def predicate(node: Node) -> str:
            return expression(
                node, lambda c: bare.filter(c.filter) if isinstance(c, UserProperty) else FALSE
            )

        need = [predicate(n) for n in nodes if not holds_without_profile(n)]
        refuse = [negate(predicate(n)) for n in nodes if holds_without_profile(n)]
        join = ""
        if need:
            alias = self.params.alias("ps")
            matching = self.profiles.matching(and_all(need), ids, f"{alias}_id")
            join = f" INNER JOIN ({matching}) AS {alias} ON {alias}.{alias}_id = {uid}"
        anti = []
        if refuse:
            anti.append(f"{uid} NOT IN ({self.profiles.matching(or_all(refuse), ids)})")
        return join, anti


def _references(definition: Definition) -> list[str]:
    """The segments a definition references, each as often as it is referenced."""
    if isinstance(definition, LiveDefinition):
        definition = definition.past_behavior or PastBehaviorQuery()
    if not isinstance(definition, PastBehaviorQuery):
        return []
    found = [*definition.included_segments, *definition.excluded_segments]

    def walk(node: Node) -> None:
        if isinstance(node.condition, InSegment):
            found.append(node.condition.segment)
        for child in node.children:
            walk(child)

    if definition.root is not None:
        walk(definition.root)
    return found
