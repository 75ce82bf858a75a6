"""Each validation rule, through CreateSegment, with the path of the offending field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2

from .helpers import Stub, field_violations

P = "segment.definition.past_behavior.root"
EV = {"event_name": "Charged"}
WIN = {"last": {"amount": 7, "unit": "TIME_UNIT_DAY"}}


def _did(**extra: Any) -> dict[str, Any]:
    return {"did_event": {"event": EV, "window": WIN, **extra}}


def _prop(op: str, *values: Any, **extra: Any) -> dict[str, Any]:
    return {
        "user_property": {
            "property": "city",
            "comparison": {
                "operator": f"COMPARISON_OPERATOR_{op}",
                "values": list(values),
                **extra,
            },
        }
    }


def _agg(function: str, op: str, values: list[float], **extra: Any) -> dict[str, Any]:
    return _did(
        aggregate={
            "function": f"AGGREGATE_FUNCTION_{function}",
            "operator": f"COMPARISON_OPERATOR_{op}",
            "values": values,
            **extra,
        }
    )


def _nest(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = _did()
    for _ in range(depth - 1):
        node = {"operator": "BOOLEAN_OPERATOR_AND", "children": [node]}
    return node


S = {"string_value": "x"}
N = {"number_value": 3}
CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "not with two",
        {"operator": "BOOLEAN_OPERATOR_NOT", "children": [_did(), _did()]},
        f"{P}.children",
    ),
    ("and without children", {"operator": "BOOLEAN_OPERATOR_AND"}, f"{P}.children"),
    (
        "window in third child",
        {
            "operator": "BOOLEAN_OPERATOR_OR",
            "children": [
                _did(),
                _did(),
                {
                    "did_event": {
                        "event": EV,
                        "window": {"last": {"amount": 0, "unit": "TIME_UNIT_DAY"}},
                    }
                },
            ],
        },
        f"{P}.children[2].did_event.window.last.amount",
    ),
    (
        "empty event name",
        {"did_event": {"event": {"event_name": ""}, "window": WIN}},
        f"{P}.did_event.event.event_name",
    ),
    (
        "long event name",
        {"did_event": {"event": {"event_name": "e" * 129}, "window": WIN}},
        f"{P}.did_event.event.event_name",
    ),
    (
        "control char",
        {"did_event": {"event": {"event_name": "a\u0001"}, "window": WIN}},
        f"{P}.did_event.event.event_name",
    ),
    (
        "range order",
        {
            "did_event": {
                "event": EV,
                "window": {
                    "range": {
                        "start": {"date": {"year": 2026, "month": 5, "day": 2}},
                        "end": {"date": {"year": 2026, "month": 5, "day": 1}},
                    }
                },
            }
        },
        f"{P}.did_event.window.range",
    ),
    ("between one value", _prop("BETWEEN", N), f"{P}.user_property.comparison.values"),
    (
        "between unordered",
        _prop("BETWEEN", {"number_value": 5}, {"number_value": 1}),
        f"{P}.user_property.comparison.values",
    ),
    ("in list empty", _prop("IN_LIST"), f"{P}.user_property.comparison.values"),
    ("in list too long", _prop("IN_LIST", *([S] * 1001)), f"{P}.user_property.comparison.values"),
    ("exists with value", _prop("EXISTS", S), f"{P}.user_property.comparison.values"),
    ("relative missing", _prop("DATE_WITHIN_LAST"), f"{P}.user_property.comparison.relative"),
    (
        "relative zero",
        _prop("DATE_WITHIN_NEXT", relative={"amount": 0, "unit": "TIME_UNIT_DAY"}),
        f"{P}.user_property.comparison.relative.amount",
    ),
    ("numeric op on string", _prop("GREATER_THAN", S), f"{P}.user_property.comparison.values[0]"),
    ("contains number", _prop("CONTAINS", N), f"{P}.user_property.comparison.values[0]"),
    (
        "bad property name",
        {
            "user_property": {
                "property": "a\tb",
                "comparison": {"operator": "COMPARISON_OPERATOR_EXISTS"},
            }
        },
        f"{P}.user_property.property",
    ),
    (
        "count with property",
        _agg("COUNT", "GREATER_THAN", [3], property="amount"),
        f"{P}.did_event.aggregate.property",
    ),
    ("sum without property", _agg("SUM", "GREATER_THAN", [3]), f"{P}.did_event.aggregate.property"),
    ("aggregate contains", _agg("COUNT", "CONTAINS", [3]), f"{P}.did_event.aggregate.operator"),
    (
        "non performers with >",
        _agg("COUNT", "GREATER_THAN", [3], include_non_performers=True),
        f"{P}.did_event.aggregate.include_non_performers",
    ),
    (
        "aggregate two values",
        _agg("COUNT", "GREATER_THAN", [3, 4]),
        f"{P}.did_event.aggregate.values",
    ),
    ("sequence one step", {"sequence": {"steps": [EV], "window": WIN}}, f"{P}.sequence.steps"),
    ("sequence too long", {"sequence": {"steps": [EV] * 21, "window": WIN}}, f"{P}.sequence.steps"),
    (
        "sequence within",
        {"sequence": {"steps": [EV, EV], "window": WIN, "within": "-5s"}},
        f"{P}.sequence.within",
    ),
    (
        "inaction within",
        {"inaction": {"did": EV, "did_not": EV, "window": WIN, "within": "0s"}},
        f"{P}.inaction.within",
    ),
    ("too deep", _nest(11), P),
    ("too many nodes", {"operator": "BOOLEAN_OPERATOR_OR", "children": [_did()] * 200}, P),
]


@pytest.mark.parametrize(("case", "root", "path"), CASES, ids=[c[0] for c in CASES])
async def test_rule_reports_its_path(
    stub: Stub, project: str, case: str, root: dict[str, Any], path: str
) -> None:
    definition = json_format.ParseDict({"past_behavior": {"root": root}}, dm.Definition())
    segment = segment_pb2.Segment(display_name="Bad", definition=definition)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateSegment(
            pb.CreateSegmentRequest(parent=f"projects/{project}", segment=segment)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert path in field_violations(info.value), (case, field_violations(info.value))


LIVE_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "regex",
        {"page_visit": {"operator": "URL_MATCH_OPERATOR_MATCHES", "pattern": "(["}},
        "page_visit.pattern",
    ),
    (
        "empty url",
        {"page_visit": {"operator": "URL_MATCH_OPERATOR_EQUALS", "pattern": ""}},
        "page_visit.pattern",
    ),
    ("pages", {"page_count": {"pages": 0, "session": {}}}, "page_count.pages"),
    (
        "page window",
        {"page_count": {"pages": 3, "window": {"amount": 0, "unit": "TIME_UNIT_DAY"}}},
        "page_count.window.amount",
    ),
    (
        "inaction within",
        {"inaction_within": {"did": EV, "did_not": EV, "within": "0s"}},
        "inaction_within.within",
    ),
    (
        "referrer",
        {"referrer": {"campaign": {"operator": "URL_MATCH_OPERATOR_MATCHES", "pattern": "*"}}},
        "referrer.campaign.pattern",
    ),
    ("date property", {"on_date": {"property": "", "days_from_today": 5}}, "on_date.property"),
]


@pytest.mark.parametrize(("case", "trigger", "path"), LIVE_CASES, ids=[c[0] for c in LIVE_CASES])
async def test_live_rule_reports_its_path(
    stub: Stub, project: str, case: str, trigger: dict[str, Any], path: str
) -> None:
    definition = json_format.ParseDict({"live": {"trigger": trigger}}, dm.Definition())
    segment = segment_pb2.Segment(display_name="Bad live", definition=definition)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateSegment(
            pb.CreateSegmentRequest(parent=f"projects/{project}", segment=segment)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"segment.definition.live.trigger.{path}" in field_violations(info.value)


async def test_all_violations_are_reported(stub: Stub, project: str) -> None:
    root = {
        "operator": "BOOLEAN_OPERATOR_AND",
        "children": [_prop("IN_LIST"), _agg("SUM", "GREATER_THAN", [1])],
    }
    definition = json_format.ParseDict({"past_behavior": {"root": root}}, dm.Definition())
    segment = segment_pb2.Segment(display_name="", description="d" * 2001, definition=definition)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateSegment(
            pb.CreateSegmentRequest(parent=f"projects/{project}", segment=segment)
        )
    assert set(field_violations(info.value)) == {
        "segment.display_name",
        "segment.description",
        f"{P}.children[0].user_property.comparison.values",
        f"{P}.children[1].did_event.aggregate.property",
    }


async def test_structural_errors_and_valid_shapes(stub: Stub, project: str) -> None:
    segment = segment_pb2.Segment(display_name="No definition")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateSegment(
            pb.CreateSegmentRequest(parent=f"projects/{project}", segment=segment)
        )
    assert field_violations(info.value) == ["segment.definition"]
    good = {
        "operator": "BOOLEAN_OPERATOR_AND",
        "children": [
            _prop("BETWEEN", N, {"number_value": 4}),
            _prop("DATE_MORE_THAN_AGO", relative={"amount": 30, "unit": "TIME_UNIT_DAY"}),
            _agg("AVG", "LESS_THAN", [2], property="amount", include_non_performers=True),
            {
                "sequence": {
                    "steps": [EV, {"event_name": "Shipped"}],
                    "window": {"all_time": {}},
                    "within": "3600s",
                }
            },
            {"operator": "BOOLEAN_OPERATOR_NOT", "children": [_did()]},
        ],
    }
    definition = json_format.ParseDict({"past_behavior": {"root": good}}, dm.Definition())
    created = await stub.CreateSegment(
        pb.CreateSegmentRequest(
            parent=f"projects/{project}",
            segment=segment_pb2.Segment(display_name="Good", definition=definition),
        )
    )
    assert created.definition == definition


async def test_a_date_mixed_with_an_instant_is_ordered_in_the_project_zone(
    stub: Stub, project: str
) -> None:
    # 03:00 UTC on March 1st: after midnight in UTC, before midnight in New York (05:00 UTC)
    window = {
        "range": {
            "start": {"instant": "2024-03-01T03:00:00Z"},
            "end": {"date": {"year": 2024, "month": 3, "day": 1}},
        }
    }
    root = {"did_event": {"event": EV, "window": window}}
    definition = json_format.ParseDict({"past_behavior": {"root": root}}, dm.Definition())
    parent = f"projects/{project}"
    with pytest.raises(grpc.aio.AioRpcError) as info:  # the project is in UTC
        await stub.ValidateDefinition(
            pb.ValidateDefinitionRequest(parent=parent, definition=definition)
        )
    assert field_violations(info.value) == ["definition.past_behavior.root.did_event.window.range"]
    got = await stub.GetProject(pb.GetProjectRequest(name=parent))
    await stub.UpdateProject(
        pb.UpdateProjectRequest(
            project=segment_pb2.Project(name=parent, time_zone="America/New_York", etag=got.etag)
        )
    )
    created = await stub.CreateSegment(
        pb.CreateSegmentRequest(
            parent=parent, segment=segment_pb2.Segment(display_name="NY", definition=definition)
        )
    )
    assert created.definition == definition
