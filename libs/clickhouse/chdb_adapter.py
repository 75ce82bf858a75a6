"""Embedded ClickHouse (chDB): the zero-setup default and the engine tests run on.

chDB opens one data path per process, so `ChdbEngine.for_path` hands out a process-wide
singleton. Each database gets its own pool of chDB connections, whose session's current
database is that database (the SQL uses unqualified table names). Queries run in worker
threads: chDB releases the GIL while it works.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import chdb
import pyarrow as pa

from libs.clickhouse.cancel import KILL_SQL, TAG_SETTING, new_tag, stop_on_cancel, with_tag
from libs.clickhouse.common import (
    ARROW_SETTINGS,
    arrow_batches,
    bind,
    check_identifier,
    decode_native,
    encode_insert,
    insert_statement,
    map_engine_error,
    memory_settings,
    merged_settings,
    render_setting,
    rows_to_columns,
)
from libs.clickhouse.port import InsertData, Params, Row, Settings
from libs.common.errors import FailedPrecondition

_FETCH_DONE = object()
_log = logging.getLogger(__name__)


class _Connection:
    """One chDB session bound to a database, remembering which settings it has applied."""

    def __init__(self, raw: Any, database: str) -> None:
        self.raw = raw
        self.database = database
        self.applied: dict[str, Any] = {}

    def apply(self, settings: Mapping[str, Any]) -> None:
        for key in [k for k in self.applied if k not in settings]:
            self.raw.query(f"SET {check_identifier(key)} = DEFAULT")
            del self.applied[key]
        for key, value in settings.items():
            if self.applied.get(key) != value:
                self.raw.query(f"SET {check_identifier(key)} = {render_setting(value)}")
                self.applied[key] = value


def check_not_held(path: Path) -> None:
    """Refuses a data path that another process's embedded ClickHouse holds (it locks the
    `status` file of the path while it runs), before chDB itself fails with a long report."""
    status = path / "status"
    try:
        handle = status.open("rb")
    except OSError:
        return  # never opened yet, or unreadable: chDB says what is wrong
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FailedPrecondition(
                f"another segments server holds the data directory {path.parent} (its embedded "
                "ClickHouse); stop that server, or give this one a data directory of its own "
                "(SEGMENTS_DATA_DIR) or a ClickHouse server (SEGMENTS_CLICKHOUSE_URL)",
                reason="DATA_DIRECTORY_IN_USE",
                metadata={"path": str(path)},
            ) from None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class ChdbEngine:
    """The process's embedded ClickHouse server for one data path."""

    _instances: dict[Path, ChdbEngine] = {}
    _class_lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._idle: dict[str, list[_Connection]] = {}
        self._admin: Any = None
        self._admin_lock = threading.Lock()
        self._probed = False

    @classmethod
    def for_path(cls, path: Path) -> ChdbEngine:
        resolved = path.resolve()
        with cls._class_lock:
            engine = cls._instances.get(resolved)
            if engine is not None:
                return engine
            if cls._instances:
                # chDB can open one data path per process. A second path (several services
                # configured differently in one test process) shares the open one: databases
                # keep their data apart.
                opened = next(iter(cls._instances.values()))
                _log.warning(
                    "chDB already open at %s; using it instead of %s", opened.path, resolved
                )
                return opened
            resolved.mkdir(parents=True, exist_ok=True)
            engine = cls(resolved)
            cls._instances[resolved] = engine
            atexit.register(engine.close_all)
            return engine

    def _connect(self) -> Any:
        if not self._probed:
            check_not_held(self.path)
            self._probed = True
        return chdb.connect(str(self.path))

    def _admin_query(self, sql: str, params: Mapping[str, str]) -> None:
        """A statement on the engine's own session (one at a time)."""
        with self._admin_lock:
            with self._lock:
                if self._admin is None:
                    self._admin = self._connect()
                admin = self._admin
            admin.query(sql, "TabSeparated", params=dict(params))

    def ensure_database(self, database: str) -> None:
        self._admin_query("CREATE DATABASE IF NOT EXISTS {db:Identifier}", {"db": database})

    def kill(self, tag: str) -> None:
        """Stops the statements tagged `tag` (see `libs.clickhouse.cancel`)."""
        self._admin_query(KILL_SQL, {"tag": tag})

    def _acquire(self, database: str) -> _Connection:
        with self._lock:
            idle = self._idle.get(database)
            if idle:
                return idle.pop()
        conn = _Connection(self._connect(), database)
        conn.raw.query("USE {db:Identifier}", "TabSeparated", params={"db": database})
        return conn

    def _release(self, conn: _Connection) -> None:
        with self._lock:
            self._idle.setdefault(conn.database, []).append(conn)

    def _discard(self, conn: _Connection) -> None:
        with contextlib.suppress(Exception):  # a broken session is dropped either way
            conn.raw.close()

    def execute(
        self,
        database: str,
        sql: str,
        fmt: str,
        params: Mapping[str, str] | None,
        settings: Mapping[str, Any],
    ) -> bytes:
        """Runs one statement (blocking) and returns the output bytes in `fmt`."""
        conn = self._acquire(database)
        try:
            conn.apply(settings)
            result = conn.raw.query(sql, fmt, params=dict(params) if params else None)
            # the result's buffer belongs to the session: copy it out before another thread
            # may run a query on that session
            data = bytes(result.bytes()) if result is not None else b""
        finally:
            self._release(conn)
        return data

    def stream(
        self,
        database: str,
        sql: str,
        fmt: str,
        params: Mapping[str, str] | None,
        settings: Mapping[str, Any],
    ) -> Generator[bytes, None, None]:
        """Runs a SELECT (blocking generator), yielding the output chunk by chunk."""
        conn = self._acquire(database)
        healthy = True
        try:
            conn.apply(settings)
            streaming = conn.raw.send_query(sql, fmt, params=dict(params) if params else None)
            finished = False
            try:
                while True:
                    chunk = streaming.fetch()
                    if chunk is None:
                        finished = True
                        break
                    data = chunk.bytes()
                    if data:
                        yield bytes(data)
            finally:
                if not finished:
                    try:
                        streaming.cancel()
                    except Exception:
                        healthy = False
                with contextlib.suppress(Exception):  # closing a finished stream may fail
                    streaming.close()
        finally:
            if healthy:
                self._release(conn)
            else:
                self._discard(conn)

    def close_all(self) -> None:
        """Closes every idle session and the admin session (at exit: sessions left to the
        engine's own teardown can outlive it)."""
        with self._lock:
            conns = [c for pool in self._idle.values() for c in pool]
            self._idle.clear()
            admin, self._admin = self._admin, None
        for conn in conns:
            self._discard(conn)
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()

    def drop_pool(self, database: str) -> None:
        with self._lock:
            conns = self._idle.pop(database, [])
        for conn in conns:
            self._discard(conn)


