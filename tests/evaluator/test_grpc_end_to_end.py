"""The evaluator and the definition service through real gRPC, on both ClickHouse adapters.

The servers come from `grpc_stack.running_stack` (one pair per backend for the module);
each test works in its own project.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.common.server import HEALTH_SERVICE_NAME, REFLECTION_SERVICE_NAME
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb
from services.definition.service import SERVICE_NAME as DEFINITION
from services.evaluator.service import SERVICE_NAME as EVALUATOR

from .grpc_stack import (
    TIMEOUT,
    Stack,
    count,
    create,
    did,
    did_not,
    ingest,
    members,
    new_project,
    past,
    reflected,
    rich,
    stack_fixture,
)
from .support import event, stream

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SERVING = health_pb2.HealthCheckResponse.SERVING


stack = stack_fixture("e2e")


# --- 1. health and reflection -----------------------------------------------------------------


async def test_health_serving_and_reflection(stack: Stack) -> None:
    for channel, name in (
        (stack.definition_channel, DEFINITION),
        (stack.evaluator_channel, EVALUATOR),
    ):
        health = health_pb2_grpc.HealthStub(channel)
        for service in (name, ""):
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT
            )
            assert reply.status == SERVING
        assert await reflected(channel) == {name, HEALTH_SERVICE_NAME, REFLECTION_SERVICE_NAME}


# --- 2. the whole flow of a past-behaviour segment --------------------------------------------


async def test_full_flow_of_a_past_behaviour_segment(stack: Stack) -> None:
    p = "flow"
    await new_project(stack, p)
    profiles = [
        pb.Profile(
            user_id=f"u{i}",
            email=f"user{i}@example.com",
            properties={"tier": dm.Value(number_value=i)},
        )
        for i in range(1, 5)
    ]
    upserted = await stack.evaluator.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=f"projects/{p}", profiles=profiles), timeout=TIMEOUT
    )
    assert upserted.upserted_count == 4 and not upserted.errors

    first = [event("e1", "u1", "Buy", T0), event("e2", "u2", "Buy", T0),
             event("e3", "u3", "View", T0)]  # fmt: skip
    second = [event("e4", "u4", "Buy", T0 + timedelta(hours=1)), event("e5", "u5", "Buy", T0)]
    got = await ingest(stack, p, first, second)
    assert (got.accepted_count, got.duplicate_count, got.rejected_count) == (5, 0, 0)
    resent = await ingest(stack, p, first)
    assert (resent.accepted_count, resent.duplicate_count, resent.rejected_count) == (0, 3, 0)

    # bought and never refunded; u5 has events but no profile and is still a user
    seg = await create(stack, p, "buyers", past(dm.Node(
        operator=dm.BOOLEAN_OPERATOR_AND, children=[did("Buy"), did_not("Refund")]
    )))  # fmt: skip
    assert await count(stack, seg) == (4, ["u1", "u2", "u4", "u5"])

    chunks = [
        c
        async for c in stack.evaluator.StreamAudience(
            pb.StreamAudienceRequest(segment=seg, chunk_size=3, profile_fields=["email", "tier"]),
            timeout=TIMEOUT,
        )
    ]
    assert [len(c.user_ids) for c in chunks] == [3, 1]
    assert sorted(u for c in chunks for u in c.user_ids) == ["u1", "u2", "u4", "u5"]
    for c in chunks:
        assert [m.user_id for m in c.members] == list(c.user_ids)
    by_id = {m.user_id: m for c in chunks for m in c.members}
    assert by_id["u4"].fields["email"].string_value == "user4@example.com"
    assert by_id["u4"].fields["tier"].number_value == 4
    assert dict(by_id["u5"].fields) == {}  # no profile: no fields

    ids = ["u1", "u3", "u5", "nobody"]
    assert await members(stack, seg, ids, realtime=True) == ([True, False, True, False], 0)

    s1 = await stack.evaluator.CreateSnapshot(pb.CreateSnapshotRequest(parent=seg), timeout=TIMEOUT)
    assert (s1.name, s1.version, s1.user_count) == (f"{seg}/snapshots/1", 1, 4)
    # u3 buys (enters), u1 refunds (leaves)
    changed = await ingest(
        stack, p, [event("e6", "u3", "Buy", T0), event("e7", "u1", "Refund", T0)]
    )
    assert changed.accepted_count == 2
    assert await members(stack, seg, ["u1", "u3"]) == ([True, False], 1)  # latest snapshot
    assert await members(stack, seg, ["u1", "u3"], realtime=True) == ([False, True], 0)
    s2 = await stack.evaluator.CreateSnapshot(pb.CreateSnapshotRequest(parent=seg), timeout=TIMEOUT)
    assert (s2.version, s2.user_count) == (2, 4)
    assert await members(stack, seg, ["u1", "u3"]) == ([False, True], 2)
    assert await members(stack, seg, ["u1", "u3"], version=1) == ([True, False], 1)
    changes = await stack.evaluator.ListSnapshotChanges(
        pb.ListSnapshotChangesRequest(parent=seg, from_version=1, to_version=2), timeout=TIMEOUT
    )
    assert [(c.user_id, c.kind) for c in changes.changes] == [
        ("u1", pb.CHANGE_KIND_LEFT),
        ("u3", pb.CHANGE_KIND_ENTERED),
    ]
    old = [
        u
        async for c in stack.evaluator.StreamAudience(
            pb.StreamAudienceRequest(segment=seg, snapshot_version=1), timeout=TIMEOUT
        )
        for u in c.user_ids
    ]
    assert sorted(old) == ["u1", "u2", "u4", "u5"]

    explained = await stack.evaluator.ExplainSegment(
        pb.ExplainSegmentRequest(segment=seg), timeout=TIMEOUT
    )
    assert "events" in explained.sql and "Buy" not in explained.sql
    assert {"Buy", "Refund"} <= set(explained.parameters.values())
    assert explained.plan.strip()

    estimate = await stack.evaluator.EstimateDefinition(
        pb.EstimateDefinitionRequest(parent=f"projects/{p}", definition=past(did("View")),
                                     sample_size=5),
        timeout=TIMEOUT,
    )  # fmt: skip
    assert (estimate.user_count, list(estimate.sample_user_ids)) == (1, ["u3"])


# --- 3. include / exclude resolved through the definition service -----------------------------


async def test_nested_include_and_exclude_resolve_over_grpc(stack: Stack) -> None:
    p = "nest"
    await new_project(stack, p)
    history = {
        "u1": ["Visit", "Buy"],
        "u2": ["Visit", "Buy", "Refund"],
        "u3": ["Visit"],
        "u4": ["Buy"],
        "u5": ["Visit", "Buy"],
        "u6": ["Refund"],
    }
    events = [
        event(f"{user}-{name}", user, name, T0) for user, names in history.items() for name in names
    ]
    assert (await ingest(stack, p, events)).accepted_count == len(events)

    c = await create(stack, p, "refunders", past(did("Refund")))
    b = await create(stack, p, "buyers-kept", past(did("Buy"), exclude=[c]))
    a = await create(stack, p, "visitors-kept", past(did("Visit"), include=[b]))

    assert await count(stack, c) == (2, ["u2", "u6"])
    assert await count(stack, b) == (3, ["u1", "u4", "u5"])
    assert await count(stack, a) == (2, ["u1", "u5"])
    everyone = sorted(history)
    flags, version = await members(stack, a, everyone)
    assert version == 0
    assert [u for u, f in zip(everyone, flags, strict=True) if f] == ["u1", "u5"]
    # an unsaved definition referencing the chain resolves the same way
    estimate = await stack.evaluator.EstimateDefinition(
        pb.EstimateDefinitionRequest(
            parent=f"projects/{p}", definition=past(did("Buy"), exclude=[a]), sample_size=10
        ),
        timeout=TIMEOUT,
    )
    assert list(estimate.sample_user_ids) == ["u2", "u4"]


# --- 4. system, custom-list and partner segments ----------------------------------------------


async def test_system_custom_list_and_partner_segments(stack: Stack) -> None:
    p = "kinds"
    await new_project(stack, p)
    parent = f"projects/{p}"
    profiles = [pb.Profile(user_id=f"u{i}", email=f"User{i}@Example.com") for i in range(1, 5)]
    await stack.evaluator.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=parent, profiles=profiles), timeout=TIMEOUT
    )
    await ingest(stack, p, [event("e1", "u9", "Open", T0)])  # a user with events only

    marked = await stack.evaluator.SetTestUsers(
        pb.SetTestUsersRequest(parent=parent, user_ids=["u1", "u2", "ghost"], test_user=True),
        timeout=TIMEOUT,
    )
    assert marked.updated_count == 2 and list(marked.unknown_user_ids) == ["ghost"]
    # the system segments exist from the project's creation
    vip = await create(
        stack, p, "vip-list", dm.Definition(
            custom_list=dm.CustomListDefinition(identity_kind=dm.IDENTITY_KIND_EMAIL)
        ),
    )  # fmt: skip
    assert await count(stack, f"{parent}/segments/all-users") == (
        5,
        ["u1", "u2", "u3", "u4", "u9"],
    )
    assert await count(stack, f"{parent}/segments/test-users") == (2, ["u1", "u2"])

    csv = (
        b"email,note\r\n"
        b"user1@example.com,first\r\n"  # row 2: matched (case-insensitive)
        b'"USER3@example.com","say ""hi"""\r\n'  # row 3: matched
        b"nobody@example.com,x\r\n"  # row 4: unmatched
        b"not-an-email,y\r\n"  # row 5: malformed
    )
    header = pb.UploadCustomListRequest(
        header=pb.UploadCustomListHeader(segment=vip, has_header_row=True, identity_column=0)
    )
    chunks = [pb.UploadCustomListRequest(chunk=csv[i : i + 7]) for i in range(0, len(csv), 7)]
    report = await stack.evaluator.UploadCustomList(stream([header, *chunks]), timeout=TIMEOUT)
    assert (report.row_count, report.matched_count, report.unmatched_count,
            report.malformed_count) == (4, 2, 1, 1)  # fmt: skip
    assert list(report.unmatched_rows) == [4]
    assert [r.index for r in report.malformed_rows] == [5]
    assert report.malformed_rows[0].description
    assert await count(stack, vip) == (2, ["u1", "u3"])

    cohort = await create(
        stack, p, "cohort",
        dm.Definition(partner=dm.PartnerDefinition(partner="amplitude", external_cohort_id="c1")),
    )  # fmt: skip

    async def delta(
        delta_id: str, sequence: int, added: list[str], removed: list[str]
    ) -> tuple[bool, int]:
        r = await stack.evaluator.ApplyPartnerDelta(
            pb.ApplyPartnerDeltaRequest(segment=cohort, delta_id=delta_id, sequence=sequence,
                                        added_user_ids=added, removed_user_ids=removed),
            timeout=TIMEOUT,
        )  # fmt: skip
        return r.applied, r.member_count

    assert await delta("d1", 1, ["u1", "u2", "u9"], []) == (True, 3)
    assert await delta("d2", 2, [], ["u2"]) == (True, 2)
    assert await delta("d1", 1, ["u1", "u2", "u9"], []) == (False, 2)  # replayed: no change
    assert await count(stack, cohort) == (2, ["u1", "u9"])


