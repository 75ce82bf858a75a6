"""The versions of stored figures in the run log, on SQLite and PostgreSQL (migrated by the
store's Alembic revisions): 0 before any write, one more after each write, per segment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.reporting.adapters.run_store import RunStore
from tests.support.postgres import temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    if request.param == "sqlite":
        runs = RunStore(f"sqlite+aiosqlite:///{tmp_path / 'reporting.sqlite3'}")
        await runs.open()
        yield runs
        await runs.close()
        return
    async with temporary_database() as url:
        runs = RunStore(url)
        await runs.open()
        yield runs
        await runs.close()


async def test_each_write_bumps_the_version_of_its_segments(store: RunStore) -> None:
    async def versions() -> list[int]:
        async with store.transaction() as tx:
            return [await tx.figures_version("p", s) for s in ("a", "b", "c")]

    assert await versions() == [0, 0, 0]
    async with store.transaction() as tx:
        await tx.bump_figures("p", ["a", "b", "a"])
    async with store.transaction() as tx:
        await tx.bump_figures("p", ["b"])
        await tx.bump_figures("other", ["c"])
    assert await versions() == [1, 2, 0]
