"""The evaluator's use cases, over its stores and the definition service (no gRPC types)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from libs.clickhouse.port import ClickHouse
from libs.common.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from libs.model.definition import (
    CustomListDefinition,
    Definition,
    IdentityKind,
    LiveDefinition,
    PartnerDefinition,
    TimeWindow,
    definition_references,
)
from services.evaluator.adapters.event_store import EventStore
from services.evaluator.adapters.list_store import ListStore
from services.evaluator.adapters.profile_store import ProfileStore
from services.evaluator.adapters.project_locks import ProjectLocks
from services.evaluator.adapters.snapshot_cache import DEFAULT_CACHED_MEMBERS, DEFAULT_CHECK_TTL
from services.evaluator.adapters.snapshot_store import SnapshotInfo, SnapshotStore
from services.evaluator.domain.audience_table import (
    audience_table_query,
    check_fields,
    count_query,
)
from services.evaluator.domain.compiler import CompiledQuery, EvaluationContext, compile_members
from services.evaluator.domain.figures import Figures
from services.evaluator.domain.names import SegmentName, parse_segment
from services.evaluator.domain.ports import ResolvedSegment, SegmentSource
from services.evaluator.domain.records import EventBatch
from services.evaluator.figures import compute_figures
from services.evaluator.live.engine import LiveChain, LiveEngine
from services.evaluator.live.reading import EntryWindow, entry_window, window_members

MAX_SAMPLE = 1000
MAX_MEMBERSHIP_IDS = 10_000


@dataclass(frozen=True)
class CountResult:
    user_count: int
    sample: list[str]
    as_of: datetime


@dataclass(frozen=True)
class AudienceTable:
    """A segment's members with fields of their profiles (see domain.audience_table): the
    member count, the instant evaluated, and the record batches, read as they are iterated."""

    total_count: int
    as_of: datetime
    batches: AsyncGenerator[pa.RecordBatch, None]


class Evaluator:
    def __init__(
        self,
        ch: ClickHouse,
        segments: SegmentSource,
        snapshots_kept: int = 3,
        cached_members: int = DEFAULT_CACHED_MEMBERS,
        snapshot_check_ttl: float = DEFAULT_CHECK_TTL,
        live: LiveEngine | None = None,
    ) -> None:
        self.ch = ch
        #: the live engine; None: live segments are not evaluated (and answer as before)
        self.live = live
        self.segments = segments
        self.locks = ProjectLocks()
        self.events = EventStore(ch)
        self.profiles = ProfileStore(ch, self.locks)
        self.lists = ListStore(ch)
        # membership checks against snapshots use an in-process cache of up to `cached_members`
        # members, and trust which version is the latest for `snapshot_check_ttl` seconds unless
        # this process changed it (see snapshot_store)
        self.snapshots = SnapshotStore(ch, snapshots_kept, cached_members, snapshot_check_ttl)

    # -- compiling ----------------------------------------------------------------------
    async def _context(
        self, project: str, as_of: datetime | None, resolved: ResolvedSegment | None
    ) -> EvaluationContext:
        return await self.context(project, as_of, resolved.references if resolved else {})

    async def context(
        self, project: str, as_of: datetime | None, references: Mapping[str, Definition]
    ) -> EvaluationContext:
        """The context of an evaluation as of `as_of` (default now) that may reference
        `references` (segment definitions by resource name)."""
        zone = await self.segments.time_zone(project)
        instant = (as_of or datetime.now(UTC)).astimezone(UTC)
        # profiles changed after the instant: read them as they were then
        latest = await self.profiles.latest_update(project)
        return EvaluationContext(
            project=project,
            as_of=instant,
            time_zone=zone,
            segments=dict(references),
            profiles_as_of=latest is not None and latest > instant,
        )

    async def compile_saved(
        self, segment: str, as_of: datetime | None, user_ids: Sequence[str] | None = None
    ) -> tuple[CompiledQuery, EvaluationContext]:
        name = parse_segment(segment)
        resolved = await self.segments.resolve(name.name)
        return await self._compile_resolved(name, resolved, as_of, user_ids)

    async def _compile_resolved(
        self,
        name: SegmentName,
        resolved: ResolvedSegment,
        as_of: datetime | None,
        user_ids: Sequence[str] | None = None,
    ) -> tuple[CompiledQuery, EvaluationContext]:
        ctx = await self._context(name.project, as_of, resolved)
        compiled = compile_members(
            resolved.definition, ctx, user_ids=user_ids, segment_name=name.name
        )
        return compiled, ctx

    async def compile_unsaved(
        self, project: str, definition: Definition, as_of: datetime | None
    ) -> tuple[CompiledQuery, EvaluationContext]:
        if isinstance(definition, CustomListDefinition | PartnerDefinition):
            kind = "custom_list" if isinstance(definition, CustomListDefinition) else "partner"
            raise InvalidArgument(
                f"definition.{kind}: a list segment has members only once saved (and its list "
                "uploaded): create the segment first, then count or explain it by name",
                violations=[
                    FieldViolation(
                        f"definition.{kind}",
                        "a list segment must be saved first: its members are stored under its name",
                    )
                ],
                reason="LIST_SEGMENT_NOT_SAVED",
            )
        await self.segments.validate(project, definition)
        references: dict[str, Definition] = {}
        for ref in definition_references(definition):
            name = parse_segment(ref, "definition")
            if name.project != project:
                raise InvalidArgument.field(
                    "definition", f"references {ref}, which is not a segment of projects/{project}"
                )
            resolved = await self.segments.resolve(name.name)
            references.update(resolved.references)
            references[ref] = resolved.definition
        ctx = await self._context(project, as_of, ResolvedSegment("", definition, references))
        return compile_members(definition, ctx), ctx

    # -- counting -----------------------------------------------------------------------
    async def _count(self, compiled: CompiledQuery, sample_size: int) -> tuple[int, list[str]]:
        if not 0 <= sample_size <= MAX_SAMPLE:
            raise InvalidArgument.field("sample_size", f"must be 0 to {MAX_SAMPLE}")
        rows = await self.ch.query(
            # generated SQL text; every value in it is a bound parameter
            "SELECT count(), groupArray(1000)(user_id) FROM (" + compiled.sql + ")",  # noqa: S608
            compiled.params,
        )
        count, sample = rows[0]
        return int(count), sorted(sample)[:sample_size]

    async def count_segment(
        self,
        segment: str,
        as_of: datetime | None,
        sample_size: int,
        live_window: TimeWindow | None = None,
    ) -> CountResult:
        name = parse_segment(segment)
        resolved = await self.segments.resolve(name.name)
        window = await self._live_window(name, resolved, as_of, live_window)
        if window is not None:
            if not 0 <= sample_size <= MAX_SAMPLE:
                raise InvalidArgument.field("sample_size", f"must be 0 to {MAX_SAMPLE}")
            assert self.live is not None
            store = self.live.store
            count = await store.member_count(name.project, name.segment_id, window.start,
                                             window.end)  # fmt: skip
            sample = await store.member_ids(
                name.project, name.segment_id, window.start, window.end, limit=sample_size
            )
            return CountResult(count, sample if sample_size else [], window.end)
        compiled, ctx = await self._compile_resolved(name, resolved, as_of)
        count, sample = await self._count(compiled, sample_size)
        return CountResult(count, sample, ctx.as_of)

    async def _live_window(
        self,
        name: SegmentName,
        resolved: ResolvedSegment,
        as_of: datetime | None,
        window: TimeWindow | None,
    ) -> EntryWindow | None:
        """The entry window a live segment is answered from (None: not answered from entries)."""
        if not isinstance(resolved.definition, LiveDefinition) or self.live is None:
            if window is not None:
                raise InvalidArgument.field("live_window", "applies to live segments only")
            return None
        zone = await self.segments.time_zone(name.project)
        return entry_window(window, (as_of or self.live.clock()).astimezone(UTC), zone)

    async def estimate(
        self, project: str, definition: Definition, as_of: datetime | None, sample_size: int
    ) -> CountResult:
        compiled, ctx = await self.compile_unsaved(project, definition, as_of)
        count, sample = await self._count(compiled, sample_size)
        return CountResult(count, sample, ctx.as_of)

    async def compute_figures(
        self,
        project: str,
        segments: Sequence[str],
        as_of: datetime | None,
        entered_since: datetime | None,
    ) -> tuple[datetime, list[Figures | DomainError]]:
        """Each segment's figures as of one instant (see `figures`), or the domain error that
        kept it from being computed; the instant evaluated."""
        return await compute_figures(self, project, segments, as_of, entered_since)

    async def explain(self, compiled: CompiledQuery) -> str:
        plan = await self.ch.query("EXPLAIN PLAN indexes = 1 " + compiled.sql, compiled.params)
        return "\n".join(str(r[0]) for r in plan)

    # -- audience and membership --------------------------------------------------------
    async def audience(
        self,
        segment: str,
        as_of: datetime | None,
        snapshot_version: int,
        chunk_size: int,
        live_window: TimeWindow | None = None,
    ) -> AsyncIterator[list[str]]:
        name = parse_segment(segment)
        window = None
        if not snapshot_version:
            resolved = await self.segments.resolve(name.name)
            window = await self._live_window(name, resolved, as_of, live_window)
        if window is not None:
            assert self.live is not None
            pages = window_members(self.live, name.project, name.segment_id, window)
            blocks: AsyncIterator[Any] = ([(u,) for u in page] async for page in pages)
        elif snapshot_version:
            await self.snapshots.get(name.project, name.name, snapshot_version)
            blocks = self.snapshots.stream_members(name.project, name.name, snapshot_version)
        else:
            compiled, _ = await self._compile_resolved(name, resolved, as_of)
            blocks = self.ch.query_stream(compiled.sql, compiled.params)
        pending: list[str] = []
        async for block in blocks:
            pending.extend(r[0] for r in block)
            while len(pending) >= chunk_size:
                yield pending[:chunk_size]
                del pending[:chunk_size]
        if pending:
            yield pending

    async def audience_table(
        self, segment: str, as_of: datetime | None, fields: Sequence[str], chunk_size: int
    ) -> AudienceTable:
        """The members as of one instant with `fields`, in user id order, `chunk_size` rows per
        block (the count is a second evaluation as of the same instant)."""
        check_fields(fields)
        compiled, ctx = await self.compile_saved(segment, as_of)
        counted = count_query(compiled)
        rows = await self.ch.query(counted.sql, counted.params)
        table = audience_table_query(compiled, ctx, fields)
        batches = self.ch.query_stream_arrow(
            table.sql, table.params, settings={"max_block_size": chunk_size}
        )
        return AudienceTable(int(rows[0][0]), ctx.as_of, batches)

    async def check_membership(
        self,
        segment: str,
        user_ids: Sequence[str],
        snapshot_version: int,
        realtime: bool,
        live_window: TimeWindow | None = None,
        as_of: datetime | None = None,
    ) -> tuple[set[str], int]:
        """The members among `user_ids`, and the snapshot version answering (0: evaluated in
        real time). With `as_of` the segment is evaluated at that instant."""
        if not user_ids or len(user_ids) > MAX_MEMBERSHIP_IDS:
            raise InvalidArgument.field("user_ids", f"give 1 to {MAX_MEMBERSHIP_IDS} user ids")
        name = parse_segment(segment)
        if self.live is not None and not snapshot_version:
            resolved = await self.segments.resolve(name.name)
            window = await self._live_window(name, resolved, as_of, live_window)
            if window is not None:
                found: set[str] = set()
                unique = sorted(set(user_ids))
                for start in range(0, len(unique), 500):
                    found.update(await self.live.store.member_ids(
                        name.project, name.segment_id, window.start, window.end,
                        unique[start : start + 500],
                    ))  # fmt: skip
                return found, 0
        if not realtime and as_of is None:
            answer = await self.snapshots.check(name.project, name.name, snapshot_version, user_ids)
            if answer is not None:
                return answer
            if snapshot_version:
                raise NotFound(f"snapshot version {snapshot_version} of {name.name} not found")
        compiled, _ = await self.compile_saved(segment, as_of, user_ids=list(user_ids))
        rows = await self.ch.query(compiled.sql, compiled.params)
        return {r[0] for r in rows}, 0

    async def create_snapshot(self, segment: str, as_of: datetime | None) -> SnapshotInfo:
        name = parse_segment(segment, "parent")
        async with self.locks(f"snapshot:{name.name}"):
            compiled, ctx = await self.compile_saved(segment, as_of)
            version = await self.snapshots.next_version(name.project, name.name)
            return await self.snapshots.write(
                name.project, name.name, version, compiled.sql, compiled.params, ctx.as_of,
                datetime.now(UTC),
            )  # fmt: skip

    # -- ingest -------------------------------------------------------------------------
    async def store_events(
        self, project: str, batch: EventBatch, chain: LiveChain | None = None
    ) -> tuple[int, int]:
        """Stores a validated batch in the events store and has the live engine match it:
        through `chain`, starting before the batch is encoded and stored (the caller waits for
        the chain before answering, so that a crash in between makes the caller send the batch
        again), or after it is stored. The first event of each id is kept."""
        unique = batch.first_of_each_id()
        if chain is None:
            counts = await self.events.add_events(project, unique, len(batch))
            if self.live is not None:
                await self.live.on_events(project, unique)
            return counts
        stored = await chain.add(project, unique)
        try:
            counts = await self.events.add_events(project, unique, len(batch))
        except BaseException:
            stored.set_result(False)
            raise
        stored.set_result(True)
        return counts

    def live_chain(self) -> LiveChain:
        return LiveChain(self.live)

    async def profiles_written(self, project: str, user_ids: Sequence[str]) -> None:
        if self.live is not None:
            await self.live.on_profiles(project, user_ids)

    # -- lists --------------------------------------------------------------------------
    async def list_segment(
        self, segment: str, kind: type[CustomListDefinition] | type[PartnerDefinition]
    ) -> tuple[SegmentName, CustomListDefinition | PartnerDefinition]:
        name = parse_segment(segment)
        resolved = await self.segments.resolve(name.name)
        if not isinstance(resolved.definition, kind):
            expected = "a custom-list" if kind is CustomListDefinition else "a partner"
            raise FailedPrecondition(f"{segment} is not {expected} segment")
        return name, resolved.definition

    async def identity_kind(self, segment: str) -> tuple[SegmentName, IdentityKind]:
        name, definition = await self.list_segment(segment, CustomListDefinition)
        assert isinstance(definition, CustomListDefinition)
        return name, definition.identity_kind
