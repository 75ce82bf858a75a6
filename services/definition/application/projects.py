"""GetProject, UpdateProject and ListProjects."""

from __future__ import annotations

import base64
import binascii
import zoneinfo
from dataclasses import replace

from libs.common.errors import Aborted, InvalidArgument
from services.definition.application.common import utc_now
from services.definition.domain.ports import Store
from services.definition.domain.segment import Project, new_etag

UPDATABLE_PROJECT_FIELDS = ("time_zone",)
DEFAULT_PROJECT_PAGE = 100
MAX_PROJECT_PAGE = 1000


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


def _project_token(project_id: str) -> str:
    return base64.urlsafe_b64encode(project_id.encode()).decode()


def _after_token(token: str) -> str | None:
    if not token:
        return None
    try:
        after = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        after = ""
    if not after or _project_token(after) != token:
        raise InvalidArgument.field("page_token", "not a token from a previous page")
    return after


async def list_projects(store: Store, page_size: int, page_token: str) -> tuple[list[Project], str]:
    """A page of projects in id order, and the token of the next page ("" on the last)."""
    if not 0 <= page_size <= MAX_PROJECT_PAGE:
        raise InvalidArgument.field("page_size", f"must be 0 to {MAX_PROJECT_PAGE}")
    size = page_size or DEFAULT_PROJECT_PAGE
    after = _after_token(page_token)
    async with store.transaction() as tx:
        found = await tx.list_projects(after, size + 1)
    if len(found) > size:
        return found[:size], _project_token(found[size - 1].project_id)
    return found, ""
