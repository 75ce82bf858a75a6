"""Events in ClickHouse: idempotent ingestion of validated batches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
_BATCH_IDS = "SELECT id FROM format(JSONCompactColumns, 'id String', {ids:String})"
_ANY_ID_RECORDED = (
    "SELECT 1 FROM event_ids WHERE project = {project:String} "  # noqa: S608
    f"AND event_id IN ({_BATCH_IDS}) LIMIT 1"
)
_IDS_BATCHES = (
    "SELECT batch FROM event_ids WHERE project = {project:String} "  # noqa: S608
    f"AND event_id IN ({_BATCH_IDS})"
)
_COMMITTED_BATCHES = (
    "SELECT batch FROM ingest_batches WHERE project = {project:String} "  # noqa: S608
    f"AND batch IN ({_IDS_BATCHES})"
)
# Of the batch's ids already recorded, those whose event is stored: written by a batch that
# finished, recorded before keys were (an empty event_name: those events were written before
# their ids), or, for the few a crash cut off, found under the key the id recorded (the events
# sort key narrows that read to the keys of unfinished batches only).
_SELECT_COMMITTED_IDS = (
    "SELECT DISTINCT event_id, user_id, event_time FROM event_ids "  # noqa: S608
    f"WHERE project = {{project:String}} AND event_id IN ({_BATCH_IDS}) AND (event_name = '' "
    f"OR batch IN ({_COMMITTED_BATCHES}) "
    "OR (event_name, user_id, event_time, event_id) IN (SELECT event_name, user_id, "
    "event_time, event_id FROM events WHERE project = {project:String} AND "
    "(event_name, user_id, event_time) IN (SELECT event_name, user_id, event_time "
    f"FROM event_ids WHERE project = {{project:String}} AND event_id IN ({_BATCH_IDS}) "
    f"AND event_name != '' AND batch NOT IN ({_COMMITTED_BATCHES}))))"
)
_ID_COLUMNS = ["project", "event_id", "event_name", "user_id", "event_time", "batch"]


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
    batch_id: str  # this attempt's token: recorded with its ids, then as finished


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
        batch_id = str(uuid.uuid4())
        users = [projects[: len(seen)], list(seen), [times[i] for i in seen.values()]]
        return PreparedEvents(
            project, unique, len(batch), encode_columns(["id"], [unique.event_ids]),
            encode_insert(_EVENT_COLUMNS, events), encode_insert(_USER_COLUMNS, users),
            encode_insert(
                _ID_COLUMNS,
                [projects, unique.event_ids, unique.event_names, unique.user_ids, times,
                 [batch_id] * len(unique)],
            ),
            batch_id,
        )  # fmt: skip

    async def add_prepared(self, prepared: PreparedEvents) -> tuple[int, int]:
        """Stores the prepared events whose id is new; returns (accepted, duplicates).

        Each id is written before its event, with the event's sort key and the attempt's
        token, then the event, then its user and the token as finished (side by side): a
        crash between the writes leaves ids of an unfinished attempt, and a re-sent batch
        looks for their events (the key says where) and stores the missing ones then, so an
        event is neither lost nor stored twice. The users of a re-sent batch's events stored
        before are written again (the earliest time wins), so a crash before its users were
        written is repaired too.
        """
        project, received = prepared.project, prepared.received
        async with self._locks(f"events:{project}"):
            params = {"project": project, "ids": prepared.ids}
            earlier: list[tuple[str, datetime]] = []
            if await self._ch.query(_ANY_ID_RECORDED, params):
                rows = await self._ch.query(_SELECT_COMMITTED_IDS, params)
                done = {r[0] for r in rows}
                earlier = [(r[1], r[2]) for r in rows if r[1]]  # their users, written again
                batch = prepared.batch
                keep = [i for i, event_id in enumerate(batch.event_ids) if event_id not in done]
                if len(keep) < len(batch):
                    prepared = self.prepare(project, batch.select(keep))
            if len(prepared.batch):
                await self._ch.insert_encoded("event_ids", prepared.event_ids, _SYNC_INSERT)
                await self._ch.insert_encoded("events", prepared.events, _SYNC_INSERT)
                # the users and the token side by side: a re-sent batch writes again the users
                # of the events it finds stored, whether or not the token was written
                finished = encode_insert(["project", "batch"], [[project], [prepared.batch_id]])
                for outcome in await asyncio.gather(
                    self._ch.insert_encoded("users", prepared.users, _SYNC_INSERT),
                    self._ch.insert_encoded("ingest_batches", finished, _SYNC_INSERT),
                    return_exceptions=True,  # both finish before the lock is released
                ):
                    if isinstance(outcome, BaseException):
                        raise outcome
            if earlier:
                await self._ch.insert_encoded("users", _users(project, earlier), _SYNC_INSERT)
        accepted = len(prepared.batch)
        return accepted, received - accepted


def _users(project: str, events: list[tuple[str, datetime]]) -> InsertData:
    """The users insert for (user, event time) pairs: each user at their earliest time."""
    seen: dict[str, datetime] = {}
    for user_id, when in events:
        if user_id not in seen or when < seen[user_id]:
            seen[user_id] = when
    times = [time_text(t) for t in seen.values()]
    return encode_insert(_USER_COLUMNS, [[project] * len(seen), list(seen), times])
