"""Events and profiles in ClickHouse: idempotent event ingestion, latest-wins profiles."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.clickhouse import InsertData, encode_insert
from libs.clickhouse.common import encode_columns, time_text
from libs.clickhouse.port import ClickHouse, Row
from services.evaluator.domain.records import (
    CHANNELS,
    ChannelState,
    EventBatch,
    Profile,
    split_properties,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENT_COLUMNS = [
    "project", "event_name", "user_id", "event_time", "event_id",
    "str_props", "num_props", "bool_props", "time_props",
]  # fmt: skip
_USER_COLUMNS = ["project", "user_id", "seen_at"]
#: Ingest sends whole batches, and reads the ids back right away: no server-side buffering.
_SYNC_INSERT = {"async_insert": 0}
_PROFILE_COLUMNS = [
    "project", "user_id", "email", "phone", "display_name", "test_user", "blocked",
    "channel_address", "channel_unsubscribed", "channel_blocked",
    "str_props", "num_props", "bool_props", "time_props", "update_time",
]  # fmt: skip
# The batch's ids travel as one JSON text parameter: ClickHouse reads that faster than an
# Array(String) parameter of thousands of elements; the primary key (project, event_id) still
# narrows the read to the granules that may hold them.
_SELECT_STORED_IDS = (
    "SELECT event_id FROM event_ids WHERE project = {project:String} AND event_id IN "
    "(SELECT id FROM format(JSONCompactColumns, 'id String', {ids:String}))"
)
_SELECT_PROFILE = (
    "SELECT user_id, email, phone, display_name, test_user, blocked, channel_address, "
    "channel_unsubscribed, channel_blocked, str_props, num_props, bool_props, time_props, "
    "update_time FROM profiles FINAL "
    "WHERE project = {project:String} AND user_id IN {ids:Array(String)}"
)


class ProjectLocks:
    """Serialises writes per key inside this process (ingest per project, lists per segment)."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def __call__(self, key: str) -> asyncio.Lock:
        return self._locks[key]


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


def _profile_row(project: str, p: Profile, update_time: datetime) -> list[Any]:
    props = split_properties(p.properties)
    return [
        project, p.user_id, p.email, p.phone, p.display_name, p.test_user, p.blocked,
        {c: s.address for c, s in p.channels.items()},
        {c: s.unsubscribed for c, s in p.channels.items()},
        {c: s.blocked for c, s in p.channels.items()},
        props.str_props, props.num_props, props.bool_props, props.time_props, update_time,
    ]  # fmt: skip


def _profile_from_row(row: Row) -> Profile:
    (user_id, email, phone, display_name, test_user, blocked, address, unsub, blocked_on,
     str_props, num_props, bool_props, time_props, update_time) = row  # fmt: skip
    channels = {
        c: ChannelState(address.get(c, ""), bool(unsub.get(c, 0)), bool(blocked_on.get(c, 0)))
        for c in CHANNELS
        if c in address or c in unsub or c in blocked_on
    }
    properties: dict[str, Any] = {}
    properties.update(str_props)
    properties.update(num_props)
    properties.update({k: bool(v) for k, v in bool_props.items()})
    properties.update(time_props)
    return Profile(
        user_id, email, phone, display_name, bool(test_user), bool(blocked), channels,
        properties, update_time,
    )  # fmt: skip


class ProfileStore:
    def __init__(self, ch: ClickHouse, locks: ProjectLocks) -> None:
        self._ch = ch
        self._locks = locks

    async def upsert(self, project: str, profiles: Sequence[Profile], now: datetime) -> int:
        rows = [_profile_row(project, p, p.update_time or now) for p in profiles]
        async with self._locks(f"profiles:{project}"):
            await self._ch.insert("profiles", _PROFILE_COLUMNS, rows)
            await self._ch.insert(
                "users", ["project", "user_id", "seen_at"],
                [[project, p.user_id, EPOCH] for p in profiles],
            )  # fmt: skip
        return len(rows)

    async def get_many(self, project: str, user_ids: Sequence[str]) -> dict[str, Profile]:
        if not user_ids:
            return {}
        rows = await self._ch.query(_SELECT_PROFILE, {"project": project, "ids": list(user_ids)})
        return {r[0]: _profile_from_row(r) for r in rows}

    async def set_test_users(
        self, project: str, user_ids: Sequence[str], test_user: bool, now: datetime
    ) -> tuple[int, list[str]]:
        """Marks or unmarks existing profiles; returns (changed, unknown ids)."""
        async with self._locks(f"profiles:{project}"):
            found = await self.get_many(project, list(dict.fromkeys(user_ids)))
            rows: list[list[Any]] = []
            for p in found.values():
                if p.test_user == test_user:
                    continue
                # strictly later than the stored version, so that this write wins
                stamp = max(now, (p.update_time or EPOCH) + timedelta(milliseconds=1))
                changed = Profile(
                    p.user_id, p.email, p.phone, p.display_name, test_user, p.blocked,
                    p.channels, p.properties, stamp,
                )  # fmt: skip
                rows.append(_profile_row(project, changed, stamp))
            await self._ch.insert("profiles", _PROFILE_COLUMNS, rows)
        unknown = [u for u in dict.fromkeys(user_ids) if u not in found]
        return len(rows), unknown

    async def known_users(self, project: str, user_ids: Sequence[str]) -> set[str]:
        rows = await self._ch.query(
            "SELECT DISTINCT user_id FROM users WHERE project = {project:String} "
            "AND user_id IN {ids:Array(String)}",
            {"project": project, "ids": list(user_ids)},
        )
        return {r[0] for r in rows}

    async def users_by_email(self, project: str, emails: Sequence[str]) -> dict[str, list[str]]:
        rows = await self._ch.query(
            "SELECT lower(email), user_id FROM profiles FINAL WHERE project = {project:String} "
            "AND email != '' AND lower(email) IN {emails:Array(String)}",
            {"project": project, "emails": list(emails)},
        )
        found: dict[str, list[str]] = defaultdict(list)
        for email, user_id in rows:
            found[email].append(user_id)
        return found

    async def users_by_phone(self, project: str, phones: Sequence[str]) -> dict[str, list[str]]:
        rows = await self._ch.query(
            "SELECT phone, user_id FROM profiles FINAL WHERE project = {project:String} "
            "AND phone != '' AND phone IN {phones:Array(String)}",
            {"project": project, "phones": list(phones)},
        )
        found: dict[str, list[str]] = defaultdict(list)
        for phone, user_id in rows:
            found[phone].append(user_id)
        return found
