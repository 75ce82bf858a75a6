"""gRPC servicer: translates messages to use cases and back (DomainErrors map to statuses in
the shared interceptor)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc

from libs.common import metrics
from libs.common.errors import DomainError, InvalidArgument
from libs.model.definition import PartnerDefinition
from libs.model.definition_proto import (
    datetime_to_timestamp,
    definition_from_proto,
    instant_from_proto,
)
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from services.evaluator.application import Evaluator
from services.evaluator.audience_messages import table_chunks
from services.evaluator.domain.names import (
    check_user_id,
    parse_profile,
    parse_project,
    parse_segment,
)
from services.evaluator.domain.records import (
    EventBatch,
    Profile,
    RowError,
    profile_problems,
)
from services.evaluator.event_messages import say_what_was_stored, valid_events
from services.evaluator.grpc_figures import FigureRpcs
from services.evaluator.grpc_live import LiveRpcs
from services.evaluator.grpc_snapshots import SnapshotRpcs
from services.evaluator.live_messages import live_window
from services.evaluator.profile_messages import audience_member, profile_from_pb, profile_to_pb
from services.evaluator.uploads import upload_custom_list

Ctx = grpc.aio.ServicerContext[Any, Any]
K = TypeVar("K", int, str)
MAX_BATCH = 10_000
#: events validated between two steps of the batch being stored
DECODE_SLICE = 500
#: Events gathered from the messages that arrive while a batch is stored, stored together next.
COALESCE_EVENTS = 50_000


def _as_of(msg: Any, field: str = "as_of") -> datetime | None:
    return instant_from_proto(getattr(msg, field), field) if msg.HasField(field) else None


def _row_error(e: RowError) -> pb.RowError:
    return pb.RowError(index=e.index, field=e.field, description=e.description)


def _count_stored(out: pb.IngestEventsResponse, counts: tuple[int, int]) -> None:
    accepted, duplicates = counts
    out.accepted_count += accepted
    out.duplicate_count += duplicates
    metrics.EVENTS_INGESTED.labels("accepted").inc(accepted)
    metrics.EVENTS_INGESTED.labels("duplicate").inc(duplicates)


class EvaluatorServicer(
    LiveRpcs, FigureRpcs, SnapshotRpcs, pb_grpc.SegmentEvaluatorServiceServicer
):
    def __init__(self, evaluator: Evaluator) -> None:
        self.ev = evaluator

    async def IngestEvents(
        self, request_iterator: AsyncIterator[pb.IngestEventsRequest], context: Ctx
    ) -> pb.IngestEventsResponse:
        """Validates messages while the previous batch is being stored: at most one batch is in
        flight, and the messages that arrive meanwhile are stored together as the next batch
        (up to COALESCE_EVENTS events), in the order they arrived. The live engine matches each
        stored batch while the next one is stored; the call answers once all are matched."""
        out = pb.IngestEventsResponse()
        live = self.ev.live_chain()
        index = 0
        project: str | None = None
        pending = EventBatch()
        storing: asyncio.Task[tuple[int, int]] | None = None

        async def store_pending(wait: bool) -> None:
            nonlocal storing, pending
            if storing is not None:
                if not wait and not storing.done() and len(pending) < COALESCE_EVENTS:
                    return  # keep gathering while the batch in flight is stored
                _count_stored(out, await storing)
                storing = None
            if pending and project is not None:
                batch, pending = pending, EventBatch()
                storing = asyncio.create_task(self.ev.store_events(project, batch, live))

        try:
            async for request in request_iterator:
                parent = parse_project(request.parent)
                if project is not None and parent != project:
                    raise InvalidArgument.field("parent", "must be the same in every message")
                project = parent
                if len(request.events) > MAX_BATCH:
                    raise InvalidArgument.field("events", f"at most {MAX_BATCH} per message")
                for start in range(0, len(request.events), DECODE_SLICE):
                    if start:
                        await asyncio.sleep(0)  # let the batch in flight take its next step
                    sliced = request.events[start : start + DECODE_SLICE]
                    valid_events(sliced, index + start, out, pending)
                index += len(request.events)
                await store_pending(wait=False)
            while storing is not None or pending:
                await store_pending(wait=True)
            await live.finish()
        except DomainError as exc:
            # A later message failed: the batch in flight still finishes (holding the
            # project's lock until it has), and the error says how much of the stream is stored.
            failure = exc
            if storing is not None:
                try:
                    _count_stored(out, await asyncio.shield(storing))
                except DomainError as stored:
                    failure = stored  # its own failure is the one reported
                finally:
                    storing = None
            say_what_was_stored(failure, out)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            if storing is not None:
                # A later message failed (or the call ended): the batch in flight still finishes,
                # holding the project's lock until it has; its own failure is the one reported.
                await asyncio.shield(storing)
            await asyncio.shield(live.close())
        metrics.EVENTS_INGESTED.labels("rejected").inc(out.rejected_count)
        return out

    async def UpsertProfiles(
        self, request: pb.UpsertProfilesRequest, context: Ctx
    ) -> pb.UpsertProfilesResponse:
        project = parse_project(request.parent)
        if len(request.profiles) > MAX_BATCH:
            raise InvalidArgument.field("profiles", f"at most {MAX_BATCH}")
        out = pb.UpsertProfilesResponse()
        good: list[Profile] = []
        for i, msg in enumerate(request.profiles):
            try:
                profile = profile_from_pb(msg, f"profiles[{i}]")
            except InvalidArgument as exc:
                out.errors.extend(pb.RowError(index=i, field=v.field, description=v.description)
                                  for v in exc.violations)  # fmt: skip
                continue
            problems = profile_problems(profile)
            if problems:
                out.errors.extend(pb.RowError(index=i, field=f, description=d) for f, d in problems)
            else:
                good.append(profile)
        out.upserted_count = await self.ev.profiles.upsert(project, good, datetime.now(UTC))
        metrics.PROFILES_UPSERTED.labels("upserted").inc(out.upserted_count)
        metrics.PROFILES_UPSERTED.labels("rejected").inc(len(request.profiles) - len(good))
        await self.ev.profiles_written(project, [p.user_id for p in good])
        return out

    async def GetProfile(self, request: pb.GetProfileRequest, context: Ctx) -> pb.Profile:
        from libs.common.errors import NotFound

        project, user_id = parse_profile(request.name)
        found = await self.ev.profiles.get_many(project, [user_id])
        if user_id not in found:
            raise NotFound(f"profile {request.name} not found")
        return profile_to_pb(project, found[user_id])

    async def SetTestUsers(
        self, request: pb.SetTestUsersRequest, context: Ctx
    ) -> pb.SetTestUsersResponse:
        project = parse_project(request.parent)
        ids = list(request.user_ids)
        if not ids or len(ids) > MAX_BATCH:
            raise InvalidArgument.field("user_ids", f"give 1 to {MAX_BATCH} user ids")
        changed, unknown = await self.ev.profiles.set_test_users(
            project, ids, request.test_user, datetime.now(UTC)
        )
        return pb.SetTestUsersResponse(updated_count=changed, unknown_user_ids=unknown)

    async def UploadCustomList(
        self, request_iterator: AsyncIterator[pb.UploadCustomListRequest], context: Ctx
    ) -> pb.UploadCustomListResponse:
        iterator = aiter(request_iterator)
        first = await anext(iterator, None)
        if first is None or first.WhichOneof("kind") != "header":
            raise InvalidArgument.field("header", "the first message must carry the header")
        header = first.header

        async def chunks() -> AsyncIterator[bytes]:
            async for msg in iterator:
                if msg.WhichOneof("kind") != "chunk":
                    raise InvalidArgument.field("chunk", "only the first message is a header")
                yield msg.chunk

        report = await upload_custom_list(
            self.ev, header.segment, header.has_header_row, header.identity_column, chunks(),
            allow_empty=header.allow_empty,
        )  # fmt: skip
        return pb.UploadCustomListResponse(
            row_count=report.row_count, matched_count=report.matched_count,
            unmatched_count=report.unmatched_count, malformed_count=report.malformed_count,
            unmatched_rows=report.unmatched_rows,
            malformed_rows=[_row_error(e) for e in report.malformed_rows],
        )  # fmt: skip

    async def ApplyPartnerDelta(
        self, request: pb.ApplyPartnerDeltaRequest, context: Ctx
    ) -> pb.ApplyPartnerDeltaResponse:
        if not request.delta_id or len(request.delta_id) > 256:
            raise InvalidArgument.field("delta_id", "1 to 256 characters")
        for field, ids in (("added_user_ids", request.added_user_ids),
                           ("removed_user_ids", request.removed_user_ids)):  # fmt: skip
            for i, u in enumerate(ids):
                problem = check_user_id(u)
                if problem:
                    raise InvalidArgument.field(f"{field}[{i}]", problem)
        both = set(request.added_user_ids) & set(request.removed_user_ids)
        if both:
            raise InvalidArgument.field("removed_user_ids", f"also added: {sorted(both)[:5]}")
        name, _ = await self.ev.list_segment(request.segment, PartnerDefinition)
        lists = self.ev.lists
        async with self.ev.locks(f"list:{name.name}"):
            applied = not await lists.delta_applied(name.project, name.name, request.delta_id)
            if applied:
                await lists.apply_delta(
                    name.project, name.name, request.delta_id, request.sequence,
                    list(request.added_user_ids), list(request.removed_user_ids),
                    datetime.now(UTC),
                )  # fmt: skip
            count = await lists.member_count(name.project, name.name)
        return pb.ApplyPartnerDeltaResponse(applied=applied, member_count=count)

    async def CountSegment(
        self, request: pb.CountSegmentRequest, context: Ctx
    ) -> pb.CountSegmentResponse:
        r = await self.ev.count_segment(
            request.segment, _as_of(request), request.sample_size, live_window(request)
        )
        return pb.CountSegmentResponse(
            user_count=r.user_count, sample_user_ids=r.sample, as_of=datetime_to_timestamp(r.as_of)
        )

    async def EstimateDefinition(
        self, request: pb.EstimateDefinitionRequest, context: Ctx
    ) -> pb.EstimateDefinitionResponse:
        project = parse_project(request.parent)
        if not request.HasField("definition"):
            raise InvalidArgument.field("definition", "is required")
        definition = definition_from_proto(request.definition)
        r = await self.ev.estimate(project, definition, _as_of(request), request.sample_size)
        return pb.EstimateDefinitionResponse(
            user_count=r.user_count, sample_user_ids=r.sample, as_of=datetime_to_timestamp(r.as_of)
        )

    async def ExplainSegment(
        self, request: pb.ExplainSegmentRequest, context: Ctx
    ) -> pb.ExplainSegmentResponse:
        if request.segment:
            compiled, _ = await self.ev.compile_saved(request.segment, _as_of(request))
        elif request.parent and request.HasField("definition"):
            compiled, _ = await self.ev.compile_unsaved(
                parse_project(request.parent),
                definition_from_proto(request.definition),
                _as_of(request),
            )
        else:
            raise InvalidArgument.field("segment", "give a segment, or a parent and a definition")
        plan = await self.ev.explain(compiled)
        params = {
            k: v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
            for k, v in compiled.params.items()
        }
        return pb.ExplainSegmentResponse(sql=compiled.sql, parameters=params, plan=plan)

    async def StreamAudience(
        self, request: pb.StreamAudienceRequest, context: Ctx
    ) -> AsyncIterator[pb.StreamAudienceResponse]:
        size = request.chunk_size or 10_000
        if not 1 <= size <= 100_000:
            raise InvalidArgument.field("chunk_size", "must be 1 to 100,000")
        fields = list(request.profile_fields)
        project = parse_segment(request.segment).project
        async for ids in self.ev.audience(
            request.segment, _as_of(request), request.snapshot_version, size, live_window(request)
        ):
            out = pb.StreamAudienceResponse(user_ids=ids)
            if fields:
                profiles = await self.ev.profiles.get_many(project, ids)
                for user_id in ids:
                    out.members.append(audience_member(user_id, profiles.get(user_id), fields))
            yield out

    async def StreamAudienceTable(
        self, request: pb.StreamAudienceTableRequest, context: Ctx
    ) -> AsyncIterator[pb.StreamAudienceTableResponse]:
        size = request.chunk_size or 10_000
        if not 1 <= size <= 100_000:
            raise InvalidArgument.field("chunk_size", "must be 1 to 100,000")
        table = await self.ev.audience_table(
            request.segment, _as_of(request), list(request.fields), size
        )
        yield pb.StreamAudienceTableResponse(
            total_count=table.total_count, as_of=datetime_to_timestamp(table.as_of)
        )
        async with contextlib.aclosing(table.batches) as batches:
            async for batch in batches:
                for chunk in table_chunks(batch):
                    yield chunk

    async def CheckMembership(
        self, request: pb.CheckMembershipRequest, context: Ctx
    ) -> pb.CheckMembershipResponse:
        ids = list(request.user_ids)
        as_of = _as_of(request)
        if as_of is not None and request.snapshot_version:
            raise InvalidArgument.field(
                "as_of", "a snapshot is at its own as_of: give as_of or snapshot_version"
            )
        found, version = await self.ev.check_membership(
            request.segment, ids, request.snapshot_version, request.realtime, live_window(request),
            as_of,
        )  # fmt: skip
        return pb.CheckMembershipResponse(
            is_member=[u in found for u in ids],
            member_user_ids=[u for u in dict.fromkeys(ids) if u in found],
            snapshot_version=version,
        )
