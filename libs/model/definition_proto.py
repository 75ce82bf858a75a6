"""Conversion of `segments.v1` definition messages into `libs.model.definition`, and of the
shared value types (timestamps, durations, dates, property values) both ways. The opposite
direction for definitions is `libs.model.definition_to_proto`.

`definition_from_proto` checks structure only (a oneof that must be set, an enum left
UNSPECIFIED) and reports it as INVALID_ARGUMENT with the field path; the meaning (ranges,
value types, limits, references) is checked by the definition service's validator.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import duration_pb2, timestamp_pb2
from google.type import date_pb2

from libs.common.errors import InvalidArgument
from libs.model import definition as m
from segments.v1 import definition_model_pb2 as pb

E = TypeVar("E", bound=enum.Enum)


def _enum(model_enum: type[E], pb_enum: Any, number: int, path: str, prefix: str) -> E:
    if number == 0:
        raise InvalidArgument.field(path, "must be set (it is UNSPECIFIED)")
    try:
        name = pb_enum.Name(number)
    except ValueError as exc:
        raise InvalidArgument.field(path, f"unknown value {number}") from exc
    result: E = model_enum(name.removeprefix(prefix))
    return result


def _require(msg: Any, field: str, path: str) -> None:
    if not msg.HasField(field):
        raise InvalidArgument.field(f"{path}.{field}", "is required")


def _oneof(msg: Any, group: str, path: str) -> str:
    which = msg.WhichOneof(group)
    if which is None:
        raise InvalidArgument.field(path, f"exactly one kind of {group} must be set")
    return str(which)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_SECONDS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1)
_MAX_SECONDS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1)
#: What a Duration may hold (the protobuf contract: about 10,000 years either way).
_MAX_DURATION_SECONDS = 315_576_000_000


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp, path: str = "") -> datetime:
    """The Timestamp as an aware UTC datetime (microseconds); a Timestamp that no datetime can
    hold (nanos outside 0..999,999,999, a year outside 1..9999) is INVALID_ARGUMENT at `path`.
    Whether the instant is in the supported range is the caller's rule (`instant_from_proto`)."""
    if not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument.field(path, "nanos must be 0 to 999,999,999")
    if not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS:
        raise InvalidArgument.field(path, f"must lie {m.SUPPORTED_TIME_RANGE}")
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def instant_from_proto(ts: timestamp_pb2.Timestamp, path: str) -> datetime:
    """A Timestamp of a request, in the supported range (where events can be), or
    INVALID_ARGUMENT naming `path` and the range."""
    value = timestamp_to_datetime(ts, path)
    if not m.EARLIEST_TIME <= value < m.LATEST_TIME:
        raise InvalidArgument.field(path, f"must lie {m.SUPPORTED_TIME_RANGE}")
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """The instant as a Timestamp (a naive datetime is taken as the machine's local time)."""
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    delta = value - _EPOCH  # exact integer arithmetic, unlike Timestamp.FromDatetime's
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000
    )


