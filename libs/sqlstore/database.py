"""`SqlDatabase`: engine, migrations and transactions of one service's SQL store.

SQLite specifics: foreign keys are switched on, the journal is WAL, and every transaction
starts with BEGIN IMMEDIATE so that concurrent writers (also in other processes) queue (busy
timeout) instead of failing on a lock upgrade; one writer at a time gives the same outcomes
as PostgreSQL's row locks and unique indexes, and stands in for `FOR UPDATE SKIP LOCKED`.

`run_transaction` runs a whole transaction of synchronous statements at once: on a SQLite file
in one trip to the store's own writer thread (the async driver makes four trips to its thread
per statement, each waiting for a turn of a busy event loop), elsewhere through the async
driver.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from libs.common.errors import Aborted, Unavailable
from libs.sqlstore.observe import forget_engine, observe_engine, observed_transaction, store_name

#: How long opening a connection to a database server may take before the store counts as
#: unreachable.
CONNECT_TIMEOUT_SECONDS = 10

#: The retry delay an UNAVAILABLE answer suggests when the store cannot be reached.
RETRY_AFTER_SECONDS = 1.0
#: PostgreSQL SQLSTATE classes and codes of a connection lost or refused: connection
#: exceptions, and a server shutting down or starting up.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")

#: PostgreSQL SQLSTATEs meaning "a concurrent transaction won; retry": serialization
#: failure and deadlock.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy async URL of an embedded SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def insert_ignoring_conflicts(dialect: str, table: sa.Table, rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either backend (`dialect`: the connection's)."""
    if dialect == "postgresql":
        return postgresql.insert(table).values(rows).on_conflict_do_nothing()
    return sqlite.insert(table).values(rows).on_conflict_do_nothing()


#: One migration at a time per event loop: Alembic's `context` is module state, so two stores
#: opened side by side in one process (several services starting at once) must not interleave.
_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _migration_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return lock


#: Execution option of a transaction that only reads (`SqlDatabase.read`).
_READ_ONLY = "segments_read_only"


T = TypeVar("T")


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # a writing transaction takes the write lock at once (no upgrade deadlock later);
        # a reading one takes none, and reads the last committed state beside the writer (WAL)
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _connection_lost(exc: DBAPIError) -> bool:
    """Whether a driver error means the connection was lost or could not be made."""
    if exc.connection_invalidated:
        return True
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate.startswith(_CONNECTION_SQLSTATES):
        return True
    text = str(exc.orig).lower()
    return "connection" in text and ("closed" in text or "lost" in text or "refused" in text)


class SqlDatabase:
    """One service's SQL store, named by an SQLAlchemy async URL.

    `migrations_dir` is the service's Alembic script location (its `env.py` calls
    `run_alembic_env`); `label` names the store in error messages ("the export store").
    """

    def __init__(self, url: str, migrations_dir: Path, *, label: str) -> None:
        self.url = url
        self.label = label
        self._migrations_dir = migrations_dir
        self._engine: AsyncEngine | None = None
        #: a SQLite file's synchronous engine and the one thread it runs in (run_transaction)
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError(f"{self.label} is not open")
        return self._engine

    @property
    def dialect(self) -> str:
        """ "postgresql" or "sqlite"."""
        return self.engine.dialect.name

    async def open(self) -> None:
        """Creates the engine and migrates the schema to the latest revision."""
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            _sqlite_setup(engine.sync_engine)
        else:
            engine = create_async_engine(
                url,
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            )
        try:
            try:
                async with engine.connect() as probe:
                    await probe.exec_driver_sql("SELECT 1")
            except (DBAPIError, OSError) as exc:
                raise self.unreachable(exc) from exc
            async with _migration_lock(), engine.begin() as conn:
                await conn.run_sync(self._upgrade)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        observe_engine(self, engine, store_name(self.label))
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sync_engine = sa.create_engine(
                url.set(drivername="sqlite+pysqlite"), connect_args={"timeout": 30}
            )
            _sqlite_setup(self._sync_engine)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite {self.label}")

    def unreachable(self, exc: BaseException) -> Unavailable:
        """The error of a store that cannot be reached, naming it and its address (without
        the password)."""
        cause = getattr(exc, "orig", None) or exc
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:300]
        address = make_url(self.url).render_as_string(hide_password=True)
        return Unavailable(
            f"{self.label} cannot be reached at {address}: {detail}",
            reason="STORE_UNREACHABLE",
            metadata={"store": self.label},
        )

    async def problem(self) -> str | None:
        """None when a server database answers a trivial query (an embedded file is not
        probed: a busy writer would hold the probe up), else what is wrong. For health
        checks, which bound the time it takes."""
        if self._engine is None:
            return f"{self.label} is not open"
        if self.dialect == "sqlite":
            return None
        try:
            async with self._engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (DBAPIError, OSError) as exc:
            return self.unreachable(exc).message
        return None

    def _upgrade(self, connection: Connection) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(self._migrations_dir))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await asyncio.to_thread(writer.shutdown)  # after the transactions under way
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None
        if self._engine is not None:
            forget_engine(self)
            await self._engine.dispose()
            self._engine = None

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction that only reads: on SQLite it does not wait for the write lock (it
        sees the last committed state while a writer works); elsewhere the same as `begin`."""
        return self.begin(read_only=True)

    @asynccontextmanager
    async def begin(self, *, read_only: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back on any exception.

        A lock held by a concurrent writer or a serialization conflict is ABORTED (retry);
        a store that cannot be reached is UNAVAILABLE.
        """
        async with observed_transaction(store_name(self.label)):
            try:
                async with self.engine.connect() as plain:
                    conn = await plain.execution_options(**{_READ_ONLY: read_only})
                    async with conn.begin():
                        yield conn
            except (DBAPIError, OSError, TimeoutError) as exc:
                mapped = self._store_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc

    async def run_transaction(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` (synchronous SQLAlchemy statements) in one writing transaction,
        committed when it returns, rolled back when it raises; failures of the store map as in
        `begin`. On a SQLite file it runs in one trip to the store's writer thread, so the
        store's writers in this process take turns there; elsewhere through the async driver."""
        if self._writer is None:
            async with self.begin() as conn:
                return await conn.run_sync(work)
        async with observed_transaction(store_name(self.label)):
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    self._writer, self._run_sync, work
                )
            except (DBAPIError, OSError, TimeoutError) as exc:
                mapped = self._store_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc

    def _run_sync(self, work: Callable[[Connection], T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn, conn.begin():
            return work(conn)

    def _store_error(self, exc: DBAPIError | OSError | TimeoutError) -> Exception | None:
        """What a transaction's failure raises: ABORTED for a concurrent writer that won (or a
        busy SQLite file), UNAVAILABLE for a store that cannot be reached; None: the error
        itself."""
        if isinstance(exc, OperationalError):
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                return Aborted("the store is busy with a concurrent change; retry")
            return self._lost(exc)
        if isinstance(exc, DBAPIError):
            if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
                return Aborted("a concurrent change conflicted with this one; retry")
            if _connection_lost(exc):
                return self._lost(exc)
            return None
        return self._lost(exc)  # connecting failed (refused, unknown host)

    def _lost(self, exc: BaseException) -> Unavailable:
        """UNAVAILABLE with a retry delay: the store cannot be reached right now (a server
        restarting, a network failure); a later attempt reconnects by itself."""
        return Unavailable(
            f"{self.label} cannot be reached; retry",
            reason="STORE_UNAVAILABLE",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
