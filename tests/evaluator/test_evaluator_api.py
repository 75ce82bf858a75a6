"""The evaluator's RPCs through its servicer, on both ClickHouse adapters (real stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.clickhouse.port import ClickHouse
from libs.common.errors import FailedPrecondition, NotFound, Unavailable
from libs.model.definition import (
    CustomListDefinition,
    IdentityKind,
    PartnerDefinition,
    SystemDefinition,
    SystemSegmentKind,
)
from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.adapters.list_store import ListStore
from services.evaluator.application import Evaluator
from services.evaluator.domain.compiler import EvaluationContext, compile_members
from services.evaluator.grpc_api import EvaluatorServicer

from .support import StaticSegments, did, event, stream

P = "projects/p1"
T0 = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
SEG = "projects/p1/segments/buyers"
LIST = "projects/p1/segments/vip"
PARTNER = "projects/p1/segments/cohort"
ALL = "projects/p1/segments/all-users"
HOSTILE_USER = "u'\"\\ ; DROP TABLE events; -- ü😀"
HOSTILE_EVENT = "Charged' OR 1=1 --\\"
CTX: Any = None  # the servicer does not use its context


@pytest.fixture
def api(ch: ClickHouse) -> EvaluatorServicer:
    segments = StaticSegments(
        {
            SEG: did(HOSTILE_EVENT),
            LIST: CustomListDefinition(IdentityKind.EMAIL),
            PARTNER: PartnerDefinition("amplitude", "c1"),
            ALL: SystemDefinition(SystemSegmentKind.ALL_USERS),
        }
    )
    return EvaluatorServicer(Evaluator(ch, segments))


async def ingest(api: EvaluatorServicer, *events: pb.Event) -> pb.IngestEventsResponse:
    batches = [pb.IngestEventsRequest(parent=P, events=list(events[i : i + 2]))
               for i in range(0, len(events), 2)]  # fmt: skip
    return await api.IngestEvents(stream(batches), CTX)


async def test_ingest_is_idempotent_and_reports_bad_events(api: EvaluatorServicer) -> None:
    good = [event(f"e{i}", HOSTILE_USER if i % 2 else f"u{i}", HOSTILE_EVENT, T0) for i in range(5)]
    bad = [
        event("", "u9", "X", T0),
        pb.Event(event_id="nt", user_id="u9", event_name="X"),
        event("e-bad-prop", "u9", "X", T0, **{"bad\nname": 1}),
    ]
    first = await ingest(api, *good, *bad, good[0])
    assert (first.accepted_count, first.duplicate_count, first.rejected_count) == (5, 1, 3)
    assert [(e.index, e.field) for e in first.errors] == [
        (5, "event_id"), (6, "event_time"), (7, "properties['bad\\nname']"),
    ]  # fmt: skip
    again = await ingest(api, *good)
    assert (again.accepted_count, again.duplicate_count) == (0, 5)
    count = await api.CountSegment(pb.CountSegmentRequest(segment=SEG, sample_size=10), CTX)
    assert count.user_count == 4
    assert HOSTILE_USER in count.sample_user_ids


async def test_profiles_latest_write_wins_and_test_users(api: EvaluatorServicer) -> None:
    def profile(email: str, when: datetime) -> pb.Profile:
        return pb.Profile(
            user_id=HOSTILE_USER,
            email=email,
            update_time=datetime_to_timestamp(when),
            properties={"city": dm.Value(string_value="New 'York'")},
        )

    await api.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=P, profiles=[profile("new@x.io", T0)]), CTX
    )
    older = profile("old@x.io", T0 - timedelta(days=1))
    await api.UpsertProfiles(pb.UpsertProfilesRequest(parent=P, profiles=[older]), CTX)
    name = f"{P}/profiles/{HOSTILE_USER}"
    got = await api.GetProfile(pb.GetProfileRequest(name=name), CTX)
    assert got.email == "new@x.io" and got.properties["city"].string_value == "New 'York'"
    marked = await api.SetTestUsers(
        pb.SetTestUsersRequest(parent=P, user_ids=[HOSTILE_USER, "ghost"], test_user=True),
        CTX,
    )
    assert marked.updated_count == 1 and list(marked.unknown_user_ids) == ["ghost"]
    got = await api.GetProfile(pb.GetProfileRequest(name=name), CTX)
    assert got.test_user and got.email == "new@x.io"
    with pytest.raises(NotFound):
        await api.GetProfile(pb.GetProfileRequest(name=f"{P}/profiles/nobody"), CTX)
    bad = await api.UpsertProfiles(
        pb.UpsertProfilesRequest(parent=P, profiles=[pb.Profile(user_id="", phone="123")]),
        CTX,
    )
    assert bad.upserted_count == 0 and {e.field for e in bad.errors} == {"user_id", "phone"}


async def test_custom_list_upload_reports_rows(api: EvaluatorServicer) -> None:
    profiles = [pb.Profile(user_id=f"u{i}", email=f"User{i}@Example.com") for i in range(3)]
    await api.UpsertProfiles(pb.UpsertProfilesRequest(parent=P, profiles=profiles), CTX)
    csv = (
        b'email,name\r\nuser0@example.com,"Zero, the first"\r\n"USER1@example.com","say ""1"""\r\n'
        b'nobody@example.com,x\r\nnot-an-email,y\r\nbroken"quote,z\r\n'
    )

    def upload(data: bytes, size: int) -> Any:
        header = pb.UploadCustomListRequest(
            header=pb.UploadCustomListHeader(segment=LIST, has_header_row=True, identity_column=0)
        )
        chunks = [pb.UploadCustomListRequest(chunk=data[i : i + size])
                  for i in range(0, len(data), size)]  # fmt: skip
        return api.UploadCustomList(stream([header, *chunks]), CTX)

    report = await upload(csv, 5)
    assert (report.row_count, report.matched_count, report.unmatched_count,
            report.malformed_count) == (5, 2, 1, 2)  # fmt: skip
    assert list(report.unmatched_rows) == [4]
    assert [r.index for r in report.malformed_rows] == [5, 6]
    count = await api.CountSegment(pb.CountSegmentRequest(segment=LIST, sample_size=5), CTX)
    assert sorted(count.sample_user_ids) == ["u0", "u1"]
    # a new upload replaces the list
    await upload(b"email\nuser2@example.com\n", 3)
    count = await api.CountSegment(pb.CountSegmentRequest(segment=LIST, sample_size=5), CTX)
    assert list(count.sample_user_ids) == ["u2"]
    with pytest.raises(FailedPrecondition):
        await api.ApplyPartnerDelta(pb.ApplyPartnerDeltaRequest(segment=LIST, delta_id="d"), CTX)


