"""The membership of every segment a query reaches, each distinct segment computed once.

A segment may be reached by several paths (a diamond: A includes B and C, each including D);
compiling it once per path made a query's size and cost grow with the number of paths, which
doubles with each level of a ladder of diamonds. Here every distinct segment becomes one
membership column, computed once per user, in layers so that a segment's column reads the
columns of the segments it references:

    SELECT *, toUInt8(<tree over l and m columns>) AS m<j>, ...         -- layer 2, ...
    FROM (SELECT *, toUInt8(<tree over l and m columns>) AS m<i>, ...  -- layer 1
          FROM (SELECT u.uid AS <key>, toUInt8(<leaf>) AS l<k>, ..., x.x_in AS m<h>, ...
                FROM (<the universe>) AS u
                LEFT JOIN (<one aggregation over events: every clause of every segment>) AS e
                    ON e.eid = u.uid
                LEFT JOIN (<every profile predicate, as of as_of>) AS pr ON pr.pid = u.uid
                LEFT JOIN (SELECT user_id AS x_id, 1 AS x_in FROM (<list members>)) AS x
                    ON x.x_id = u.uid))

A past-behaviour segment (or a live segment's past-behaviour part) is evaluated as the
single-segment compiler evaluates a query that the universe drives: a user without relevant
events takes each clause's empty-history value, a user without a profile each predicate's
value on an empty profile. Lists and test users are joined as members. Each segment lies in
the layer after the highest of the segments it references, so the query has one layer per
level of reference depth and one column per distinct segment. Pure: every value is a bound
parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.model.definition import (
    NEGATIVE_OPERATORS,
    Condition,
    Definition,
    InSegment,
    LiveDefinition,
    PastBehaviorQuery,
    SystemDefinition,
    SystemSegmentKind,
    UserProperty,
)
from services.evaluator.domain.compiler_clauses import Behaviour, Clause, EventScan
from services.evaluator.domain.compiler_plan import expression
from services.evaluator.domain.compiler_predicates import (
    FALSE,
    TRUE,
    PropertyPredicates,
    and_all,
    negate,
)

if TYPE_CHECKING:
    from services.evaluator.domain.compiler import _Compiler


class References:
    """Collects the segments of one query; `sql()` then gives their membership columns."""

    def __init__(self, compiler: _Compiler, ids: str | None) -> None:
        self._compiler = compiler
        self._ids = ids
        params = compiler.params
        self._params = params
        self._universe = params.alias("u")
        self._uid = f"{self._universe}.uid"
        #: the column of the user's id in `sql()`
        self.key = params.alias("ru")
        self._events = params.alias("e")
        self._profiles = params.alias("pr")
        ctx = compiler.ctx
        self._scan = EventScan(params, ctx.project, ctx.as_of, ctx.time_zone)
        self._bare = PropertyPredicates(params, "", ctx.as_of, ctx.time_zone)
        self._clauses: dict[int, Clause] = {}
        self._predicates: list[str] = []  # profile predicates, read as pr.v<i>
        self._base: list[str] = []  # columns of the innermost select
        self._joins: list[str] = []  # members of lists and test users
        self._layers: list[list[str]] = [[]]  # "expr AS m<i>" by layer (layer 0 unused)
        self._columns: dict[str, tuple[str, int]] = {}  # by segment: column and layer

    def column(self, name: str, stack: tuple[str, ...]) -> str:
        """The membership column (UInt8) of the segment `name`, referenced through `stack`."""
        return self._column(name, stack)[0]

    def add(self, name: str, definition: Definition, stack: tuple[str, ...] = ()) -> str:
        """The membership column of the segment `name` with the given definition."""
        return self._add(name, definition, (*stack, name))[0]

    def _column(self, name: str, stack: tuple[str, ...]) -> tuple[str, int]:
        found = self._columns.get(name)
        if found is not None:
            return found
        definition = self._compiler.definition(name, stack)
        return self._add(name, definition, (*stack, name))

    def _add(self, name: str, definition: Definition, stack: tuple[str, ...]) -> tuple[str, int]:
        found = self._columns.get(name)
        if found is not None:
            return found
        column = self._params.alias("m")
        match definition:
            case LiveDefinition(past_behavior=PastBehaviorQuery() as past):
                found = self._past_behavior(column, past, stack)
            case PastBehaviorQuery():
                found = self._past_behavior(column, definition, stack)
            case SystemDefinition(kind=SystemSegmentKind.ALL_USERS):
                self._base.append(f"1 AS {column}")  # the universe itself
                found = (column, 0)
            case _:
                # refuses a live segment without a past-behaviour part
                members = self._compiler.members(definition, name, self._ids, stack)
                alias = self._params.alias("x")
                self._joins.append(
                    f" LEFT JOIN (SELECT user_id AS {alias}_id, 1 AS {alias}_in "  # noqa: S608
                    f"FROM ({members})) AS {alias} ON {alias}.{alias}_id = {self._uid}"
                )
                self._base.append(f"{alias}.{alias}_in AS {column}")
                found = (column, 0)
        self._columns[name] = found
        return found

    def _past_behavior(
        self, column: str, query: PastBehaviorQuery, stack: tuple[str, ...]
    ) -> tuple[str, int]:
        layer = 1

        def member(name: str) -> str:
            nonlocal layer
            referenced, level = self._column(name, stack)
            layer = max(layer, level + 1)
            return f"{referenced} = 1"

        def leaf(condition: Condition) -> str:
            match condition:
                case InSegment(segment=name, negate=negated):
                    inside = member(name)
                    return negate(inside) if negated else inside
                case UserProperty(filter=prop):
                    self._predicates.append(self._bare.filter(prop))
                    without = "1" if prop.comparison.operator in NEGATIVE_OPERATORS else "0"
                    value = f"{self._profiles}.v{len(self._predicates) - 1}"
                    return self._leaf(f"if({self._profiles}.pe = 1, {value}, {without})")
            assert isinstance(condition, Behaviour)
            if id(condition) not in self._clauses:
                self._clauses[id(condition)] = self._scan.add(condition)
            found = self._clauses[id(condition)]
            if found.column in (TRUE, FALSE):
                return found.column
            fallback = "1" if found.empty_value else "0"
            events = self._events
            return self._leaf(f"if({events}.erows > 0, {events}.{found.column}, {fallback})")

        parts = [] if query.root is None else [expression(query.root, leaf)]
        parts += [member(s) for s in query.included_segments]
        parts += [negate(member(s)) for s in query.excluded_segments]
        while len(self._layers) <= layer:
            self._layers.append([])
        self._layers[layer].append(f"toUInt8({and_all(parts)}) AS {column}")
        return column, layer

    def _leaf(self, sql: str) -> str:
        column = self._params.alias("l")
        self._base.append(f"toUInt8({sql}) AS {column}")
        return column

    def sql(self) -> str:
        """One row per user of the universe: `key` and every segment's membership column."""
        columns = ", ".join([f"{self._uid} AS {self.key}", *self._base])
        universe = self._compiler.universe(self._ids)
        sql = f"SELECT {columns} FROM ({universe}) AS {self._universe}"  # noqa: S608
        if self._scan.select:
            scan = self._scan.sql(self._ids)
            sql += f" LEFT JOIN ({scan}) AS {self._events} ON {self._events}.eid = {self._uid}"
        if self._predicates:
            values = self._compiler.profiles.values("pid", "pe", self._predicates, self._ids)
            alias = self._profiles
            sql += f" LEFT JOIN ({values}) AS {alias} ON {alias}.pid = {self._uid}"
        sql += "".join(self._joins)
        for layer in self._layers[1:]:
            if layer:
                sql = f"SELECT *, {', '.join(layer)} FROM ({sql})"  # noqa: S608
        return sql
