"""SQL stores: on SQLite a reading transaction does not wait for the write lock a writer holds
and sees the last committed state; stores opened side by side in one process migrate one at a
time (Alembic's context is module state)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from services.evaluator.adapters.live_store import LiveStore
from services.evaluator.adapters.live_tables import live_counter


async def test_a_read_goes_on_beside_an_open_write(tmp_path: Path) -> None:
    store = LiveStore(f"sqlite+aiosqlite:///{tmp_path / 'live.sqlite3'}")
    await store.open()
    try:
        before = await store.last_cursor()
        writing, release = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with store.database.begin() as conn:  # holds the write lock
                await conn.execute(
                    sa.update(live_counter)
                    .where(live_counter.c.name == "entries")
                    .values(value=before + 7)
                )
                writing.set()
                await release.wait()

        task = asyncio.create_task(writer())
        await writing.wait()
        # not committed yet: the read answers at once with the committed value
        assert await asyncio.wait_for(store.last_cursor(), 5) == before
        release.set()
        await task
        assert await store.last_cursor() == before + 7
    finally:
        await store.close()


async def test_stores_opened_side_by_side_migrate_one_at_a_time(tmp_path: Path) -> None:
    stores = [LiveStore(f"sqlite+aiosqlite:///{tmp_path / f'live{i}.sqlite3'}") for i in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert [await store.last_cursor() for store in stores] == [0, 0, 0, 0]
    finally:
        await asyncio.gather(*(store.close() for store in stores))
