"""GetProject and UpdateProject."""

from __future__ import annotations

import zoneinfo
from dataclasses import replace

from libs.common.errors import Aborted, InvalidArgument
from services.definition.application.common import utc_now
from services.definition.domain.ports import Store
from services.definition.domain.segment import Project, new_etag

UPDATABLE_PROJECT_FIELDS = ("time_zone",)


def validate_time_zone(name: str, field: str) -> None:
    """An IANA time zone name known to zoneinfo, for example "America/New_York"."""
    try:
        if not name or len(name) > 64:
            raise ValueError(name)
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise InvalidArgument.field(
            field, f"must be an IANA time zone such as 'America/New_York', got {name!r}"
        ) from None


async def get_project(store: Store, project_id: str) -> Project:
    """The project, created on first use with its system segments."""
    async with store.transaction() as tx:
        return await tx.ensure_project(project_id, utc_now())


async def update_project(store: Store, project_id: str, time_zone: str, etag: str = "") -> Project:
    validate_time_zone(time_zone, "project.time_zone")
    async with store.transaction() as tx:
        current = await tx.ensure_project(project_id, utc_now())
        if etag and etag != current.etag:
            raise Aborted(
                f"{current.name} was changed since it was read (stale etag); re-read and retry",
                reason="STALE_ETAG",
            )
        updated = replace(current, time_zone=time_zone, update_time=utc_now(), etag=new_etag())
        if not await tx.update_project(updated, current.etag):
            raise Aborted(f"{current.name} was changed concurrently; re-read and retry")
        return await tx.ensure_project(project_id, utc_now())
