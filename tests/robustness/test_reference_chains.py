"""Segments including segments: evaluation cost grows linearly with a chain's length, a segment
reached by several paths is evaluated once, and the documented depth and expanded-size limits
are refused at write time (issue 13, defect 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf import field_mask_pb2, timestamp_pb2

from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import segment_pb2
from services.definition.domain.limits import MAX_EXPANDED_REFERENCES, MAX_REFERENCE_DEPTH

from .serving import Served, behaviour, did, invalid_fields, served

__all__ = ["served"]

DEFINITION = "segment.definition"


def _including(event: str, *names: str) -> dm.Definition:
    return behaviour(did(event), include=names)


async def test_the_deepest_chain_evaluates_and_a_deeper_one_is_refused(served: Served) -> None:
    names = [await served.create("chain-00", _including("E0"))]
    for i in range(1, MAX_REFERENCE_DEPTH + 1):
        names.append(await served.create(f"chain-{i:02d}", _including(f"E{i}", names[-1])))
    deepest = names[-1]
    # one event per step, each user in every segment of the chain up to theirs
    await served.evaluator.IngestEvents(
        _stream(
            pb.IngestEventsRequest(
                parent=served.parent,
                events=[
                    pb.Event(
                        event_id=f"e{u}-{i}",
                        user_id=f"u{u}",
                        event_name=f"E{i}",
                        event_time=timestamp_pb2.Timestamp(seconds=1_767_225_600),
                    )
                    for u in range(2)
                    for i in range(MAX_REFERENCE_DEPTH + 1 - u)
                ],
            )
        )
    )
    counted = await served.evaluator.CountSegment(
        pb.CountSegmentRequest(segment=deepest, sample_size=5)
    )
    assert list(counted.sample_user_ids) == ["u0"]
    explained = await served.evaluator.ExplainSegment(pb.ExplainSegmentRequest(segment=deepest))
    assert " IN (SELECT" not in explained.sql  # references are joined

    fields = await invalid_fields(served.create("chain-deeper", _including("E", deepest)))
    assert f"nest {MAX_REFERENCE_DEPTH + 1} deep" in fields[DEFINITION], fields
    # deepening the bottom of the chain would make its top too deep
    other = await served.create("chain-other", _including("X"))
    update = dpb.UpdateSegmentRequest(
        segment=segment_pb2.Segment(name=names[0], definition=_including("E0", other)),
        update_mask=field_mask_pb2.FieldMask(paths=["definition"]),
    )
    fields = await invalid_fields(served.definitions.UpdateSegment(update))
    assert deepest.rsplit("/", 1)[1] in fields[DEFINITION], fields


async def test_the_deepest_ladder_of_diamonds_counts_correctly(served: Served) -> None:
    # A<k> includes B<k> and C<k>, each including A<k-1>: 2^k paths from A<k> to A0
    top = await served.create("dia-a0", _including("A0"))
    steps = MAX_REFERENCE_DEPTH // 2
    for k in range(1, steps + 1):
        sides = [
            await served.create(f"dia-{s}{k}", _including(f"{s.upper()}{k}", top)) for s in "bc"
        ]
        top = await served.create(f"dia-a{k}", _including(f"A{k}", *sides))
    events = [f"{s}{k}" for k in range(1, steps + 1) for s in "ABC"] + ["A0"]
    # u0 did every event; u1 misses C3 (on one side of a diamond); u2 misses A0 (the bottom)
    missing = {"u0": "", "u1": "C3", "u2": "A0"}
    await served.evaluator.IngestEvents(
        _stream(
            pb.IngestEventsRequest(
                parent=served.parent,
                events=[
                    pb.Event(
                        event_id=f"{user}-{event}",
                        user_id=user,
                        event_name=event,
                        event_time=timestamp_pb2.Timestamp(seconds=1_767_225_600),
                    )
                    for user, lacking in missing.items()
                    for event in events
                    if event != lacking
                ],
            )
        )
    )
    counted = await served.evaluator.CountSegment(
        pb.CountSegmentRequest(segment=top, sample_size=5)
    )
    assert (counted.user_count, list(counted.sample_user_ids)) == (1, ["u0"])
    explained = await served.evaluator.ExplainSegment(pb.ExplainSegmentRequest(segment=top))
    assert explained.sql.count("FROM events") == 2  # the top segment's scan, the references'


async def test_a_lattice_of_references_is_bounded_by_its_expanded_size(served: Served) -> None:
    level = [await served.create(f"lat-0-{side}", _including("L")) for side in "ab"]
    size = 0
    depth = 0
    while True:
        depth += 1
        size = 2 * (1 + size)
        if size > MAX_EXPANDED_REFERENCES:
            break
        level = [
            await served.create(f"lat-{depth}-{side}", _including("L", *level)) for side in "ab"
        ]
    fields = await invalid_fields(served.create("lat-too-big", _including("L", *level)))
    assert "at most" in fields[DEFINITION] and "reach" in fields[DEFINITION], fields


async def _stream(message: pb.IngestEventsRequest) -> AsyncIterator[pb.IngestEventsRequest]:
    yield message
