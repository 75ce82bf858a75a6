"""Custom-list and partner members (`list_members`, ReplacingMergeTree on sequence)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.clickhouse.port import ClickHouse

_MEMBER_COLUMNS = ["project", "segment", "user_id", "sequence", "is_member"]


class ListStore:
    def __init__(self, ch: ClickHouse) -> None:
        self._ch = ch

    async def next_sequence(self, project: str, segment: str) -> int:
        rows = await self._ch.query(
            "SELECT max(sequence) FROM list_members "
            "WHERE project = {project:String} AND segment = {segment:String}",
            {"project": project, "segment": segment},
        )
        return int(rows[0][0] or 0) + 1 if rows else 1

    async def write(
        self, project: str, segment: str, sequence: int, user_ids: Sequence[str], member: bool
    ) -> None:
        await self._ch.insert(
            "list_members",
            _MEMBER_COLUMNS,
            [[project, segment, u, sequence, member] for u in user_ids],
        )

    async def drop_older(self, project: str, segment: str, sequence: int) -> None:
        """Ends the membership of every member written before `sequence` (list replaced)."""
        await self._ch.command(
            "INSERT INTO list_members (project, segment, user_id, sequence, is_member) "
            "SELECT project, segment, user_id, {seq:Int64}, 0 FROM list_members FINAL "
            "WHERE project = {project:String} AND segment = {segment:String} "
            "AND is_member = 1 AND sequence < {seq:Int64}",
            {"project": project, "segment": segment, "seq": sequence},
        )

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