async def test_an_upload_cut_off_part_way_leaves_the_previous_list_whole(
    api: EvaluatorServicer, ch: ClickHouse
) -> None:
    for start in range(0, 12_000, 5_000):
        profiles = [
            pb.Profile(user_id=f"u{i}", email=f"u{i}@example.com")
            for i in range(start, min(start + 5_000, 12_000))
        ]
        await api.UpsertProfiles(pb.UpsertProfilesRequest(parent=P, profiles=profiles), CTX)
    header = pb.UploadCustomListRequest(
        header=pb.UploadCustomListHeader(segment=LIST, identity_column=0)
    )

    async def members() -> int:
        count = await api.CountSegment(pb.CountSegmentRequest(segment=LIST), CTX)
        return count.user_count

    first = pb.UploadCustomListRequest(chunk=b"u0@example.com\nu1@example.com\n")
    await api.UploadCustomList(stream([header, first]), CTX)
    assert await members() == 2

    async def broken() -> Any:
        yield header
        # more than one batch of members is written before the stream breaks
        emails = "".join(f"u{i}@example.com\n" for i in range(11_000))
        yield pb.UploadCustomListRequest(chunk=emails.encode())
        raise Unavailable("client went away")

    with pytest.raises(Unavailable):
        await api.UploadCustomList(broken(), CTX)
    assert await members() == 2
    second = pb.UploadCustomListRequest(chunk=b"u5@example.com\nu6@example.com\nu7@example.com")
    await api.UploadCustomList(stream([header, second]), CTX)
    assert await members() == 3
    rows = await ch.query(
        "SELECT DISTINCT version FROM list_upload_members WHERE segment = {s:String}", {"s": LIST}
    )
    assert len(rows) == 1  # older and unfinished versions are deleted


