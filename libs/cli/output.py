"""Everything the client commands print: tables and key-value views for people (rich), the
API's JSON for scripts (`-o json`: the proto3 JSON mapping with the proto's field names), and
progress bars on stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

#: Width used when stdout is not a terminal (files, pipes), so that tables are not folded.
PIPE_WIDTH = 200


def _console(stream: Any) -> Console:
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, soft_wrap=False, highlight=False)


def message_dict(message: Message) -> dict[str, Any]:
    """A message as the API's JSON object (proto field names, every field shown)."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def compact_dict(message: Message) -> dict[str, Any]:
    """A message as the API's JSON object without its unset fields (for people)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def timestamp_text(stamp: Timestamp) -> str:
    """ISO 8601 in UTC, "" when unset."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    when = stamp.ToDatetime(tzinfo=UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def enum_text(value: str, prefix: str) -> str:
    """ "PAST_BEHAVIOR" of "SEGMENT_TYPE_PAST_BEHAVIOR"."""
    return value.removeprefix(prefix)


class Output:
    """Renders results in the chosen format: "table" or "json"."""

    def __init__(self, fmt: str = "table") -> None:
        self.json = fmt == "json"
        self.out = _console(sys.stdout)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    def message(self, message: Message) -> None:
        """The API's JSON of `message` (scripts)."""
        print(json.dumps(message_dict(message), indent=2, ensure_ascii=False))

    def data(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False, default=str))

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
    ) -> None:
        table = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.out.print(table)

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """A key-value view: one "key: value" line each, nested values as YAML below."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, value in pairs:
            if isinstance(value, dict | list):
                value = yaml_text(value).rstrip()
            table.add_row(key, "" if value is None else str(value))
        self.out.print(table)

    def line(self, text: str) -> None:
        self.out.print(text, markup=False)

    def note(self, text: str) -> None:
        """A remark for people, on stderr (kept out of piped output)."""
        self.err.print(text, markup=False)

    def progress(self, description: str, total: float | None = None) -> Progress:
        """A progress bar on stderr (hidden when stderr is not a terminal)."""
        columns = [
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        progress = Progress(*columns, console=self.err, transient=False)
        progress.add_task(description, total=total)
        return progress


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def yaml_text(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def now_utc() -> datetime:
    return datetime.now(UTC)
