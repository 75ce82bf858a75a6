"""Conversion of `libs.model.definition` into `segments.v1` definition messages (the inverse
of `libs.model.definition_proto.definition_from_proto`)."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any

from google.protobuf import duration_pb2

from libs.model import definition as m
from libs.model.definition_proto import (
    date_to_proto,
    datetime_to_timestamp,
    timedelta_to_duration,
    value_to_proto,
)
from segments.v1 import definition_model_pb2 as pb


def _enum_to_pb(pb_enum: Any, value: enum.Enum, prefix: str) -> Any:
    return pb_enum.Value(prefix + value.value)


def _offset_to_pb(o: m.RelativeOffset) -> pb.RelativeOffset:
    return pb.RelativeOffset(amount=o.amount, unit=_enum_to_pb(pb.TimeUnit, o.unit, "TIME_UNIT_"))


def _filter_to_pb(f: m.PropertyFilter) -> pb.PropertyFilter:
    c = f.comparison
    comparison = pb.Comparison(
        operator=_enum_to_pb(pb.ComparisonOperator, c.operator, "COMPARISON_OPERATOR_"),
        values=[value_to_proto(v) for v in c.values],
    )
    if c.relative is not None:
        comparison.relative.CopyFrom(_offset_to_pb(c.relative))
    return pb.PropertyFilter(property=f.property, comparison=comparison)


def _event_to_pb(e: m.EventSpec) -> pb.EventSpec:
    return pb.EventSpec(event_name=e.event_name, filters=[_filter_to_pb(f) for f in e.filters])


def _point_to_pb(p: m.TimePoint) -> pb.TimePoint:
    if p.instant is not None:
        return pb.TimePoint(instant=datetime_to_timestamp(p.instant))
    assert p.date is not None
    return pb.TimePoint(date=date_to_proto(p.date))


def window_to_proto(w: m.TimeWindow) -> pb.TimeWindow:
    match w:
        case m.LastWindow(offset=o):
            return pb.TimeWindow(last=_offset_to_pb(o))
        case m.TodayWindow():
            return pb.TimeWindow(today=pb.Today())
        case m.YesterdayWindow():
            return pb.TimeWindow(yesterday=pb.Yesterday())
        case m.RangeWindow(start=s, end=e):
            return pb.TimeWindow(range=pb.AbsoluteRange(start=_point_to_pb(s), end=_point_to_pb(e)))
        case m.SinceWindow(start=s):
            return pb.TimeWindow(since=_point_to_pb(s))
        case m.BeforeWindow(end=e):
            return pb.TimeWindow(before=_point_to_pb(e))
        case m.AllTimeWindow():
            return pb.TimeWindow(all_time=pb.AllTime())


def _maybe_duration(value: timedelta | None) -> duration_pb2.Duration | None:
    return timedelta_to_duration(value) if value is not None else None


def _node_to_pb(n: m.Node) -> pb.Node:
    out = pb.Node(children=[_node_to_pb(c) for c in n.children])
    if n.operator is not None:
        out.operator = _enum_to_pb(pb.BooleanOperator, n.operator, "BOOLEAN_OPERATOR_")
    match n.condition:
        case None:
            pass
        case m.DidEvent(event=e, window=w, aggregate=a):
            out.did_event.CopyFrom(
                pb.DidEventCondition(event=_event_to_pb(e), window=window_to_proto(w))
            )
            if a is not None:
                out.did_event.aggregate.CopyFrom(
                    pb.Aggregate(
                        function=_enum_to_pb(
                            pb.AggregateFunction, a.function, "AGGREGATE_FUNCTION_"
                        ),
                        property=a.property,
                        operator=_enum_to_pb(
                            pb.ComparisonOperator, a.operator, "COMPARISON_OPERATOR_"
                        ),
                        values=list(a.values),
                        include_non_performers=a.include_non_performers,
                    )
                )
        case m.DidNotEvent(event=e, window=w):
            out.did_not_event.CopyFrom(
                pb.DidNotEventCondition(event=_event_to_pb(e), window=window_to_proto(w))
            )
        case m.Inaction(did=a, did_not=b, window=w, within=t):
            out.inaction.CopyFrom(
                pb.InactionCondition(
                    did=_event_to_pb(a),
                    did_not=_event_to_pb(b),
                    window=window_to_proto(w),
                    within=_maybe_duration(t),
                )
            )
        case m.FirstTime(event=e, window=w):
            out.first_time.CopyFrom(
                pb.FirstTimeCondition(event=_event_to_pb(e), window=window_to_proto(w))
            )
        case m.Sequence(steps=steps, window=w, within=t):
            out.sequence.CopyFrom(
                pb.SequenceCondition(
                    steps=[_event_to_pb(s) for s in steps],
                    window=window_to_proto(w),
                    within=_maybe_duration(t),
                )
            )
        case m.UserProperty(filter=f):
            out.user_property.CopyFrom(_filter_to_pb(f))
        case m.InSegment(segment=s, negate=neg):
            out.in_segment.CopyFrom(pb.SegmentMembershipCondition(segment=s, negate=neg))
    return out


def past_behavior_to_proto(q: m.PastBehaviorQuery) -> pb.PastBehaviorQuery:
    out = pb.PastBehaviorQuery(
        included_segments=list(q.included_segments), excluded_segments=list(q.excluded_segments)
    )
    if q.root is not None:
        out.root.CopyFrom(_node_to_pb(q.root))
    return out


def _url_to_pb(u: m.UrlMatch) -> pb.UrlMatch:
    return pb.UrlMatch(
        operator=_enum_to_pb(pb.UrlMatchOperator, u.operator, "URL_MATCH_OPERATOR_"),
        pattern=u.pattern,
    )


def _trigger_to_pb(t: m.LiveTrigger) -> pb.LiveTrigger:
    match t:
        case m.SingleActionTrigger(event=e):
            return pb.LiveTrigger(single_action=_event_to_pb(e))
        case m.InactionWithinTrigger(did=a, did_not=b, within=w):
            return pb.LiveTrigger(
                inaction_within=pb.InactionWithinTrigger(
                    did=_event_to_pb(a), did_not=_event_to_pb(b), within=timedelta_to_duration(w)
                )
            )
        case m.DateTrigger(property=prop, days_from_today=days):
            return pb.LiveTrigger(on_date=pb.DateTrigger(property=prop, days_from_today=days))
        case m.PageVisitTrigger(url=u):
            return pb.LiveTrigger(page_visit=_url_to_pb(u))
        case m.ReferrerTrigger(referrer_url=r, campaign=c):
            if r is not None:
                return pb.LiveTrigger(referrer=pb.ReferrerTrigger(referrer_url=_url_to_pb(r)))
            assert c is not None
            return pb.LiveTrigger(referrer=pb.ReferrerTrigger(campaign=_url_to_pb(c)))
        case m.PageCountTrigger(pages=n, window=w):
            if w is None:
                return pb.LiveTrigger(
                    page_count=pb.PageCountTrigger(pages=n, session=pb.SessionScope())
                )
            return pb.LiveTrigger(page_count=pb.PageCountTrigger(pages=n, window=_offset_to_pb(w)))


def definition_to_proto(d: m.Definition) -> pb.Definition:
    match d:
        case m.PastBehaviorQuery():
            return pb.Definition(past_behavior=past_behavior_to_proto(d))
        case m.LiveDefinition(trigger=t, past_behavior=q, reentry=r):
            live = pb.LiveDefinition(trigger=_trigger_to_pb(t))
            if q is not None:
                live.past_behavior.CopyFrom(past_behavior_to_proto(q))
            if r != m.Reentry():
                live.reentry.CopyFrom(
                    pb.ReentryPolicy(
                        mode=_enum_to_pb(pb.ReentryMode, r.mode, "REENTRY_MODE_"),
                        cooldown=_maybe_duration(r.cooldown),
                    )
                )
            return pb.Definition(live=live)
        case m.CustomListDefinition(identity_kind=k):
            return pb.Definition(
                custom_list=pb.CustomListDefinition(
                    identity_kind=_enum_to_pb(pb.IdentityKind, k, "IDENTITY_KIND_")
                )
            )
        case m.PartnerDefinition(partner=p, external_cohort_id=c):
            return pb.Definition(partner=pb.PartnerDefinition(partner=p, external_cohort_id=c))
        case m.SystemDefinition(kind=k):
            return pb.Definition(
                system=pb.SystemDefinition(
                    kind=_enum_to_pb(pb.SystemSegmentKind, k, "SYSTEM_SEGMENT_KIND_")
                )
            )
