"""Rows of the live tables to records and back: millisecond times and trigger events as
JSON (each property tagged with its type, so a string "30" stays a string)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.model.definition import Scalar
from services.evaluator.domain.live_entries import Entry, LiveEvent, Timer

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch, rounded down (times are stored at that precision)."""
    return int((value.astimezone(UTC) - _EPOCH) // _MS)


def from_ms(value: int) -> datetime:
    return _EPOCH + value * _MS


def _value_json(value: Scalar) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, datetime):
        return {"t": to_ms(value)}
    if isinstance(value, int | float):
        return {"n": float(value)}
    return {"s": value}


def _value(tagged: dict[str, Any]) -> Scalar:
    if "t" in tagged:
        return from_ms(int(tagged["t"]))
    if "n" in tagged:
        return float(tagged["n"])
    if "b" in tagged:
        return bool(tagged["b"])
    return str(tagged["s"])


def event_to_json(event: LiveEvent | None) -> str | None:
    if event is None:
        return None
    return json.dumps(
        {
            "id": event.event_id,
            "user": event.user_id,
            "name": event.event_name,
            "time": to_ms(event.event_time),
            "props": {k: _value_json(v) for k, v in event.properties.items()},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def event_from_json(text: str | None) -> LiveEvent | None:
    if not text:
        return None
    data = json.loads(text)
    return LiveEvent(
        data["id"],
        data["user"],
        data["name"],
        from_ms(int(data["time"])),
        {k: _value(v) for k, v in data["props"].items()},
    )


def segment_id_of(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def segment_name(project: str, segment_id: str) -> str:
    return f"projects/{project}/segments/{segment_id}"


def entry_from_row(row: Any) -> Entry:
    return Entry(
        cursor=int(row.cursor),
        entry_id=row.entry_id,
        project=row.project,
        segment=segment_name(row.project, row.segment_id),
        user_id=row.user_id,
        entry_time=from_ms(int(row.entry_ms)),
        create_time=from_ms(int(row.create_ms)),
        late=bool(row.late),
        event=event_from_json(row.event_json),
    )


def timer_from_row(row: Any) -> Timer:
    return Timer(
        timer_id=row.timer_id,
        project=row.project,
        segment=segment_name(row.project, row.segment_id),
        user_id=row.user_id,
        event_id=row.event_id,
        a_time=from_ms(int(row.a_ms)),
        due=from_ms(int(row.due_ms)),
        trigger_key=row.trigger_key,
        event_json=row.event_json,
    )
