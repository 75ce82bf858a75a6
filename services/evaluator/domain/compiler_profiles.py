"""Profiles as of the evaluation instant, as the compiled query reads them.

Each user's profile as of `as_of` is their latest version at or before it. When no profile of
the project changed after `as_of` (`EvaluationContext.profiles_as_of` false: the usual
evaluation "now"), that is the current state, `profiles FINAL`. Otherwise it is read from
`profile_versions`, evaluating each predicate on every version and keeping the latest
version's value per user (`argMax(predicate, update_time)`), which never copies a property
map: a fraction of the cost of rebuilding whole profiles as of the instant.

Queries never join whole profiles: they read the value of each profile predicate they need
(`PropertyPredicates` over the version's maps), one row per user who has a profile; a user
without one takes each predicate's value on an empty profile (positive operators false,
negative ones true).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.evaluator.domain.compiler_predicates import Params, and_all, time_compare


@dataclass(frozen=True)
class ProfileReader:
    params: Params
    project: str
    as_of: datetime
    from_versions: bool  # read versions as of `as_of` instead of the current state

    def _scope(self, ids: str | None) -> str:
        scope = f"project = {self.params.string(self.project)}"
        if self.from_versions:
            scope += " AND " + time_compare("update_time", "<=", self.as_of, self.params)
        return scope if ids is None else f"{scope} AND has({ids}, user_id)"

    def _table(self) -> str:
        return "profile_versions" if self.from_versions else "profiles FINAL"

    def matching(self, predicate: str, ids: str | None, column: str = "user_id") -> str:
        """SELECT `column`: the users whose profile as of `as_of` satisfies `predicate`, each
        once."""
        scope = self._scope(ids)
        if self.from_versions:
            return (
                f"SELECT user_id AS {column} FROM profile_versions WHERE {scope}"  # noqa: S608
                f" GROUP BY user_id HAVING argMax({predicate}, update_time)"
            )
        where = and_all([scope, predicate])
        return f"SELECT user_id AS {column} FROM profiles FINAL WHERE {where}"  # noqa: S608

    def values(
        self, id_column: str, present: str, predicates: Sequence[str], ids: str | None
    ) -> str:
        """SELECT one row per user with a profile: `id_column` (the user), `present` (1) and
        `v0`, `v1`, ... the predicates' values as of `as_of`."""
        if self.from_versions:
            columns = [f"argMax({p}, update_time) AS v{i}" for i, p in enumerate(predicates)]
            group = " GROUP BY user_id"
        else:
            columns = [f"{p} AS v{i}" for i, p in enumerate(predicates)]
            group = ""
        selected = ", ".join([f"user_id AS {id_column}", f"1 AS {present}", *columns])
        return f"SELECT {selected} FROM {self._table()} WHERE {self._scope(ids)}{group}"  # noqa: S608
