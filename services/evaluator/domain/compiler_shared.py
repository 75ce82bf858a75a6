"""Many segments' members in one query that reads the events once (the daily job's figures).

Shape (every segment of one project, as of one instant):

    SELECT r.key AS user_id, r.<column of segment 0> AS m0, ..., r.<of segment n-1> AS m<n-1>
    FROM (<compiler_references: one row per user of the universe, one membership column per
           distinct segment listed or referenced>)

Each past-behaviour segment's membership is its condition tree over one aggregation of the
events shared by every segment (a user without relevant events takes each clause's
empty-history value) and the profile values (a user without a profile takes each predicate's
value on an empty profile), exactly as the single-segment compiler evaluates a query that the
universe drives (`compiler._Compiler._past_behavior`); a segment listed or referenced several
times is computed once, and a reference reads the referenced segment's column. Only
past-behaviour and system segments are shared (`shareable`): the members of a list may lie
outside the universe, and live segments are not evaluated by query. Pure: every value is a
bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.model.definition import Definition, PastBehaviorQuery, SystemDefinition
from services.evaluator.domain.compiler import CompiledQuery, EvaluationContext, _Compiler
from services.evaluator.domain.compiler_predicates import Params
from services.evaluator.domain.compiler_references import References


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


class _SharedCompiler(_Compiler):
    def shared(self, segments: Sequence[tuple[str, Definition]]) -> str:
        for name, definition in segments:
            if not shareable(definition):
                raise ValueError(f"{name} is not a past-behaviour or system segment")
        references = References(self, None)
        columns = [f"{references.key} AS user_id"]
        for i, (name, definition) in enumerate(segments):
            columns.append(f"{references.add(name, definition)} AS m{i}")
        return f"SELECT {', '.join(columns)} FROM ({references.sql()})"  # noqa: S608
