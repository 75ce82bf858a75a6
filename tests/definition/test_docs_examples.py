"""The grpcurl examples of docs/definition-model.md are valid requests."""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import json_format

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2

from .helpers import Stub, create

DOC = Path(__file__).resolve().parents[2] / "docs" / "definition-model.md"


def _examples(project: str) -> list[pb.CreateSegmentRequest]:
    bodies = re.findall(r"-d '(\{.*?\})' localhost", DOC.read_text(), flags=re.S)
    assert len(bodies) == 3
    return [
        json_format.Parse(
            body.replace("projects/acme", f"projects/{project}"), pb.CreateSegmentRequest()
        )
        for body in bodies
    ]


async def test_documented_examples_are_accepted(stub: Stub, project: str) -> None:
    await create(stub, project, "NY buyers", segment_id="new-york-buyers")
    await create(stub, project, "Staff", segment_id="internal-staff")
    for request in _examples(project):
        created = await stub.CreateSegment(request)
        assert created.definition == request.segment.definition
    listed = await stub.ListSegments(
        pb.ListSegmentsRequest(parent=f"projects/{project}", filter="type = LIVE")
    )
    assert [s.display_name for s in listed.segments] == ["Abandoned cart"]
    assert listed.segments[0].type == segment_pb2.SEGMENT_TYPE_LIVE
