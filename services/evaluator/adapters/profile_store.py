"""Profiles in ClickHouse: the latest write of a user's profile wins, and every write is kept
as a version (`profile_versions`) so that a profile can be read as it was at an instant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.clickhouse.port import ClickHouse, Row
from services.evaluator.adapters.project_locks import ProjectLocks
from services.evaluator.domain.records import (
    CHANNELS,
    ChannelState,
    Profile,
    split_properties,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PROFILE_COLUMNS = [
    "project", "user_id", "email", "phone", "display_name", "test_user", "blocked",
    "channel_address", "channel_unsubscribed", "channel_blocked",
    "str_props", "num_props", "bool_props", "time_props", "update_time",
]  # fmt: skip
_PROFILE_FIELDS = (
    "user_id, email, phone, display_name, test_user, blocked, channel_address, "
    "channel_unsubscribed, channel_blocked, str_props, num_props, bool_props, time_props, "
    "update_time"
)
_SELECT_PROFILE = (
    f"SELECT {_PROFILE_FIELDS} FROM profiles FINAL "  # noqa: S608
    "WHERE project = {project:String} AND user_id IN {ids:Array(String)}"
)
#: each user's latest version at or before `as_of` (versions of one instant: any one of them)
_SELECT_PROFILE_AS_OF = (
    f"SELECT {_PROFILE_FIELDS} FROM profile_versions "  # noqa: S608
    "WHERE project = {project:String} AND user_id IN {ids:Array(String)} "
    "AND update_time <= {as_of:DateTime64(3, 'UTC')} "
    "ORDER BY user_id, update_time DESC LIMIT 1 BY user_id"
)


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
            await self._write(project, rows)
        return len(rows)

    async def _write(self, project: str, rows: list[list[Any]]) -> None:
        """Stores versions: the history first, then the watermark, then the current state and
        the universe. A reader that finds the watermark at or before its instant reads the
        current state, which then holds no later version; one that finds it later reads the
        history, which already holds the version. A write cut off part-way is completed by
        sending it again (a repeated version changes no answer)."""
        if not rows:
            return
        await self._ch.insert("profile_versions", _PROFILE_COLUMNS, rows)
        latest = max(r[-1] for r in rows)
        await self._ch.insert("profile_watermarks", ["project", "latest"], [[project, latest]])
        await self._ch.insert("profiles", _PROFILE_COLUMNS, rows)
        # a profile makes its user part of the universe from its update_time on
        await self._ch.insert(
            "users", ["project", "user_id", "seen_at"], [[project, r[1], r[-1]] for r in rows]
        )

    async def latest_update(self, project: str) -> datetime | None:
        """The latest update_time of any version of the project's profiles (None: none)."""
        rows = await self._ch.query(
            "SELECT count(), max(latest) FROM profile_watermarks WHERE project = {project:String}",
            {"project": project},
        )
        return rows[0][1] if rows and rows[0][0] else None

    async def get_many(
        self, project: str, user_ids: Sequence[str], as_of: datetime | None = None
    ) -> dict[str, Profile]:
        """Profiles by user id: the current ones, or as they were at `as_of`."""
        if not user_ids:
            return {}
        params: dict[str, Any] = {"project": project, "ids": list(user_ids)}
        sql = _SELECT_PROFILE
        if as_of is not None:
            latest = await self.latest_update(project)
            if latest is not None and latest > as_of:
                sql = _SELECT_PROFILE_AS_OF
                params["as_of"] = as_of
        rows = await self._ch.query(sql, params)
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
            await self._write(project, rows)
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
