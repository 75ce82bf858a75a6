"""Events and profiles read from JSON Lines or CSV files, for `segments ingest`.

JSON Lines: one object a line in the API's JSON form (`event_id`, `user_id`, `event_name`,
`event_time`, `properties`; profiles: `user_id`, `email`, `phone`, `display_name`, `channels`,
`test_user`, `blocked`, `properties`, `update_time`), except that a property may be a plain
JSON value: a string, a number or a boolean (`{"time_value": "..."}` for a point in time).

CSV: a header row naming the columns. The message's own fields by name (`event_id`, `user_id`,
`event_name`, `event_time`; `user_id`, `email`, `phone`, `display_name`, `test_user`,
`blocked`, `update_time`); every other column is a property, a string unless its header says
`name:number`, `name:bool` or `name:time`. An empty cell leaves the property out.

A row that cannot be read is reported with its line number and never sent.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from libs.cli.errors import UsageError
from libs.cli.files import json_lines, read_text
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as ev

M = TypeVar("M", bound=Message)
_VALUE_KINDS = {"string_value", "number_value", "bool_value", "time_value", "stringValue",
                "numberValue", "boolValue", "timeValue"}  # fmt: skip
_TYPES = ("string", "number", "bool", "time")
EVENT_FIELDS = ("event_id", "user_id", "event_name", "event_time")
PROFILE_FIELDS = (
    "user_id",
    "email",
    "phone",
    "display_name",
    "test_user",
    "blocked",
    "update_time",
)


@dataclass(frozen=True)
class Row:
    """One line of the file: the message read, or what is wrong with it."""

    line: int
    message: Any
    error: str = ""


def file_format(path: str, given: str | None) -> str:
    if given:
        return given
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise UsageError(f"cannot tell the format of {path}: name it .csv or .jsonl, or pass --format")


def _value(raw: Any, where: str) -> dm.Value:
    if isinstance(raw, bool):
        return dm.Value(bool_value=raw)
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError(f"{where}: numbers must be finite")
        return dm.Value(number_value=float(raw))
    if isinstance(raw, str):
        return dm.Value(string_value=raw)
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in _VALUE_KINDS:
        return json_format.ParseDict(raw, dm.Value())
    raise ValueError(
        f'{where}: a property is a string, a number, a boolean or {{"time_value": ...}}'
    )


def _from_json(data: Any, message: M) -> M:
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    data = dict(data)
    properties = data.pop("properties", None) or {}
    if not isinstance(properties, dict):
        raise ValueError("properties must be an object")
    json_format.ParseDict(data, message)
    target: Any = getattr(message, "properties")  # noqa: B009 - both message types have it
    for key, raw in properties.items():
        target[key].CopyFrom(_value(raw, f"properties.{key}"))
    return message


def _typed(raw: str, kind: str, column: str) -> dm.Value:
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{column}: {raw!r} is not a number") from None
        return _value(number, column)
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{column}: {raw!r} is not true or false")
        return dm.Value(bool_value=lowered in ("true", "1", "yes"))
    if kind == "time":
        return json_format.ParseDict({"time_value": raw}, dm.Value())
    return dm.Value(string_value=raw)


def _columns(header: list[str], own: tuple[str, ...], path: str) -> list[tuple[str, str, bool]]:
    """(name, type, is a field of the message) of each CSV column."""
    columns = []
    for cell in header:
        name, _, kind = cell.strip().partition(":")
        kind = kind.strip().lower() or "string"
        if kind not in _TYPES:
            raise UsageError(f"{path}: column {cell!r}: type must be one of {', '.join(_TYPES)}")
        columns.append((name.strip(), kind, name.strip() in own))
    return columns


def _from_csv(
    path: str, own: tuple[str, ...], required: tuple[str, ...], make: type[M]
) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = next(reader, None)
    if header is None:
        return
    columns = _columns(header, own, path)
    missing = [r for r in required if r not in {name for name, _, _ in columns}]
    if missing:
        raise UsageError(f"{path}: the header row lacks {', '.join(missing)}")
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            yield Row(line, None, f"{len(cells)} cells where the header has {len(columns)}")
            continue
        try:
            fields: dict[str, Any] = {}
            properties: dict[str, dm.Value] = {}
            for (name, kind, is_field), cell in zip(columns, cells, strict=True):
                if cell == "":
                    continue
                if is_field:
                    fields[name] = (
                        cell.strip().lower() in ("true", "1", "yes")
                        if name in ("test_user", "blocked")
                        else cell
                    )
                else:
                    properties[name] = _typed(cell, kind, name)
            message = json_format.ParseDict(fields, make())
            target: Any = getattr(message, "properties")  # noqa: B009
            for key, value in properties.items():
                target[key].CopyFrom(value)
        except (ValueError, json_format.ParseError) as exc:
            yield Row(line, None, str(exc))
            continue
        yield Row(line, message)


def _from_jsonl(path: str, make: type[M]) -> Iterator[Row]:
    for line, data, problem in json_lines(path):
        if problem:
            yield Row(line, None, problem)
            continue
        try:
            yield Row(line, _from_json(data, make()))
        except (ValueError, json_format.ParseError) as exc:
            yield Row(line, None, str(exc))


def read_events(path: str, fmt: str) -> Iterator[Row]:
    if fmt == "csv":
        return _from_csv(path, EVENT_FIELDS, EVENT_FIELDS, ev.Event)
    return _from_jsonl(path, ev.Event)


def read_profiles(path: str, fmt: str) -> Iterator[Row]:
    if fmt == "csv":
        return _from_csv(path, PROFILE_FIELDS, ("user_id",), ev.Profile)
    return _from_jsonl(path, ev.Profile)
