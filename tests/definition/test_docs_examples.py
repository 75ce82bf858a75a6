"""The grpcurl examples of the README and docs/definition-model.md: the request bodies are
valid requests, and every call of a Segments RPC passes the demo's API key."""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import json_format

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2

from .helpers import Stub

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "definition-model.md"
KEY_HEADER = '-H "authorization: Bearer $(cat var/demo.key)"'


def _examples(project: str) -> list[pb.CreateSegmentRequest]:
    bodies = re.findall(r"-d '(\{.*?\})' localhost", DOC.read_text(), flags=re.S)
    assert len(bodies) == 4
    return [
        json_format.Parse(
            body.replace("projects/demo", f"projects/{project}"), pb.CreateSegmentRequest()
        )
        for body in bodies
    ]


def _grpcurl_commands(text: str) -> list[str]:
    """Each grpcurl command of `text`, continuation lines and quoted bodies joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        current = ""
        for line in block.splitlines():
            if line.startswith("grpcurl") and not current.count("'") % 2:
                if current:
                    commands.append(current)
                current = line
            else:
                current += "\n" + line
        if current:
            commands.append(current)
    return [c for c in commands if c.startswith("grpcurl")]


def test_every_documented_call_of_an_rpc_passes_the_demo_key() -> None:
    for doc in (ROOT / "README.md", DOC):
        commands = _grpcurl_commands(doc.read_text())
        calls = [c for c in commands if re.search(r"segments\.v1\.\w+/\w+", c)]
        assert calls, doc
        for command in calls:
            assert KEY_HEADER in command, f"{doc.name}: {command}"
        for command in commands:
            if "grpc.health.v1" in command or " list" in command or " describe " in command:
                assert "authorization" not in command  # open to every client


async def test_documented_examples_are_accepted(stub: Stub, project: str) -> None:
    # in the doc's order: example 2 references the segments created before it
    for request in _examples(project):
        created = await stub.CreateSegment(request)
        assert created.definition == request.segment.definition
    listed = await stub.ListSegments(
        pb.ListSegmentsRequest(parent=f"projects/{project}", filter="type = LIVE")
    )
    assert [s.display_name for s in listed.segments] == ["Abandoned cart"]
    assert listed.segments[0].type == segment_pb2.SEGMENT_TYPE_LIVE
