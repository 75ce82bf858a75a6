"""List segments' members: partner members (`list_members`, ReplacingMergeTree on sequence,
changed by deltas) and custom lists (`list_upload_members`, one version per upload, made
current by its `list_uploads` row)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from libs.clickhouse.port import ClickHouse

_MEMBER_COLUMNS = ["project", "segment", "user_id", "sequence", "is_member"]


class ListStore:
    def __init__(self, ch: ClickHouse) -> None:
        self._ch = ch

    async def next_upload_version(self, project: str, segment: str) -> int:
        """A version above every version the list has used, finished or not, and at least the
        current time in microseconds: uploads started at once by two processes get distinct
        versions, and the one started last is the list once both finish."""
        rows = await self._ch.query(
            "SELECT greatest((SELECT max(version) FROM list_uploads WHERE project = "
            "{project:String} AND segment = {segment:String}), (SELECT max(version) FROM "
            "list_upload_members WHERE project = {project:String} AND segment = "
            "{segment:String}))",
            {"project": project, "segment": segment},
        )
        now_us = time.time_ns() // 1000
        return max(int(rows[0][0] or 0) + 1, now_us)

    async def write_upload(
        self, project: str, segment: str, version: int, user_ids: Sequence[str]
    ) -> None:
        """Adds members to an upload's version; nobody sees them before `finish_upload`."""
        if user_ids:
            await self._ch.insert(
                "list_upload_members",
                ["project", "segment", "version", "user_id"],
                [[project, segment, version, u] for u in user_ids],
            )

    async def finish_upload(self, project: str, segment: str, version: int, now: datetime) -> int:
        """Makes the upload's version the list (one row written: readers see the old list or
        the new one, never a mix), then deletes older versions and unfinished ones; returns
        its member count."""
        params = {"project": project, "segment": segment, "version": version}
        rows = await self._ch.query(
            "SELECT uniqExact(user_id) FROM list_upload_members WHERE project = "
            "{project:String} AND segment = {segment:String} AND version = {version:Int64}",
            params,
        )
        count = int(rows[0][0])
        await self._ch.insert(
            "list_uploads",
            ["project", "segment", "version", "member_count", "create_time"],
            [[project, segment, version, count, now]],
        )
        await self._ch.command(
            "DELETE FROM list_upload_members WHERE project = {project:String} "
            "AND segment = {segment:String} AND version < {version:Int64}",
            params,
        )
        return count

    async def member_count(self, project: str, segment: str) -> int:
        rows = await self._ch.query(
            "SELECT count() FROM list_members FINAL WHERE project = {project:String} "
            "AND segment = {segment:String} AND is_member = 1",
            {"project": project, "segment": segment},
        )
        return int(rows[0][0])

    async def delta_applied(self, project: str, segment: str, delta_id: str) -> bool:
        rows = await self._ch.query(
            "SELECT count() FROM partner_deltas WHERE project = {project:String} "
            "AND segment = {segment:String} AND delta_id = {delta:String}",
            {"project": project, "segment": segment, "delta": delta_id},
        )
        return int(rows[0][0]) > 0

    async def apply_delta(
        self,
        project: str,
        segment: str,
        delta_id: str,
        sequence: int,
        added: Sequence[str],
        removed: Sequence[str],
        now: datetime,
    ) -> None:
        """Writes the delta's rows, then records its id. Replaying it rewrites the same rows
        (same sequence), so a crash before the id is recorded is harmless."""
        rows = [[project, segment, u, sequence, True] for u in added]
        rows += [[project, segment, u, sequence, False] for u in removed]
        await self._ch.insert("list_members", _MEMBER_COLUMNS, rows)
        await self._ch.insert(
            "partner_deltas",
            ["project", "segment", "delta_id", "sequence", "applied_at"],
            [[project, segment, delta_id, sequence, now]],
        )
