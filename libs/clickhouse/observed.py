"""`ObservedClickHouse`: any `ClickHouse` adapter with every statement timed
(`segments_clickhouse_query_seconds`), its failures counted, and a span per statement when
tracing is on. `open_clickhouse` hands out adapters wrapped in it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from libs.clickhouse.port import ClickHouse, InsertData, Params, Row, Settings
from libs.common import metrics, tracing

#: Longest statement text put on a span (inserts carry their rows in the text on chDB).
_MAX_STATEMENT = 4000


class ObservedClickHouse:
    """Delegates to `inner` (adapter "chdb" or "http"), measuring each statement."""

    def __init__(self, inner: ClickHouse, adapter: str) -> None:
        self._inner = inner
        self._adapter = adapter

    @property
    def inner(self) -> ClickHouse:
        return self._inner

    @property
    def database(self) -> str:
        return self._inner.database

    def __getattr__(self, name: str) -> Any:
        # What the port may offer beyond the statements measured here.
        return getattr(self._inner, name)

    @contextmanager
    def _observed(self, operation: str, statement: str, *, current: bool = True) -> Iterator[None]:
        """Measures the block; its span is the current one inside it when `current` (not for a
        stream, whose consumer runs between its blocks)."""
        started = time.perf_counter()
        attributes = {
            "db.system": "clickhouse",
            "db.name": self._inner.database,
            "db.operation": operation,
            "db.statement": statement[:_MAX_STATEMENT],
            "segments.clickhouse.adapter": self._adapter,
        }
        span = tracing.start_span(
            f"clickhouse {operation}", kind=tracing.SpanKind.CLIENT, attributes=attributes
        )
        try:
            with tracing.activated(span if current else None):
                yield
        except Exception as exc:
            metrics.CLICKHOUSE_QUERY_FAILURES.labels(
                self._adapter, operation, type(exc).__name__
            ).inc()
            tracing.mark_error(span, exc)
            raise
        finally:
            metrics.CLICKHOUSE_QUERY_SECONDS.labels(self._adapter, operation).observe(
                time.perf_counter() - started
            )
            if span is not None:
                span.end()

    async def query(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> list[Row]:
        with self._observed("query", sql):
            return await self._inner.query(sql, params, settings)

    async def query_stream(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncIterator[list[Row]]:
        with self._observed("stream", sql, current=False):
            async for rows in self._inner.query_stream(sql, params, settings):
                yield rows

    async def command(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> None:
        with self._observed("command", sql):
            await self._inner.command(sql, params, settings)

    async def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Settings | None = None,
    ) -> None:
        with self._observed("insert", f"INSERT INTO {table}"):
            await self._inner.insert(table, columns, rows, settings)

    async def insert_encoded(
        self, table: str, data: InsertData, settings: Settings | None = None
    ) -> None:
        with self._observed("insert", f"INSERT INTO {table}"):
            await self._inner.insert_encoded(table, data, settings)

    async def close(self) -> None:
        await self._inner.close()