# --- 5. failure paths -------------------------------------------------------------------------


async def test_failure_paths_carry_status_codes_and_details(stack: Stack) -> None:
    p = "fail"
    await new_project(stack, p)
    parent = f"projects/{p}"
    seg = await create(stack, p, "buyers", past(did("Buy")))
    await new_project(stack, "fail-other")
    await create(stack, "fail-other", "others", past(did("Buy")))  # a project that exists

    for missing in (f"{parent}/segments/nope", "projects/fail-other/segments/buyers"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.evaluator.CountSegment(
                pb.CountSegmentRequest(segment=missing), timeout=TIMEOUT
            )
        err = rich(caught.value)
        assert err.code == grpc.StatusCode.NOT_FOUND, missing
        assert err.info.reason == "NOT_FOUND"
        assert missing in err.message

    got = await ingest(
        stack, p, [event("e1", "u1", "Buy", T0), event("e2", "u2", "", T0),
                   event("e3", "u3", "Buy", T0)],
    )  # fmt: skip
    assert (got.accepted_count, got.duplicate_count, got.rejected_count) == (2, 0, 1)
    assert [(e.index, e.field) for e in got.errors] == [(1, "event_name")]
    assert got.errors[0].description
    assert await count(stack, seg) == (2, ["u1", "u3"])

    too_many = [f"u{i}" for i in range(10_001)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.evaluator.CheckMembership(
            pb.CheckMembershipRequest(segment=seg, user_ids=too_many), timeout=TIMEOUT
        )
    err = rich(caught.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == ["user_ids"]
    assert "10000" in err.violations[0][1].replace(",", "")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stack.evaluator.StreamLiveEntries(
            pb.StreamLiveEntriesRequest(parent=parent, resume_after="12x"), timeout=TIMEOUT
        ):
            pass
    err = rich(caught.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == ["resume_after"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stack.evaluator.StreamLiveEntries(
            pb.StreamLiveEntriesRequest(segment=seg), timeout=TIMEOUT
        ):
            pass
    err = rich(caught.value)
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION
    assert err.info.reason == "NOT_LIVE"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.evaluator.CountSegment(
            pb.CountSegmentRequest(segment=seg, live_window=dm.TimeWindow(today=dm.Today())),
            timeout=TIMEOUT,
        )
    err = rich(caught.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == ["live_window"]


async def test_unsaved_definition_cannot_reference_another_project(stack: Stack) -> None:
    await new_project(stack, "xproj-a")
    await new_project(stack, "xproj-b")
    theirs = await create(stack, "xproj-a", "buyers", past(did("Buy")))
    await ingest(stack, "xproj-b", [event("e1", "ub", "Buy", T0)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.evaluator.EstimateDefinition(
            pb.EstimateDefinitionRequest(
                parent="projects/xproj-b", definition=past(did("Buy"), include=[theirs])
            ),
            timeout=TIMEOUT,
        )
    # the definition service refuses such a reference when a segment is saved
    assert rich(caught.value).code in (
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_unsaved_definitions_get_the_definition_service_checks(stack: Stack) -> None:
    await new_project(stack, "unsaved")
    too_long = past(did("x" * 129))  # the compiler could run it; saving it is refused
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.evaluator.EstimateDefinition(
            pb.EstimateDefinitionRequest(parent="projects/unsaved", definition=too_long),
            timeout=TIMEOUT,
        )
    err = rich(caught.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == [
        "definition.past_behavior.root.did_event.event.event_name"
    ]
    assert "128" in err.violations[0][1]
