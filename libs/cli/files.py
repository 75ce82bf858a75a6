"""Reading what the client commands are given: segment and definition files (YAML or JSON, in
the API's JSON form), times and dates on the command line, id lists.

Problems are `UsageError`s that name the file (and line) and what to fix; nothing is sent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2

from libs.cli.errors import UsageError

M = TypeVar("M", bound=Message)


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: "2026-05-01" stays a string, as the API's JSON has it."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_text(path: str) -> str:
    """The UTF-8 text of `path` ("-": standard input)."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def read_document(path: str) -> dict[str, Any]:
    """A YAML or JSON file holding one object (JSON is YAML)."""
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{path}: not valid YAML or JSON{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected an object (key: value pairs) at the top")
    return data


def to_message(data: dict[str, Any], message: M, where: str) -> M:
    """`data` (the API's JSON form, proto or JSON field names, enum names) parsed into
    `message`; an unknown field or a wrong value is a UsageError naming `where`."""
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as exc:
        raise UsageError(f"{where}: {exc}") from exc
    return message


def timestamp(text: str, option: str) -> Timestamp:
    """An instant from ISO 8601 ("2026-07-01T00:00:00Z"; a bare date is midnight UTC)."""
    try:
        if len(text) == 10:
            when = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"{option}: {text!r} is not an ISO 8601 time such as 2026-07-01T00:00:00Z"
        ) from exc
    if when.tzinfo is None:
        raise UsageError(f"{option}: {text!r} needs a time zone, such as Z or +02:00")
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp


def day(text: str, option: str) -> date_pb2.Date:
    """A calendar day from YYYY-MM-DD."""
    try:
        parsed = date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {text!r} is not a date such as 2026-06-30") from exc
    return date_pb2.Date(year=parsed.year, month=parsed.month, day=parsed.day)


def date_text(value: date_pb2.Date) -> str:
    if not value.year:
        return ""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def read_ids(path: str) -> list[str]:
    """User ids, one per line (blank lines and surrounding spaces ignored)."""
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def json_lines(path: str) -> Iterator[tuple[int, Any, str]]:
    """(line number, object, "") of each non-blank line of a JSON Lines file; a line that is
    not JSON gives (line number, None, what is wrong)."""
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), ""
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON: {exc.msg} (column {exc.colno})"
