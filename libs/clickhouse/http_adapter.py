"""ClickHouse server (or cluster) over HTTP with clickhouse-connect.

The client is synchronous and thread-safe without a session id, so each statement runs in a
worker thread. Results are decoded from Native format by clickhouse-connect, as in the
embedded adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.exceptions import OperationalError

from libs.clickhouse.cancel import KILL_SQL, TAG_SETTING, new_tag, stop_on_cancel
from libs.clickhouse.common import (
    ARROW_SETTINGS,
    INSERT_FORMAT,
    arrow_batches,
    check_identifier,
    decode_native,
    encode_insert,
    map_engine_error,
    memory_settings,
    merged_settings,
    normalise_params,
    normalise_rows,
    rows_to_columns,
)
from libs.clickhouse.port import InsertData, Params, Row, Settings
from libs.common.errors import Unavailable

_DONE = object()


def _root_cause(exc: BaseException) -> str:
    """The innermost OS error under a driver failure ("[Errno 111] Connection refused")."""
    found: BaseException | None = exc
    seen = 0
    while found is not None and seen < 20:
        if isinstance(found, OSError) and found.strerror:
            return f"[Errno {found.errno}] {found.strerror}"
        found = found.__cause__ or found.__context__
        seen += 1
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _map(exc: BaseException) -> Exception:
    return map_engine_error(exc, connection=isinstance(exc, OperationalError | OSError))


class HttpClickHouse:
    """`ClickHouse` over clickhouse-connect, on one database."""

    def __init__(self, client: Any, database: str, max_memory_bytes: int) -> None:
        self._client = client
        self._database = database
        self._base = memory_settings(max_memory_bytes)

    @classmethod
    async def open(
        cls,
        url: str,
        database: str,
        max_memory_bytes: int,
        *,
        query_timeout_seconds: float = 300.0,
    ) -> HttpClickHouse:
        check_identifier(database)
        parts = urlsplit(url)

        def connect() -> Any:
            client = clickhouse_connect.get_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
                secure=parts.scheme == "https",
                compress=False,
                autogenerate_session_id=False,
                query_limit=0,
                connect_timeout=10,
                send_receive_timeout=query_timeout_seconds,
            )
            client.command(
                "CREATE DATABASE IF NOT EXISTS {db:Identifier}", parameters={"db": database}
            )
            client.database = database
            return client

        try:
            client = await asyncio.to_thread(connect)
        except Exception as exc:
            mapped = _map(exc)
            if isinstance(mapped, Unavailable):
                where = f"{parts.hostname or 'localhost'}:{parts.port or ''}".rstrip(":")
                raise Unavailable(
                    f"ClickHouse cannot be reached at {where}: {_root_cause(exc)}",
                    reason=mapped.reason,
                ) from exc
            raise mapped from exc
        return cls(client, database, max_memory_bytes)

    @property
    def database(self) -> str:
        return self._database

    def _kill(self, tag: str) -> None:
        """Stops the statements tagged `tag` (see `libs.clickhouse.cancel`)."""
        self._client.command(KILL_SQL, parameters={"tag": tag})

    async def query(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> list[Row]:
        values = normalise_params(params)
        merged = merged_settings(self._base, settings)
        tag = new_tag()
        merged[TAG_SETTING] = tag
        try:
            data = await stop_on_cancel(
                lambda: self._client.raw_query(
                    sql, parameters=values or None, settings=merged, fmt="Native"
                ),
                lambda: self._kill(tag),
            )
        except Exception as exc:
            raise _map(exc) from exc
        return decode_native(bytes(data))

    async def _drain(
        self, start: Callable[[], tuple[Callable[[], Any], Iterator[Any]]], tag: str
    ) -> AsyncGenerator[Any, None]:
        """The items of a blocking iterator that `start()` opens (with its close function),
        each fetched in a worker thread; driver failures mapped to domain errors; the
        statement tagged `tag` is killed when the caller is cancelled meanwhile."""
        try:
            close, items = await stop_on_cancel(start, lambda: self._kill(tag))
        except Exception as exc:
            raise _map(exc) from exc
        try:
            while True:
                try:
                    item = await stop_on_cancel(lambda: next(items, _DONE), lambda: self._kill(tag))
                except Exception as exc:
                    raise _map(exc) from exc
                if item is _DONE:
                    break
                yield item
        finally:
            with contextlib.suppress(Exception):  # a killed statement's stream may not close
                await asyncio.to_thread(close)

    async def query_stream(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncIterator[list[Row]]:
        values = normalise_params(params)
        merged = merged_settings(self._base, settings)
        tag = new_tag()
        merged[TAG_SETTING] = tag

        def start() -> tuple[Callable[[], Any], Iterator[Any]]:
            stream = self._client.query_row_block_stream(
                sql, parameters=values or None, settings=merged
            )
            context = stream.__enter__()
            return lambda: stream.__exit__(None, None, None), iter(context)

        blocks = self._drain(start, tag)
        async with contextlib.aclosing(blocks):
            async for block in blocks:
                rows = normalise_rows(cast(list[Sequence[Any]], block))
                if rows:
                    yield rows

    async def query_stream_arrow(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> AsyncGenerator[pa.RecordBatch, None]:
        values = normalise_params(params)
        merged = merged_settings(self._base, {**ARROW_SETTINGS, **(settings or {})})
        tag = new_tag()
        merged[TAG_SETTING] = tag

        def start() -> tuple[Callable[[], Any], Iterator[pa.RecordBatch]]:
            raw = self._client.raw_stream(
                sql, parameters=values or None, settings=merged, fmt="ArrowStream"
            )
            return raw.close, arrow_batches(raw)

        batches = self._drain(start, tag)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                if batch.num_rows:
                    yield batch

    async def command(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> None:
        values = normalise_params(params)
        merged = merged_settings(self._base, settings)
        try:
            await asyncio.to_thread(
                self._client.command, sql, parameters=values or None, settings=merged
            )
        except Exception as exc:
            raise _map(exc) from exc

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
        if not data.row_count:
            return
        merged = merged_settings(self._base, settings)
        try:
            await asyncio.to_thread(
                self._client.raw_insert,
                check_identifier(table),
                [check_identifier(c) for c in data.columns],
                insert_block=data.body.encode(),
                settings=merged,
                fmt=INSERT_FORMAT,
            )
        except Exception as exc:
            raise _map(exc) from exc

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
