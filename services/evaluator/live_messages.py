"""Conversion of live entries and live windows between `segments.v1` messages and records."""

from __future__ import annotations

from typing import Any

from libs.model.definition import TimeWindow
from libs.model.definition_proto import (
    datetime_to_timestamp,
    value_to_proto,
    window_from_proto,
)
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.domain.live_entries import Entry, LiveEvent
from services.evaluator.live.reading import BucketCount


def _event(event: LiveEvent) -> pb.Event:
    out = pb.Event(
        event_id=event.event_id,
        user_id=event.user_id,
        event_name=event.event_name,
        event_time=datetime_to_timestamp(event.event_time),
    )
    for key, value in event.properties.items():
        out.properties[key].CopyFrom(value_to_proto(value))
    return out


def entry_to_pb(entry: Entry) -> pb.StreamLiveEntriesResponse:
    """A stream message holding one entry."""
    return pb.StreamLiveEntriesResponse(entry=live_entry_to_pb(entry))


def live_entry_to_pb(entry: Entry) -> pb.LiveEntry:
    live = pb.LiveEntry(
        segment=entry.segment,
        user_id=entry.user_id,
        entry_time=datetime_to_timestamp(entry.entry_time),
        entry_id=entry.entry_id,
        cursor=str(entry.cursor),
        create_time=datetime_to_timestamp(entry.create_time),
        late=entry.late,
    )
    if entry.event is not None:
        live.trigger_event.CopyFrom(_event(entry.event))
    return live


def bucket_to_pb(count: BucketCount) -> pb.LiveEntryCount:
    return pb.LiveEntryCount(
        bucket_start=datetime_to_timestamp(count.start),
        entered_count=count.entered,
        active_count=count.active,
    )


def live_window(request: Any) -> TimeWindow | None:
    """The request's `live_window`, or None when unset."""
    if not request.HasField("live_window"):
        return None
    return window_from_proto(request.live_window, "live_window")
