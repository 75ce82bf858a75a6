"""Access to the evaluator running alone: it asks the definition service for every decision
with the caller's own key, and passes that key on in its own calls to the definition service."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.logging import configure_logging
from libs.common.server import RunningServer
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import evaluator_service_pb2 as pb
from services.definition.domain.keys import key_id_of
from services.evaluator.service import EvaluatorService
from tests.support.auth import authorized_channel, bearer, make_key
from tests.support.chdb_http import ChdbHttpServer

from .grpc_stack import TIMEOUT, Stack, create, did, new_project, past, rich, running_stack
from .support import event, stream

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
VIEWER, EDITOR = access_pb2.ROLE_VIEWER, access_pb2.ROLE_EDITOR


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, chdb_engine: ChdbEngine, chdb_http: ChdbHttpServer
) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("access_peer")
    async with running_stack("chdb", data_dir, chdb_engine, chdb_http) as running:
        yield running


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_roles_and_projects_hold_at_the_evaluator(stack: Stack) -> None:
    await new_project(stack, "peer-a")
    await new_project(stack, "peer-b")
    theirs = await create(stack, "peer-b", "b-buyers", past(did("Buy")))
    mine = await create(stack, "peer-a", "a-buyers", past(did("Buy")))
    editor = await make_key(
        stack.definition_channel, {"projects/peer-a": EDITOR}, person="ed@example.com"
    )
    viewer = await make_key(
        stack.definition_channel, {"projects/peer-a": VIEWER}, person="vi@example.com"
    )
    events = [event("e1", "u1", "Buy", T0)]
    ok = await stack.evaluator.IngestEvents(
        stream([pb.IngestEventsRequest(parent="projects/peer-a", events=events)]),
        metadata=bearer(editor),
        timeout=TIMEOUT,
    )
    assert ok.accepted_count == 1
    # the evaluator's own audit record of the write, in the store the definition service reads
    trail = await stack.definitions.ListAuditRecords(
        access_pb2.ListAuditRecordsRequest(parent="projects/peer-a")
    )
    ingested = [r for r in trail.audit_records if r.method.endswith("/IngestEvents")]
    assert [(r.principal, r.outcome, r.resource) for r in ingested] == [
        ("ed@example.com", "OK", "projects/peer-a")
    ]
    count = await stack.evaluator.CountSegment(
        pb.CountSegmentRequest(segment=mine), metadata=bearer(viewer), timeout=TIMEOUT
    )
    assert count.user_count == 1

    denied = await _error(
        stack.evaluator.IngestEvents(
            stream([pb.IngestEventsRequest(parent="projects/peer-a", events=events)]),
            metadata=bearer(viewer),
            timeout=TIMEOUT,
        )
    )
    assert rich(denied).code is grpc.StatusCode.PERMISSION_DENIED
    # another project's segment, and a project that does not exist: one answer
    answers = []
    for segment in (theirs, "projects/peer-none/segments/b-buyers"):
        err = rich(
            await _error(
                stack.evaluator.CountSegment(
                    pb.CountSegmentRequest(segment=segment), metadata=bearer(editor)
                )
            )
        )
        project = segment.split("/segments/")[0]
        answers.append((err.code, err.info.reason, err.message.replace(project, "P")))
    assert answers[0] == answers[1]
    assert answers[0][:2] == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")
    # a stream of messages is checked message by message
    err = rich(
        await _error(
            stack.evaluator.IngestEvents(
                stream(
                    [
                        pb.IngestEventsRequest(parent="projects/peer-a", events=[]),
                        pb.IngestEventsRequest(
                            parent="projects/peer-b", events=[event("x", "u9", "Buy", T0)]
                        ),
                    ]
                ),
                metadata=bearer(editor),
                timeout=TIMEOUT,
            )
        )
    )
    assert err.code is grpc.StatusCode.NOT_FOUND
    assert (
        await stack.evaluator.CountSegment(pb.CountSegmentRequest(segment=theirs))
    ).user_count == 0
    # no key at all; and an unknown project creates nothing
    err = rich(
        await _error(
            stack.evaluator.CountSegment(
                pb.CountSegmentRequest(segment=mine), metadata=(("authorization", ""),)
            )
        )
    )
    assert (err.code, err.info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING")
    err = rich(
        await _error(
            stack.evaluator.UpsertProfiles(
                pb.UpsertProfilesRequest(
                    parent="projects/peer-ghost", profiles=[pb.Profile(user_id="u1")]
                ),
                timeout=TIMEOUT,
            )
        )
    )
    assert err.code is grpc.StatusCode.NOT_FOUND
    listed = await stack.definitions.ListProjects(dpb.ListProjectsRequest(page_size=500))
    assert "projects/peer-ghost" not in [p.name for p in listed.projects]


async def test_revoking_a_key_stops_it_at_once_in_this_process(stack: Stack) -> None:
    await new_project(stack, "peer-revoke")
    segment = await create(stack, "peer-revoke", "r-buyers", past(did("Buy")))
    key = await make_key(
        stack.definition_channel, {"projects/peer-revoke": VIEWER}, service="soon-gone"
    )
    request = pb.CountSegmentRequest(segment=segment)
    await stack.evaluator.CountSegment(request, metadata=bearer(key), timeout=TIMEOUT)
    await stack.definitions.RevokeApiKey(
        access_pb2.RevokeApiKeyRequest(name=f"apiKeys/{key_id_of(key)}")
    )
    err = rich(await _error(stack.evaluator.CountSegment(request, metadata=bearer(key))))
    assert (err.code, err.info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED")


async def test_peer_calls_carry_the_callers_key(stack: Stack) -> None:
    await new_project(stack, "peer-carry")
    await new_project(stack, "peer-other")
    segment = await create(stack, "peer-carry", "c-buyers", past(did("Buy")))
    theirs = await create(stack, "peer-other", "o-buyers", past(did("Buy")))
    key = await make_key(
        stack.definition_channel, {"projects/peer-carry": EDITOR}, service="orchestrator"
    )
    logs = io.StringIO()
    configure_logging("INFO", stream=logs)
    try:
        await stack.evaluator.CountSegment(
            pb.CountSegmentRequest(segment=segment),
            metadata=(*bearer(key), ("x-request-id", "carry-1"), ("x-user-email", "ada@x.io")),
            timeout=TIMEOUT,
        )
        # the definition service checks the same key on the evaluator's call for an unsaved
        # definition that names another project's segment: refused, nothing of it shown
        err = rich(
            await _error(
                stack.evaluator.EstimateDefinition(
                    pb.EstimateDefinitionRequest(
                        parent="projects/peer-carry", definition=past(did("Buy"), include=[theirs])
                    ),
                    metadata=bearer(key),
                    timeout=TIMEOUT,
                )
            )
        )
        assert err.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    calls = [
        line for line in lines if line.get("event") == "rpc" and line.get("request_id") == "carry-1"
    ]
    by_method = {line["method"].rsplit("/", 1)[1]: line for line in calls}
    dependencies = by_method["GetSegmentDependencies"]
    assert dependencies["key"] == key_id_of(key)
    assert dependencies["caller"] == "ada@x.io via orchestrator"
    assert by_method["CountSegment"]["key"] == key_id_of(key)
    # and a call to the definition service without any key is refused
    err = rich(
        await _error(
            stack.definitions.GetSegmentDependencies(
                dpb.GetSegmentDependenciesRequest(name=segment),
                metadata=(("authorization", ""),),
            )
        )
    )
    assert err.code is grpc.StatusCode.UNAUTHENTICATED


async def test_an_unreachable_definition_service_is_unavailable(
    tmp_path: Path, chdb_engine: ChdbEngine
) -> None:
    (tmp_path / "chdb").symlink_to(chdb_engine.path, target_is_directory=True)
    config = replace(
        Config(),
        data_dir=tmp_path,
        clickhouse_database="peer_down",
        definition_address="127.0.0.1:1",
        shutdown_grace_seconds=1.0,
    )
    server = RunningServer([EvaluatorService(config)], config, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            from segments.v1 import evaluator_service_pb2_grpc as pb_grpc

            stub = pb_grpc.SegmentEvaluatorServiceStub(channel)
            err = rich(
                await _error(
                    stub.CountSegment(
                        pb.CountSegmentRequest(segment="projects/p/segments/s"), timeout=TIMEOUT
                    )
                )
            )
    finally:
        await server.stop()
    assert (err.code, err.info.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "ACCESS_DECISION_UNAVAILABLE",
    )
