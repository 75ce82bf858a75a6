"""Events from IngestEvents messages: decoded and validated one message at a time; what the
error of a stream failing part-way says it stored.

This is the per-event hot path of ingest, so it reads the protobuf fields directly rather than
through the general converters of `libs.model.definition_proto` (same results and paths).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

from libs.common.errors import DomainError
from libs.model.definition import Scalar
from segments.v1 import definition_model_pb2 as mpb
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.domain.records import Event, EventBatch, event_problems

MAX_ERRORS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# what `datetime` can hold; a Timestamp outside it (or with nanos outside 0..999,999,999) is
# read as the nearest end, which validation then rejects as out of range
_MIN_SECONDS = int((datetime.min.replace(tzinfo=UTC) - _EPOCH).total_seconds())
_MAX_SECONDS = int((datetime.max.replace(tzinfo=UTC) - _EPOCH).total_seconds())


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    """The Timestamp as an aware UTC datetime, truncated to microseconds."""
    seconds, nanos = ts.seconds, ts.nanos
    if not 0 <= nanos < 1_000_000_000 or seconds > _MAX_SECONDS:
        return datetime.max.replace(tzinfo=UTC)
    if seconds < _MIN_SECONDS:
        return datetime.min.replace(tzinfo=UTC)
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def properties(
    values: Mapping[str, mpb.Value],
) -> tuple[dict[str, Scalar], list[tuple[str, str]]]:
    """The properties that are set, and a (field, description) problem for each that is not."""
    props: dict[str, Scalar] = {}
    problems: list[tuple[str, str]] = []
    for key in values:  # faster than .items() on a protobuf map
        value = values[key]
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            props[key] = value.string_value
        elif kind == "number_value":
            props[key] = value.number_value
        elif kind == "bool_value":
            props[key] = value.bool_value
        elif kind == "time_value":
            props[key] = to_datetime(value.time_value)
        else:
            problems.append((f"properties[{key!r}]", "exactly one kind of kind must be set"))
    return props, problems


def valid_events(
    msgs: Sequence[pb.Event], first_index: int, out: pb.IngestEventsResponse, good: EventBatch
) -> None:
    """Appends the events that can be stored to `good`. Each other event counts as rejected in
    `out`, and its problems are added to `out.errors` (up to MAX_ERRORS) with its index in the
    whole stream."""
    for index, msg in enumerate(msgs, first_index):
        props, problems = properties(msg.properties)
        when = to_datetime(msg.event_time) if msg.HasField("event_time") else None
        event = Event(msg.event_id, msg.user_id, msg.event_name, when, props)
        problems += event_problems(event)
        if not problems:
            good.append(event)
            continue
        out.rejected_count += 1
        for field, description in problems:
            if len(out.errors) < MAX_ERRORS:
                out.errors.append(pb.RowError(index=index, field=field, description=description))


def say_what_was_stored(error: DomainError, out: pb.IngestEventsResponse) -> None:
    """Adds to the error of a failed ingest stream how many of its events were stored."""
    stored = out.accepted_count + out.duplicate_count
    error.metadata.update(
        accepted_count=str(out.accepted_count),
        duplicate_count=str(out.duplicate_count),
        rejected_count=str(out.rejected_count),
    )
    error.message = (
        f"{error.message} (before this failure {stored} events of the stream were stored: "
        f"{out.accepted_count} new, {out.duplicate_count} already there; the rest were not)"
    )
