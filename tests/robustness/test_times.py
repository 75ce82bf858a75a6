"""Windows longer than the calendar and extreme or malformed Timestamps and Durations answer
INVALID_ARGUMENT naming the field and the supported range; a saved definition always evaluates
(issue 13, defects 1 and 2)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from libs.model import definition as m
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb
from services.definition.domain.validation import definition_violations
from services.evaluator.domain.windows import CEILING, FLOOR, resolve, shift

from .serving import Served, behaviour, did, invalid_fields, served

__all__ = ["served"]

ROOT = "segment.definition.past_behavior.root"
YEAR_1 = timestamp_pb2.Timestamp(seconds=-62135596800)  # 0001-01-01T00:00:00Z


def last(amount: int, unit: dm.TimeUnit.ValueType) -> dm.TimeWindow:
    return dm.TimeWindow(last=dm.RelativeOffset(amount=amount, unit=unit))


def relative_date(amount: int) -> dm.Node:
    return dm.Node(
        user_property=dm.PropertyFilter(
            property="birthday",
            comparison=dm.Comparison(
                operator=dm.COMPARISON_OPERATOR_DATE_WITHIN_LAST,
                relative=dm.RelativeOffset(amount=amount, unit=dm.TIME_UNIT_DAY),
            ),
        )
    )


async def test_windows_beyond_the_calendar_are_refused_with_the_field(served: Served) -> None:
    for root, field in (
        (did("Buy", last(200_000, dm.TIME_UNIT_DAY)), f"{ROOT}.did_event.window.last.amount"),
        (did("Buy", last(30_000, dm.TIME_UNIT_MONTH)), f"{ROOT}.did_event.window.last.amount"),
        (relative_date(1_000_000), f"{ROOT}.user_property.comparison.relative.amount"),
    ):
        fields = await invalid_fields(served.create("too-long", behaviour(root)))
        assert field in fields, fields
        assert "at most" in fields[field]


async def test_the_longest_windows_evaluate_at_either_end_of_the_range(served: Served) -> None:
    name = await served.create(
        "longest",
        behaviour(
            dm.Node(
                operator=dm.BOOLEAN_OPERATOR_OR,
                children=[
                    did("Buy", last(110_000, dm.TIME_UNIT_DAY)),
                    did("Buy", last(3_600, dm.TIME_UNIT_MONTH)),
                    relative_date(110_000),
                ],
            )
        ),
    )
    for seconds in (0, int(datetime(2261, 12, 31, tzinfo=UTC).timestamp())):
        response = await served.evaluator.CountSegment(
            pb.CountSegmentRequest(segment=name, as_of=timestamp_pb2.Timestamp(seconds=seconds))
        )
        assert response.user_count == 0


def test_the_compiler_clamps_what_an_older_definition_may_still_hold() -> None:
    far = m.RelativeOffset(amount=10**9, unit=m.TimeUnit.DAY)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert shift(now, far, "Europe/Paris", sign=-1) == FLOOR
    assert shift(now, far, "Europe/Paris", sign=1) == CEILING
    months = m.RelativeOffset(amount=10**7, unit=m.TimeUnit.MONTH)
    assert shift(now, months, "Pacific/Kiritimati", sign=-1) == FLOOR
    since = m.SinceWindow(start=m.TimePoint(date=datetime(1, 1, 1).date()))
    assert resolve(since, now, "Asia/Tokyo").start == FLOOR
    # and validation refuses it at write time
    assert definition_violations(
        m.PastBehaviorQuery(
            root=m.Node(condition=m.DidEvent(event=m.EventSpec("Buy"), window=m.LastWindow(far)))
        ),
        "definition",
        "p",
    )


async def test_extreme_and_malformed_as_of_is_refused_on_every_evaluation(served: Served) -> None:
    name = await served.create("plain", behaviour(did("Buy")))
    unsaved = behaviour(did("Buy"))
    bad = {
        "0001-01-01": YEAR_1,
        "negative nanos": timestamp_pb2.Timestamp(seconds=0, nanos=-1),
        "nanos of a second": timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000_000),
        "year 10000": timestamp_pb2.Timestamp(seconds=253402300800),
    }
    for label, as_of in bad.items():
        calls: list[Awaitable[Any]] = [
            served.evaluator.CountSegment(pb.CountSegmentRequest(segment=name, as_of=as_of)),
            served.evaluator.CreateSnapshot(pb.CreateSnapshotRequest(parent=name, as_of=as_of)),
            served.evaluator.ExplainSegment(pb.ExplainSegmentRequest(segment=name, as_of=as_of)),
            served.evaluator.EstimateDefinition(
                pb.EstimateDefinitionRequest(parent=served.parent, definition=unsaved, as_of=as_of)
            ),
            _first(
                served.evaluator.StreamAudience(pb.StreamAudienceRequest(segment=name, as_of=as_of))
            ),
        ]
        for call in calls:
            fields = await invalid_fields(call)
            assert "as_of" in fields, (label, fields)
            assert "1970" in fields["as_of"] or "nanos" in fields["as_of"], fields


async def _first(stream: AsyncIterable[pb.StreamAudienceResponse]) -> None:
    async for _ in stream:
        return


async def test_profile_times_out_of_range_are_row_errors(served: Served) -> None:
    response = await served.evaluator.UpsertProfiles(
        pb.UpsertProfilesRequest(
            parent=served.parent,
            profiles=[
                pb.Profile(
                    user_id="far",
                    properties={
                        "t": dm.Value(time_value=timestamp_pb2.Timestamp(seconds=253402300800))
                    },
                ),
                pb.Profile(
                    user_id="neg",
                    properties={"t": dm.Value(time_value=timestamp_pb2.Timestamp(nanos=-5))},
                ),
                pb.Profile(user_id="old", update_time=YEAR_1),
                pb.Profile(user_id="fine"),
            ],
        )
    )
    assert response.upserted_count == 1
    assert {e.index for e in response.errors} == {0, 1, 2}
    assert all("time" in e.field for e in response.errors), response.errors


async def test_malformed_durations_and_time_points_name_the_field(served: Served) -> None:
    root = dm.Node(
        inaction=dm.InactionCondition(
            did=dm.EventSpec(event_name="Cart"),
            did_not=dm.EventSpec(event_name="Buy"),
            window=dm.TimeWindow(all_time=dm.AllTime()),
            within=duration_pb2.Duration(seconds=5, nanos=-3),
        )
    )
    fields = await invalid_fields(served.create("bad-within", behaviour(root)))
    assert f"{ROOT}.inaction.within" in fields, fields
    root.inaction.within.CopyFrom(duration_pb2.Duration(seconds=10**15))
    fields = await invalid_fields(served.create("huge-within", behaviour(root)))
    assert f"{ROOT}.inaction.within" in fields, fields
    since = dm.TimeWindow(since=dm.TimePoint(instant=YEAR_1))
    fields = await invalid_fields(served.create("old-since", behaviour(did("Buy", since))))
    assert f"{ROOT}.did_event.window.since.instant" in fields, fields
    since = dm.TimeWindow(since=dm.TimePoint(instant=timestamp_pb2.Timestamp(nanos=-1)))
    fields = await invalid_fields(served.create("bad-since", behaviour(did("Buy", since))))
    assert f"{ROOT}.did_event.window.since.instant" in fields, fields
