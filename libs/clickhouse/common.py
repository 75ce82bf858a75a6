"""Pieces both adapters share: parameter binding, settings, insert encoding, result decoding and
error mapping. Keeping them here is what makes the two adapters run exactly the same SQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver import ctypes as ch_ctypes
from clickhouse_connect.driver.binding import bind_query
from clickhouse_connect.driver.query import QueryContext, QueryResult
from clickhouse_connect.driver.transform import NativeTransform

from libs.clickhouse.port import InsertData, Params, Row, Settings
from libs.common.errors import (
    DeadlineExceeded,
    DomainError,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SETTING_VALUE = re.compile(r"^[A-Za-z0-9_.\-]*$")
_CODE = re.compile(r"Code: (\d+)")

# ClickHouse error codes grouped by what a caller can do about them.
_MEMORY_CODES = {241, 173}  # MEMORY_LIMIT_EXCEEDED, CANNOT_ALLOCATE_MEMORY
_TIMEOUT_CODES = {159, 160, 209, 394}  # TIMEOUT_EXCEEDED, TOO_SLOW, SOCKET_TIMEOUT, CANCELLED
_UNAVAILABLE_CODES = {202, 210, 999}  # TOO_MANY_SIMULTANEOUS_QUERIES, NETWORK_ERROR, KEEPER
_TOO_BIG_CODES = {158, 396, 307}  # TOO_MANY_ROWS, TOO_MANY_ROWS_OR_BYTES, TOO_MANY_BYTES


def memory_settings(max_memory_bytes: int) -> dict[str, int | float | str]:
    """Memory cap for one statement; GROUP BY and ORDER BY spill to disk past half of it."""
    half = max(max_memory_bytes // 2, 1)
    return {
        "max_memory_usage": max_memory_bytes,
        "max_bytes_before_external_group_by": half,
        "max_bytes_before_external_sort": half,
    }


def check_identifier(name: str) -> str:
    """Table and column names are code constants; refuse anything that is not a plain word."""
    if not _IDENTIFIER.match(name):
        raise InvalidArgument.field("identifier", f"not a plain SQL identifier: {name!r}")
    return name


def check_settings(settings: Settings) -> dict[str, int | float | str]:
    checked: dict[str, int | float | str] = {}
    for key, value in settings.items():
        check_identifier(key)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, str) and not _SETTING_VALUE.match(value):
            raise InvalidArgument.field("settings", f"unsupported value for setting {key}")
        checked[key] = value
    return checked


def render_setting(value: int | float | str) -> str:
    """A setting value as SQL text (only plain words and numbers pass `check_settings`)."""
    if isinstance(value, str):
        return "'" + value + "'"
    return repr(value)


def _normalise_param(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgument.field("params", "datetime parameters must be timezone-aware")
        return value.astimezone(UTC)
    if isinstance(value, list | tuple):
        return [_normalise_param(v) for v in value]
    return value


def normalise_params(params: Params | None) -> dict[str, Any]:
    return {k: _normalise_param(v) for k, v in (params or {}).items()}


def bind(sql: str, params: Params | None) -> tuple[str, dict[str, str]]:
    """Binds `{name:Type}` parameters the way clickhouse-connect sends them to a server:
    returns the SQL unchanged and the escaped text value of each parameter (no `param_` prefix).
    """
    values = normalise_params(params)
    if not values:
        return sql, {}
    for name in values:
        if "{" + name + ":" not in sql:
            raise Internal(f"query parameter {name!r} has no placeholder in the statement")
    strings = {k: v for k, v in values.items() if _is_strings(v)}
    rest = {k: v for k, v in values.items() if k not in strings}
    bound_sql, bound = bind_query(sql, rest, UTC)
    if not isinstance(bound_sql, str):
        raise Internal("binary query parameters are not supported")
    out = {k.removeprefix("param_"): v for k, v in bound.items()}
    out.update((k, format_strings(v)) for k, v in strings.items())
    return bound_sql, out


def _is_strings(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and set(map(type, value)) == {str}


# clickhouse-connect's escaping of a string in a bound value (`binding.escape_str`)
_STRING_ESCAPES = str.maketrans({c: "\\" + c for c in ("\\", "'", "`", "\t", "\n")})


def format_strings(value: str | Sequence[str]) -> str:
    """The bound text of a string or a list of strings, exactly as clickhouse-connect formats it
    (`binding.format_bind_value`), without its character-by-character loop: ingest binds
    thousands of event ids per batch."""
    if isinstance(value, str):
        return value.translate(_STRING_ESCAPES)
    return "[" + ", ".join(["'" + v.translate(_STRING_ESCAPES) + "'" for v in value]) + "]"


def time_text(value: datetime) -> str:
    """`YYYY-MM-DD hh:mm:ss.ffffff` in UTC: how inserts encode a datetime for a DateTime64
    column (a caller may pass this text in place of the datetime)."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise InvalidArgument.field("rows", "datetime values must be timezone-aware")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _json_value(value: Any) -> Any:
    """A value as JSON data: booleans as 0/1, times as UTC text, containers converted inside."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"cannot insert a value of type {type(value).__name__}")


_JSON_AS_IS = frozenset({str, int, float, type(None)})


def _json_column(values: Sequence[Any]) -> list[Any]:
    """One column as JSON data. Columns of strings and numbers (and maps of them) pass as they
    are; only a column holding anything else is converted value by value."""
    column = values if isinstance(values, list) else list(values)
    kinds = set(map(type, column))
    if kinds <= _JSON_AS_IS:
        return column
    if kinds == {datetime}:
        return [time_text(v) for v in column]
    if kinds == {dict} and (
        not any(column) or {type(v) for d in column for v in d.values()} <= _JSON_AS_IS
    ):
        return column
    return [_json_value(v) for v in column]


def encode_columns(columns: Sequence[str], data: Sequence[Sequence[Any]]) -> str:
    """Column-wise values as JSONCompactColumns text. `data[i]` holds the values of
    `columns[i]`; empty when there are no rows."""
    if len(data) != len(columns):
        raise Internal(f"{len(data)} value columns for {len(columns)} columns")
    if len({len(c) for c in data}) > 1:
        raise Internal("value columns of different lengths")
    if not data or not len(data[0]):
        return ""
    try:
        return json.dumps(
            [_json_column(c) for c in data],
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        )
    except ValueError as exc:  # NaN or infinity: ClickHouse JSON has no spelling for them
        raise InvalidArgument.field("rows", "numbers must be finite") from exc


def encode_insert(columns: Sequence[str], data: Sequence[Sequence[Any]]) -> InsertData:
    """Column-wise values (`data[i]` holds every row's value of `columns[i]`) as the data part
    of an INSERT, which the engine parses as data, never as SQL."""
    body = encode_columns([check_identifier(c) for c in columns], data)
    return InsertData(tuple(columns), body, len(data[0]) if body else 0)


def rows_to_columns(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    for row in rows:
        if len(row) != len(columns):
            raise Internal(f"row has {len(row)} values for {len(columns)} columns")
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in columns]


INSERT_FORMAT = "JSONCompactColumns"


def insert_statement(table: str, columns: Sequence[str]) -> str:
    cols = ", ".join(f"`{check_identifier(c)}`" for c in columns)
    return f"INSERT INTO `{check_identifier(table)}` ({cols}) FORMAT {INSERT_FORMAT}"


def normalise_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: normalise_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(normalise_value(v) for v in value)
    return value


def normalise_rows(rows: Iterable[Sequence[Any]]) -> list[Row]:
    return [tuple(normalise_value(v) for v in row) for row in rows]


class _Chunks:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.gen: Iterator[bytes] = iter(chunks)

    def close(self) -> None:
        return None


def _parse_native(data: bytes) -> QueryResult:
    # the buffer class the driver itself uses (its C implementation when available)
    buffer = ch_ctypes.RespBuffCls(_Chunks([data]))  # type: ignore[no-untyped-call]
    result = NativeTransform.parse_response(buffer, QueryContext())
    if not isinstance(result, QueryResult):
        raise Internal("unexpected columnar result from the Native decoder")
    return result


def decode_native(data: bytes) -> list[Row]:
    """Decodes ClickHouse Native-format bytes with clickhouse-connect's own decoder, so that the
    embedded adapter returns exactly the Python types the HTTP adapter does."""
    if not data:
        return []
    return normalise_rows(_parse_native(data).result_rows)


#: Settings of an ArrowStream result: String columns as utf8 (not binary).
ARROW_SETTINGS: dict[str, int | float | str] = {"output_format_arrow_string_as_string": 1}


def arrow_batches(source: Any) -> Iterator[pa.RecordBatch]:
    """The record batches of ArrowStream output read from `source` (bytes or a binary file):
    one IPC stream (a server), or several back to back (the embedded engine writes one per
    block)."""
    stream = pa.BufferReader(source) if isinstance(source, bytes) else source
    while True:
        try:
            reader = pa.ipc.open_stream(stream)
        except (pa.ArrowInvalid, EOFError):  # nothing left: no further stream begins
            return
        yield from reader


#: The retry delay an UNAVAILABLE answer suggests when ClickHouse cannot be reached.
RETRY_AFTER_SECONDS = 1.0


def map_engine_error(exc: BaseException, *, connection: bool = False) -> DomainError:
    """Maps an engine or driver failure to the domain error a caller can act on."""
    if isinstance(exc, DomainError):
        return exc
    text = str(exc)
    match = _CODE.search(text)
    code = int(match.group(1)) if match else None
    short = text.strip().splitlines()[0][:500] if text.strip() else type(exc).__name__
    if code in _MEMORY_CODES:
        return ResourceExhausted(
            f"the query needs more memory than allowed: {short}", reason="QUERY_MEMORY_LIMIT"
        )
    if code in _TOO_BIG_CODES:
        return ResourceExhausted(f"the query reads too much: {short}", reason="QUERY_TOO_BIG")
    if code in _TIMEOUT_CODES:
        return DeadlineExceeded(f"the query took too long: {short}", reason="QUERY_TIMEOUT")
    if code in _UNAVAILABLE_CODES or (code is None and connection):
        return Unavailable(
            f"ClickHouse is unavailable: {short}",
            reason="CLICKHOUSE_UNAVAILABLE",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    return Internal(f"ClickHouse failed: {short}", reason="CLICKHOUSE_ERROR")


def merged_settings(
    base: Mapping[str, int | float | str], extra: Settings | None
) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    if extra:
        merged.update(check_settings(extra))
    return merged
