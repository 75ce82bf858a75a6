"""The executor port: what services need from ClickHouse, whatever runs it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

#: One result row, columns in SELECT order. Strings are `str`, integers `int`, DateTime64 values
#: timezone-aware UTC `datetime`, Map values `dict`, Array values `list`.
Row = tuple[Any, ...]
#: Query parameters bound to `{name:Type}` placeholders: str, int, float, bool, datetime (aware),
#: date, or lists of those. Never formatted into SQL text.
Params = Mapping[str, Any]
#: ClickHouse settings for one statement (names are engine setting names).
Settings = Mapping[str, int | float | str]


@dataclass(frozen=True)
class InsertData:
    """Rows encoded for an INSERT: the column names and the data part, in `INSERT_FORMAT`."""

    columns: tuple[str, ...]
    body: str
    row_count: int


class ClickHouse(Protocol):
    """Executes SQL against one ClickHouse database (the current database of every statement).

    Every statement runs with memory-bounded settings; engine failures surface as
    `libs.common.errors.DomainError`s (memory → ResourceExhausted, timeout → DeadlineExceeded,
    connection → Unavailable, anything else → Internal).
    """

    @property
    def database(self) -> str: ...

    async def query(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> list[Row]:
        """Runs a SELECT (or EXPLAIN/SHOW) and returns all rows."""
        ...

    def query_stream(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncIterator[list[Row]]:
        """Runs a SELECT and yields its rows in blocks, holding one block in memory at a time."""
        ...

    def query_stream_arrow(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncGenerator[pa.RecordBatch, None]:
        """Runs a SELECT and yields its result as Arrow record batches (String columns as
        utf8), holding one in memory at a time: for reading many rows without a Python object
        per value."""
        ...

    async def command(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> None:
        """Runs a statement that returns no rows (DDL, INSERT ... SELECT, DELETE)."""
        ...

    async def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Settings | None = None,
    ) -> None:
        """Inserts rows (values in `columns` order) into a table of the current database."""
        ...

    async def insert_encoded(
        self, table: str, data: InsertData, settings: Settings | None = None
    ) -> None:
        """Inserts rows encoded beforehand with `libs.clickhouse.encode_insert` (so that the
        encoding can run while something else is waiting on the engine)."""
        ...

    async def close(self) -> None: ...
