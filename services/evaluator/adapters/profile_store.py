"""Profiles in ClickHouse: the latest write of a user's profile wins."""

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
_SELECT_PROFILE = (
    "SELECT user_id, email, phone, display_name, test_user, blocked, channel_address, "
    "channel_unsubscribed, channel_blocked, str_props, num_props, bool_props, time_props, "
    "update_time FROM profiles FINAL "
    "WHERE project = {project:String} AND user_id IN {ids:Array(String)}"
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
