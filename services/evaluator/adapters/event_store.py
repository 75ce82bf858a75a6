"""Events in ClickHouse: idempotent ingestion of validated batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from libs.clickhouse import InsertData, encode_insert
from libs.clickhouse.common import encode_columns, time_text
from libs.clickhouse.port import ClickHouse
from services.evaluator.adapters.project_locks import ProjectLocks
from services.evaluator.domain.records import EventBatch

_EVENT_COLUMNS = [
    "project", "event_name", "user_id", "event_time", "event_id",
    "str_props", "num_props", "bool_props", "time_props",
]  # fmt: skip
_USER_COLUMNS = ["project", "user_id", "seen_at"]
#: Ingest sends whole batches, and reads the ids back right away: no server-side buffering.
_SYNC_INSERT = {"async_insert": 0}
# The batch's ids travel as one JSON text parameter: ClickHouse reads that faster than an
# Array(String) parameter of thousands of elements; the primary key (project, event_id) still
# narrows the read to the granules that may hold them.
_SELECT_STORED_IDS = (
    "SELECT event_id FROM event_ids WHERE project = {project:String} AND event_id IN "
    "(SELECT id FROM format(JSONCompactColumns, 'id String', {ids:String}))"
)


@dataclass(frozen=True)
class PreparedEvents:
    """A batch ready to store (see `EventStore.prepare`)."""

    project: str
    batch: EventBatch  # the first event of each id
    received: int  # events as received, repeated ids included
    ids: str  # the batch's ids, as the stored-ids query takes them
    events: InsertData
    users: InsertData
    event_ids: InsertData


class EventStore:
    def __init__(self, ch: ClickHouse, locks: ProjectLocks) -> None:
        self._ch = ch
        self._locks = locks

    async def add_events(self, project: str, batch: EventBatch) -> tuple[int, int]:
        """Stores the events whose id is new; returns (accepted, duplicates)."""
        return await self.add_prepared(self.prepare(project, batch))

    def prepare(self, project: str, batch: EventBatch) -> PreparedEvents:
        """Everything storing the batch needs but the engine: drops repeated ids (the first event
        of an id is kept) and encodes the inserts, for when every id turns out to be new."""
        first: dict[str, int] = {}
        for index, event_id in enumerate(batch.event_ids):
            first.setdefault(event_id, index)
        unique = batch if len(first) == len(batch) else batch.select(list(first.values()))
        projects = [project] * len(unique)
        times = [time_text(t) for t in unique.event_times]  # once for events and users
        events: list[Sequence[Any]] = [
            projects, unique.event_names, unique.user_ids, times, unique.event_ids,
            unique.str_props, unique.num_props, unique.bool_props, unique.time_props,
        ]  # fmt: skip
        seen = unique.first_seen
        users = [projects[: len(seen)], list(seen), [times[i] for i in seen.values()]]
        return PreparedEvents(
            project, unique, len(batch), encode_columns(["id"], [unique.event_ids]),
            encode_insert(_EVENT_COLUMNS, events), encode_insert(_USER_COLUMNS, users),
            encode_insert(["project", "event_id"], [projects, unique.event_ids]),
        )  # fmt: skip

    async def add_prepared(self, prepared: PreparedEvents) -> tuple[int, int]:
        """Stores the prepared events whose id is new; returns (accepted, duplicates).

        One statement finds the ids already stored; each table then takes one insert. Events and
        users are written first, then the ids: a crash in between re-stores on re-send rather
        than losing events."""
        project, received = prepared.project, prepared.received
        async with self._locks(f"events:{project}"):
            rows = await self._ch.query(
                _SELECT_STORED_IDS, {"project": project, "ids": prepared.ids}
            )
            stored = {r[0] for r in rows}
            if stored:
                batch = prepared.batch
                keep = [i for i, event_id in enumerate(batch.event_ids) if event_id not in stored]
                prepared = self.prepare(project, batch.select(keep))
            if len(prepared.batch):
                # one statement at a time: run side by side they only contend for the cores
                await self._ch.insert_encoded("events", prepared.events, _SYNC_INSERT)
                await self._ch.insert_encoded("users", prepared.users, _SYNC_INSERT)
                await self._ch.insert_encoded("event_ids", prepared.event_ids, _SYNC_INSERT)
        accepted = len(prepared.batch)
        return accepted, received - accepted