async def test_partner_deltas_replay_safe_and_ordered(api: EvaluatorServicer) -> None:
    def delta(did: str, seq: int, add: list[str], rem: list[str]) -> Any:
        return api.ApplyPartnerDelta(
            pb.ApplyPartnerDeltaRequest(segment=PARTNER, delta_id=did, sequence=seq,
                                        added_user_ids=add, removed_user_ids=rem), CTX
        )  # fmt: skip

    first = await delta("d1", 1, ["a", "b", HOSTILE_USER], [])
    assert first.applied and first.member_count == 3
    second = await delta("d3", 3, [], ["a"])
    assert second.member_count == 2
    late = await delta("d2", 2, ["a"], ["b"])  # older sequence: cannot re-add a, can't beat b's 1?
    assert late.applied
    replay = await delta("d1", 1, ["a", "b", HOSTILE_USER], [])
    assert not replay.applied
    count = await api.CountSegment(pb.CountSegmentRequest(segment=PARTNER, sample_size=5), CTX)
    assert sorted(count.sample_user_ids) == sorted([HOSTILE_USER])


async def test_snapshots_versions_changes_and_membership(api: EvaluatorServicer) -> None:
    await ingest(api, *[event(f"e{i}", f"u{i}", HOSTILE_EVENT, T0) for i in range(3)])
    s1 = await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=SEG), CTX)
    assert (s1.version, s1.user_count) == (1, 3)
    await ingest(api, event("e9", "u9", HOSTILE_EVENT, T0))
    s2 = await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=SEG), CTX)
    assert (s2.version, s2.user_count) == (2, 4)
    changes = await api.ListSnapshotChanges(
        pb.ListSnapshotChangesRequest(parent=SEG, from_version=1, to_version=2),
        CTX,
    )
    assert [(c.user_id, c.kind) for c in changes.changes] == [("u9", pb.CHANGE_KIND_ENTERED)]
    back = await api.ListSnapshotChanges(
        pb.ListSnapshotChangesRequest(parent=SEG, from_version=2, to_version=1, page_size=1),
        CTX,
    )
    assert [c.kind for c in back.changes] == [pb.CHANGE_KIND_LEFT]
    ids = ["u0", "u9", "nobody"]
    snap = await api.CheckMembership(
        pb.CheckMembershipRequest(segment=SEG, user_ids=ids, snapshot_version=1), CTX
    )
    assert list(snap.is_member) == [True, False, False] and snap.snapshot_version == 1
    latest = await api.CheckMembership(pb.CheckMembershipRequest(segment=SEG, user_ids=ids), CTX)
    assert list(latest.is_member) == [True, True, False] and latest.snapshot_version == 2
    await ingest(api, event("e10", "nobody", HOSTILE_EVENT, T0))
    live = await api.CheckMembership(
        pb.CheckMembershipRequest(segment=SEG, user_ids=ids, realtime=True), CTX
    )
    assert list(live.is_member) == [True, True, True] and live.snapshot_version == 0
    for _ in range(3):
        await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=SEG), CTX)
    listed = await api.ListSnapshots(pb.ListSnapshotsRequest(parent=SEG, page_size=2), CTX)
    assert [s.version for s in listed.snapshots] == [5, 4] and listed.next_page_token
    rest = await api.ListSnapshots(
        pb.ListSnapshotsRequest(parent=SEG, page_token=listed.next_page_token),
        CTX,
    )
    assert [s.version for s in rest.snapshots] == [3]  # only the last three are kept
    with pytest.raises(NotFound):
        await api.GetSnapshot(pb.GetSnapshotRequest(name=f"{SEG}/snapshots/1"), CTX)


class _FailAfterMembers:
    """Passes everything to the real executor, then fails right after a snapshot's members
    were written (as a crash between the two writes would)."""

    def __init__(self, ch: ClickHouse) -> None:
        self._ch = ch
        self.fail = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def command(self, sql: str, params: Any = None, settings: Any = None) -> None:
        await self._ch.command(sql, params, settings)
        if self.fail and "INSERT INTO snapshot_members" in sql:
            raise Unavailable("connection lost")


