"""Events in ClickHouse: idempotent ingestion of validated batches."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from libs.clickhouse import InsertData, encode_insert
from libs.clickhouse.common import encode_columns, time_text
from libs.clickhouse.port import ClickHouse
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


@dataclass
class _Call:
    """An ingest call's batch waiting to be stored, and where its counts go."""

    batch: EventBatch  # the first event of each id
    received: int  # events as the call sent them, repeated ids included
    counts: asyncio.Future[tuple[int, int]]


class EventStore:
    """Stores ingested batches; one writer per project at a time in this process.

    Calls for a project that arrive while a batch of it is being stored wait, and are then
    stored together (up to `group_events` events): one encoding, one lookup of their ids and
    one set of inserts for all of them, each call told its own counts. Many small calls at
    once are stored at the pace of a few large ones instead of queueing one behind the other.
    """

    def __init__(self, ch: ClickHouse, group_events: int = 50_000) -> None:
        self._ch = ch
        self._group_events = group_events
        self._waiting: dict[str, deque[_Call]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    def prepare(self, project: str, batch: EventBatch) -> PreparedEvents:
        """Everything storing the batch needs but the engine: drops repeated ids (the first event
        of an id is kept) and encodes the inserts, for when every id turns out to be new."""
        unique = batch.first_of_each_id()
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

    async def add_events(
        self, project: str, batch: EventBatch, received: int | None = None
    ) -> tuple[int, int]:
        """Stores the events whose id is new (the first event of each id); returns (accepted,
        duplicates). `received`: how many events the call sent, when `batch` is already
        without repeats.

        The call waits while another batch of the project is being stored, then is stored
        with the calls that waited beside it (see the class). A call cancelled while it waits
        stores nothing; once its group is being stored, it is stored whatever the call does.
        """
        unique = batch.first_of_each_id()
        call = _Call(
            unique,
            len(batch) if received is None else received,
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.setdefault(project, deque()).append(call)
        if project not in self._writers:
            self._writers[project] = asyncio.create_task(self._write(project))
        return await call.counts

    async def _write(self, project: str) -> None:
        """Stores the project's waiting calls, group after group, until none waits."""
        waiting = self._waiting[project]
        try:
            while group := self._take(waiting):
                try:
                    results = await self._store_group(project, group)
                except Exception as exc:  # each call of the group fails with it
                    for call in group:
                        if not call.counts.done():
                            call.counts.set_exception(exc)
                    continue
                except BaseException:
                    for call in group:
                        call.counts.cancel()
                    raise
                for call, counts in zip(group, results, strict=True):
                    if not call.counts.done():
                        call.counts.set_result(counts)
        finally:
            del self._writers[project]
            # when stopped by a cancellation, the calls still waiting are not stored
            for call in waiting:
                call.counts.cancel()
            del self._waiting[project]

    def _take(self, waiting: deque[_Call]) -> list[_Call]:
        """The next group: the calls waiting longest, up to `group_events` events (at least
        one call); calls cancelled while they waited are left out."""
        group: list[_Call] = []
        size = 0
        while waiting:
            call = waiting[0]
            if call.counts.done():
                waiting.popleft()
                continue
            if group and size + len(call.batch) > self._group_events:
                break
            group.append(waiting.popleft())
            size += len(call.batch)
        return group

    async def _store_group(self, project: str, calls: Sequence[_Call]) -> list[tuple[int, int]]:
        """Stores the calls' events as one batch, encoded in a worker thread (so that the event
        loop keeps reading messages); the (accepted, duplicates) of each call. An id sent by
        two calls of the group is the first one's (the other's is a duplicate)."""
        if len(calls) == 1:
            merged, claims = calls[0].batch, [calls[0].batch.event_ids]
        else:
            claimed: set[str] = set()
            parts: list[EventBatch] = []
            claims = []
            for call in calls:
                ids = call.batch.event_ids
                keep = [i for i, event_id in enumerate(ids) if event_id not in claimed]
                claimed.update(ids)
                part = call.batch if len(keep) == len(ids) else call.batch.select(keep)
                parts.append(part)
                claims.append(part.event_ids)
            merged = EventBatch.concat(parts)
        done = await self._store(await asyncio.to_thread(self.prepare, project, merged))
        results = []
        for call, ids in zip(calls, claims, strict=True):
            accepted = len(ids) - sum(1 for event_id in ids if event_id in done)
            results.append((accepted, call.received - accepted))
        return results

    async def _store(self, prepared: PreparedEvents) -> set[str]:
        """Stores the prepared events whose id is new; returns the ids stored before.

        Each id is written before its event, with the event's sort key and the attempt's
        token, then the event, then its user and the token as finished (side by side): a
        crash between the writes leaves ids of an unfinished attempt, and a re-sent batch
        looks for their events (the key says where) and stores the missing ones then, so an
        event is neither lost nor stored twice. The users of a re-sent batch's events stored
        before are written again (the earliest time wins), so a crash before its users were
        written is repaired too.
        """
        project = prepared.project
        params = {"project": project, "ids": prepared.ids}
        earlier: list[tuple[str, datetime]] = []
        done: set[str] = set()
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
                return_exceptions=True,  # both finish before the next group starts
            ):
                if isinstance(outcome, BaseException):
                    raise outcome
        if earlier:
            await self._ch.insert_encoded("users", _users(project, earlier), _SYNC_INSERT)
        return done


def _users(project: str, events: list[tuple[str, datetime]]) -> InsertData:
    """The users insert for (user, event time) pairs: each user at their earliest time."""
    seen: dict[str, datetime] = {}
    for user_id, when in events:
        if user_id not in seen or when < seen[user_id]:
            seen[user_id] = when
    times = [time_text(t) for t in seen.values()]
    return encode_insert(_USER_COLUMNS, [[project] * len(seen), list(seen), times])