class ChdbClickHouse:
    """`ClickHouse` over the embedded engine, on one database."""

    def __init__(self, engine: ChdbEngine, database: str, max_memory_bytes: int) -> None:
        self._engine = engine
        self._database = check_identifier(database)
        self._base = memory_settings(max_memory_bytes)

    @classmethod
    async def open(cls, path: Path, database: str, max_memory_bytes: int) -> ChdbClickHouse:
        engine = ChdbEngine.for_path(path)
        try:
            await asyncio.to_thread(engine.ensure_database, database)
        except Exception as exc:
            raise map_engine_error(exc) from exc
        return cls(engine, database, max_memory_bytes)

    @property
    def database(self) -> str:
        return self._database

    @property
    def engine(self) -> ChdbEngine:
        return self._engine

    async def _run(
        self,
        sql: str,
        fmt: str,
        params: Params | None,
        settings: Settings | None,
        *,
        cancellable: bool = False,
    ) -> bytes:
        """Runs a statement; a `cancellable` one (a query) is killed when the caller is
        cancelled (`libs.clickhouse.cancel`)."""
        bound_sql, bound = bind(sql, params)
        merged = merged_settings(self._base, settings)
        try:
            if not cancellable:
                return await asyncio.to_thread(
                    self._engine.execute, self._database, bound_sql, fmt, bound, merged
                )
            tag = new_tag()
            statement = with_tag(bound_sql, tag)
            if statement is None:
                statement = bound_sql
                merged[TAG_SETTING] = tag
            return await stop_on_cancel(
                lambda: self._engine.execute(self._database, statement, fmt, bound, merged),
                lambda: self._engine.kill(tag),
            )
        except Exception as exc:
            raise map_engine_error(exc) from exc

    async def query(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> list[Row]:
        data = await self._run(sql, "Native", params, settings, cancellable=True)
        return decode_native(data)

    async def _stream_native(
        self, sql: str, params: Params | None, settings: Settings | None, fmt: str = "Native"
    ) -> AsyncGenerator[bytes, None]:
        """The output of a SELECT in `fmt`, chunk by chunk (each fetched in a worker thread)."""
        bound_sql, bound = bind(sql, params)
        merged = merged_settings(self._base, settings)
        tag = new_tag()
        statement = with_tag(bound_sql, tag)
        if statement is None:
            statement = bound_sql
            merged[TAG_SETTING] = tag
        chunks = self._engine.stream(self._database, statement, fmt, bound, merged)
        try:
            while True:
                try:
                    data = await stop_on_cancel(
                        lambda: next(chunks, _FETCH_DONE), lambda: self._engine.kill(tag)
                    )
                except Exception as exc:
                    raise map_engine_error(exc) from exc
                if data is _FETCH_DONE:
                    break
                assert isinstance(data, bytes)
                yield data
        finally:
            with contextlib.suppress(ValueError):  # still fetching: a killed query's worker
                await asyncio.to_thread(chunks.close)

    async def query_stream(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncIterator[list[Row]]:
        async with contextlib.aclosing(self._stream_native(sql, params, settings)) as chunks:
            async for data in chunks:
                rows = decode_native(data)
                if rows:
                    yield rows

    async def query_stream_arrow(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncGenerator[pa.RecordBatch, None]:
        merged = {**ARROW_SETTINGS, **(settings or {})}
        chunks = self._stream_native(sql, params, merged, "ArrowStream")
        async with contextlib.aclosing(chunks):
            async for data in chunks:
                for batch in arrow_batches(data):
                    if batch.num_rows:
                        yield batch

    async def command(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> None:
        await self._run(sql, "TabSeparated", params, settings)

    async def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Settings | None = None,
    ) -> None:
        await self.insert_encoded(
            table, encode_insert(columns, rows_to_columns(columns, rows)), settings
        )

    async def insert_encoded(
        self, table: str, data: InsertData, settings: Settings | None = None
    ) -> None:
        if data.row_count:
            statement = insert_statement(table, data.columns) + "\n" + data.body
            await self._run(statement, "TabSeparated", None, settings)

    async def close(self) -> None:
        await asyncio.to_thread(self._engine.drop_pool, self._database)