async def test_failed_snapshot_leaves_previous_version_serving(ch: ClickHouse) -> None:
    flaky = _FailAfterMembers(ch)
    api = EvaluatorServicer(Evaluator(flaky, StaticSegments({SEG: did("Buy")})))
    await ingest(api, event("e1", "u1", "Buy", T0))
    await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=SEG), CTX)
    await ingest(api, event("e2", "u2", "Buy", T0))
    flaky.fail = True
    with pytest.raises(Unavailable):
        await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=SEG), CTX)
    flaky.fail = False
    listed = await api.ListSnapshots(pb.ListSnapshotsRequest(parent=SEG), CTX)
    assert [(s.version, s.user_count) for s in listed.snapshots] == [(1, 1)]
    check = await api.CheckMembership(
        pb.CheckMembershipRequest(segment=SEG, user_ids=["u1", "u2"]), CTX
    )
    assert list(check.is_member) == [True, False] and check.snapshot_version == 1
    chunks = [
        c
        async for c in api.StreamAudience(
            pb.StreamAudienceRequest(segment=SEG, snapshot_version=1), CTX
        )
    ]
    assert [list(c.user_ids) for c in chunks] == [["u1"]]
    again = await api.CreateSnapshot(pb.CreateSnapshotRequest(parent=SEG), CTX)
    assert again.version == 2 and again.user_count == 2


async def test_stream_audience_in_chunks_with_profile_fields(api: EvaluatorServicer) -> None:
    await ingest(api, *[event(f"e{i}", f"u{i:02d}", HOSTILE_EVENT, T0) for i in range(25)])
    await api.UpsertProfiles(pb.UpsertProfilesRequest(parent=P, profiles=[
        pb.Profile(user_id="u03", email="three@x.io", properties={"tier": dm.Value(number_value=3)})
    ]), CTX)  # fmt: skip
    request = pb.StreamAudienceRequest(segment=SEG, chunk_size=10, profile_fields=["email", "tier"])
    chunks = [c async for c in api.StreamAudience(request, CTX)]
    assert [len(c.user_ids) for c in chunks] == [10, 10, 5]
    ids = sorted(u for c in chunks for u in c.user_ids)
    assert ids == [f"u{i:02d}" for i in range(25)]
    members = {m.user_id: m for c in chunks for m in c.members}
    assert members["u03"].fields["email"].string_value == "three@x.io"
    assert members["u03"].fields["tier"].number_value == 3


async def test_explain_and_live_entries(api: EvaluatorServicer) -> None:
    out = await api.ExplainSegment(pb.ExplainSegmentRequest(segment=SEG), CTX)
    assert "events" in out.sql and HOSTILE_EVENT not in out.sql
    assert HOSTILE_EVENT in out.parameters.values()
    assert "Read" in out.plan
    with pytest.raises(FailedPrecondition) as caught:  # this evaluator has no live engine
        async for _ in api.StreamLiveEntries(pb.StreamLiveEntriesRequest(parent=P), CTX):
            pass
    assert caught.value.reason == "LIVE_SEGMENTS_NOT_AVAILABLE"


@pytest.mark.parametrize("last_started_finishes_first", [True, False])
async def test_of_two_overlapping_uploads_the_one_started_last_is_the_list(
    ch: ClickHouse, last_started_finishes_first: bool
) -> None:
    """Two processes uploading one list at once (each holds only its own lock)."""
    lists = ListStore(ch)
    seg, now = "projects/p1/segments/overlap", datetime(2024, 1, 1, tzinfo=UTC)
    first = await lists.next_upload_version("p1", seg)
    second = await lists.next_upload_version("p1", seg)
    assert first < second
    await lists.write_upload("p1", seg, first, ["a", "b"])
    await lists.write_upload("p1", seg, second, ["c"])
    order = (second, first) if last_started_finishes_first else (first, second)
    for version in order:
        await lists.finish_upload("p1", seg, version, now)
    compiled = compile_members(
        CustomListDefinition(IdentityKind.USER_ID),
        EvaluationContext("p1", now, "UTC"),
        segment_name=seg,
    )
    assert await ch.query(compiled.sql, compiled.params) == [("c",)]
