"""SQLite: a reading transaction does not wait for the write lock a writer holds, and sees
the last committed state."""

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