def duration_to_timedelta(d: duration_pb2.Duration, path: str = "") -> timedelta:
    """The Duration as a timedelta; one the protobuf contract does not allow (nanos outside
    -999,999,999..999,999,999 or of the other sign than seconds, about 10,000 years or more)
    is INVALID_ARGUMENT at `path`."""
    seconds, nanos = d.seconds, d.nanos
    if abs(nanos) >= 1_000_000_000 or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        raise InvalidArgument.field(
            path, "nanos must be -999,999,999 to 999,999,999 and of the sign of seconds"
        )
    if abs(seconds) > _MAX_DURATION_SECONDS:
        raise InvalidArgument.field(path, "must be shorter than 10,000 years")
    return timedelta(seconds=seconds, microseconds=nanos // 1000)


def timedelta_to_duration(value: timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(value)
    return d


def date_from_proto(d: date_pb2.Date, path: str) -> date:
    try:
        return date(d.year, d.month, d.day)
    except ValueError as exc:
        raise InvalidArgument.field(path, f"not a valid calendar date: {exc}") from exc


def date_to_proto(value: date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


# --- from proto -----------------------------------------------------------------------------


def value_from_proto(v: pb.Value, path: str) -> m.Scalar:
    kind = _oneof(v, "kind", path)
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        return float(v.number_value)
    if kind == "bool_value":
        return bool(v.bool_value)
    return timestamp_to_datetime(v.time_value, f"{path}.time_value")


def _offset(o: pb.RelativeOffset, path: str) -> m.RelativeOffset:
    unit = _enum(m.TimeUnit, pb.TimeUnit, o.unit, f"{path}.unit", "TIME_UNIT_")
    return m.RelativeOffset(amount=o.amount, unit=unit)


def _comparison(c: pb.Comparison, path: str) -> m.Comparison:
    op = _enum(
        m.ComparisonOperator,
        pb.ComparisonOperator,
        c.operator,
        f"{path}.operator",
        "COMPARISON_OPERATOR_",
    )
    values = tuple(value_from_proto(v, f"{path}.values[{i}]") for i, v in enumerate(c.values))
    relative = _offset(c.relative, f"{path}.relative") if c.HasField("relative") else None
    return m.Comparison(operator=op, values=values, relative=relative)


def _filter(f: pb.PropertyFilter, path: str) -> m.PropertyFilter:
    _require(f, "comparison", path)
    return m.PropertyFilter(
        property=f.property, comparison=_comparison(f.comparison, f"{path}.comparison")
    )


def _event(e: pb.EventSpec, path: str) -> m.EventSpec:
    return m.EventSpec(
        event_name=e.event_name,
        filters=tuple(_filter(f, f"{path}.filters[{i}]") for i, f in enumerate(e.filters)),
    )


def _point(p: pb.TimePoint, path: str) -> m.TimePoint:
    kind = _oneof(p, "kind", path)
    if kind == "instant":
        return m.TimePoint(instant=timestamp_to_datetime(p.instant, f"{path}.instant"))
    return m.TimePoint(date=date_from_proto(p.date, f"{path}.date"))


def _window(w: pb.TimeWindow, path: str) -> m.TimeWindow:
    kind = _oneof(w, "kind", path)
    if kind == "last":
        return m.LastWindow(offset=_offset(w.last, f"{path}.last"))
    if kind == "today":
        return m.TodayWindow()
    if kind == "yesterday":
        return m.YesterdayWindow()
    if kind == "range":
        _require(w.range, "start", f"{path}.range")
        _require(w.range, "end", f"{path}.range")
        return m.RangeWindow(
            start=_point(w.range.start, f"{path}.range.start"),
            end=_point(w.range.end, f"{path}.range.end"),
        )
    if kind == "since":
        return m.SinceWindow(start=_point(w.since, f"{path}.since"))
    if kind == "before":
        return m.BeforeWindow(end=_point(w.before, f"{path}.before"))
    return m.AllTimeWindow()


def window_from_proto(w: pb.TimeWindow, path: str) -> m.TimeWindow:
    """Convert a TimeWindow message (structural errors raise InvalidArgument with `path`)."""
    return _window(w, path)


def _required_window(msg: Any, path: str) -> m.TimeWindow:
    _require(msg, "window", path)
    return _window(msg.window, f"{path}.window")


def _required_event(msg: Any, field: str, path: str) -> m.EventSpec:
    _require(msg, field, path)
    return _event(getattr(msg, field), f"{path}.{field}")


def _aggregate(a: pb.Aggregate, path: str) -> m.Aggregate:
    return m.Aggregate(
        function=_enum(
            m.AggregateFunction,
            pb.AggregateFunction,
            a.function,
            f"{path}.function",
            "AGGREGATE_FUNCTION_",
        ),
        operator=_enum(
            m.ComparisonOperator,
            pb.ComparisonOperator,
            a.operator,
            f"{path}.operator",
            "COMPARISON_OPERATOR_",
        ),
        values=tuple(float(v) for v in a.values),
        property=a.property,
        include_non_performers=a.include_non_performers,
    )


def _condition(n: pb.Node, kind: str, path: str) -> m.Condition:
    p = f"{path}.{kind}"
    if kind == "did_event":
        c = n.did_event
        return m.DidEvent(
            event=_required_event(c, "event", p),
            window=_required_window(c, p),
            aggregate=_aggregate(c.aggregate, f"{p}.aggregate")
            if c.HasField("aggregate")
            else None,
        )
    if kind == "did_not_event":
        c2 = n.did_not_event
        return m.DidNotEvent(event=_required_event(c2, "event", p), window=_required_window(c2, p))
    if kind == "inaction":
        c3 = n.inaction
        return m.Inaction(
            did=_required_event(c3, "did", p),
            did_not=_required_event(c3, "did_not", p),
            window=_required_window(c3, p),
            within=duration_to_timedelta(c3.within, f"{p}.within")
            if c3.HasField("within")
            else None,
        )
    if kind == "first_time":
        c4 = n.first_time
        return m.FirstTime(event=_required_event(c4, "event", p), window=_required_window(c4, p))
    if kind == "sequence":
        c5 = n.sequence
        return m.Sequence(
            steps=tuple(_event(s, f"{p}.steps[{i}]") for i, s in enumerate(c5.steps)),
            window=_required_window(c5, p),
            within=duration_to_timedelta(c5.within, f"{p}.within")
            if c5.HasField("within")
            else None,
        )
    if kind == "user_property":
        return m.UserProperty(filter=_filter(n.user_property, p))
    return m.InSegment(segment=n.in_segment.segment, negate=n.in_segment.negate)


def node_from_proto(n: pb.Node, path: str) -> m.Node:
    kind = n.WhichOneof("condition")
    operator = (
        None
        if n.operator == pb.BOOLEAN_OPERATOR_UNSPECIFIED
        else _enum(
            m.BooleanOperator,
            pb.BooleanOperator,
            n.operator,
            f"{path}.operator",
            "BOOLEAN_OPERATOR_",
        )
    )
    if kind is not None and (operator is not None or len(n.children) > 0):
        raise InvalidArgument.field(
            path, "a node is either a group (operator + children) or a leaf (one condition)"
        )
    if kind is None and operator is None:
        raise InvalidArgument.field(
            path, "set either a condition (leaf) or an operator with children (group)"
        )
    children = tuple(node_from_proto(c, f"{path}.children[{i}]") for i, c in enumerate(n.children))
    condition = _condition(n, kind, path) if kind is not None else None
    return m.Node(operator=operator, children=children, condition=condition)


def past_behavior_from_proto(q: pb.PastBehaviorQuery, path: str) -> m.PastBehaviorQuery:
    return m.PastBehaviorQuery(
        root=node_from_proto(q.root, f"{path}.root") if q.HasField("root") else None,
        included_segments=tuple(q.included_segments),
        excluded_segments=tuple(q.excluded_segments),
    )


def _url(u: pb.UrlMatch, path: str) -> m.UrlMatch:
    return m.UrlMatch(
        operator=_enum(
            m.UrlMatchOperator,
            pb.UrlMatchOperator,
            u.operator,
            f"{path}.operator",
            "URL_MATCH_OPERATOR_",
        ),
        pattern=u.pattern,
    )


def _trigger(t: pb.LiveTrigger, path: str) -> m.LiveTrigger:
    kind = _oneof(t, "kind", path)
    p = f"{path}.{kind}"
    if kind == "single_action":
        return m.SingleActionTrigger(event=_event(t.single_action, p))
    if kind == "inaction_within":
        c = t.inaction_within
        _require(c, "within", p)
        return m.InactionWithinTrigger(
            did=_required_event(c, "did", p),
            did_not=_required_event(c, "did_not", p),
            within=duration_to_timedelta(c.within, f"{p}.within"),
        )
    if kind == "on_date":
        return m.DateTrigger(property=t.on_date.property, days_from_today=t.on_date.days_from_today)
    if kind == "page_visit":
        return m.PageVisitTrigger(url=_url(t.page_visit, p))
    if kind == "referrer":
        which = _oneof(t.referrer, "kind", p)
        match = _url(getattr(t.referrer, which), f"{p}.{which}")
        if which == "referrer_url":
            return m.ReferrerTrigger(referrer_url=match)
        return m.ReferrerTrigger(campaign=match)
    pc = t.page_count
    scope = pc.WhichOneof("scope")
    return m.PageCountTrigger(
        pages=pc.pages,
        window=_offset(pc.window, f"{p}.window") if scope == "window" else None,
    )


def _reentry(r: pb.ReentryPolicy, path: str) -> m.Reentry:
    if r.mode == pb.REENTRY_MODE_UNSPECIFIED:
        mode = m.ReentryMode.EVERY_OCCURRENCE
    else:
        mode = _enum(m.ReentryMode, pb.ReentryMode, r.mode, f"{path}.mode", "REENTRY_MODE_")
    cooldown = (
        duration_to_timedelta(r.cooldown, f"{path}.cooldown") if r.HasField("cooldown") else None
    )
    return m.Reentry(mode=mode, cooldown=cooldown)


def definition_from_proto(d: pb.Definition, path: str = "definition") -> m.Definition:
    """Convert a Definition message; structural errors raise InvalidArgument with `path`."""
    kind = _oneof(d, "kind", path)
    p = f"{path}.{kind}"
    if kind == "past_behavior":
        return past_behavior_from_proto(d.past_behavior, p)
    if kind == "live":
        _require(d.live, "trigger", p)
        return m.LiveDefinition(
            trigger=_trigger(d.live.trigger, f"{p}.trigger"),
            past_behavior=past_behavior_from_proto(d.live.past_behavior, f"{p}.past_behavior")
            if d.live.HasField("past_behavior")
            else None,
            reentry=_reentry(d.live.reentry, f"{p}.reentry") if d.live.HasField("reentry")
            else m.Reentry(),
        )  # fmt: skip
    if kind == "custom_list":
        return m.CustomListDefinition(
            identity_kind=_enum(
                m.IdentityKind,
                pb.IdentityKind,
                d.custom_list.identity_kind,
                f"{p}.identity_kind",
                "IDENTITY_KIND_",
            )
        )
    if kind == "partner":
        return m.PartnerDefinition(
            partner=d.partner.partner, external_cohort_id=d.partner.external_cohort_id
        )
    return m.SystemDefinition(
        kind=_enum(
            m.SystemSegmentKind,
            pb.SystemSegmentKind,
            d.system.kind,
            f"{p}.kind",
            "SYSTEM_SEGMENT_KIND_",
        )
    )


# --- values -----------------------------------------------------------------------------


def value_to_proto(v: m.Scalar) -> pb.Value:
    if isinstance(v, bool):
        return pb.Value(bool_value=v)
    if isinstance(v, str):
        return pb.Value(string_value=v)
    if isinstance(v, datetime):
        return pb.Value(time_value=datetime_to_timestamp(v))
    return pb.Value(number_value=float(v))


def map_items(items: Iterable[tuple[str, pb.Value]], path: str) -> dict[str, m.Scalar]:
    """Convert a map<string, Value> (for example event or profile properties)."""
    return {k: value_from_proto(v, f"{path}[{k!r}]") for k, v in items}
