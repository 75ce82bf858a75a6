"""Property test: the compiled SQL and the reference evaluator agree on random cases."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings, target

from libs.clickhouse.port import ClickHouse
from libs.model.definition import Definition
from services.evaluator.domain.compiler import EvaluationContext, compile_members
from services.evaluator.domain.compiler_shared import compile_shared, shareable

from .reference import Reference
from .strategies import Case, cases
from .world import load

T = TypeVar("T")


def runner(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Runs a coroutine on the test's loop from hypothesis's worker thread."""

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    return run


def context_of(case: Case) -> EvaluationContext:
    return EvaluationContext(
        "proj",
        case.as_of,
        case.time_zone,
        case.segments,
        profiles_as_of=case.world.profiles_changed_after(case.as_of),
    )


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
async def test_compiled_sql_matches_reference(ch: ClickHouse) -> None:
    run = runner(asyncio.get_running_loop())

    @settings(
        max_examples=int(os.environ.get("COMPILER_EXAMPLES", "60")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases())
    def check(case: Case) -> None:
        ctx = context_of(case)
        query = compile_members(case.definition, ctx)
        ref = Reference(case.world, case.as_of, case.time_zone, case.segments)
        expected = ref.members(case.definition)
        run(load(ch, case.world))
        rows = run(ch.query(query.sql, query.params))
        got = [row[0] for row in rows]
        assert len(got) == len(set(got)), "a member is listed twice"
        # steer towards cases that separate members from non-members
        target(float(min(len(expected), len(ref.universe - expected))))
        assert set(got) == expected, query.sql

    await asyncio.to_thread(check)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
async def test_shared_compilation_matches_reference(ch: ClickHouse) -> None:
    """Several segments in one query (compiler_shared: the daily job's figures): the case's
    segment and every segment it references, each membership column against the reference."""
    run = runner(asyncio.get_running_loop())

    @settings(
        max_examples=int(os.environ.get("COMPILER_SHARED_EXAMPLES", "15")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases())
    def check(case: Case) -> None:
        ctx = context_of(case)
        items: list[tuple[str, Definition]] = [("projects/proj/segments/case", case.definition)]
        items += [(n, d) for n, d in case.segments.items() if shareable(d)]
        query = compile_shared(items, ctx)
        ref = Reference(case.world, case.as_of, case.time_zone, case.segments)
        run(load(ch, case.world))
        rows = run(ch.query(query.sql, query.params))
        users = [row[0] for row in rows]
        assert len(users) == len(set(users)) and set(users) == ref.universe
        for i, (name, definition) in enumerate(items):
            got = {row[0] for row in rows if row[1 + i]}
            assert got == ref.members(definition, name), (name, query.sql)

    await asyncio.to_thread(check)
