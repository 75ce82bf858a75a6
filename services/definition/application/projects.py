"""Projects: create, get, list, update (time zone) and delete. Nothing creates a project but
CreateProject; every other call on an unknown project is NOT_FOUND."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, replace

from libs.common.access import access_changed
from libs.common.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument
from libs.common.principal import Principal
from services.definition.application.common import load_project, utc_now
from services.definition.domain.names import validate_project_id
from services.definition.domain.paging import (
    Cursor,
    decode_page_token,
    encode_page_token,
    fingerprint,
)
from services.definition.domain.ports import Store
from services.definition.domain.segment import (
    DEFAULT_TIME_ZONE,
    SYSTEM_SEGMENTS,
    Project,
    new_etag,
)

UPDATABLE_PROJECT_FIELDS = ("time_zone",)
DEFAULT_PROJECT_PAGE = 100
MAX_PROJECT_PAGE = 1_000


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


def _check_etag(project: Project, etag: str) -> None:
    if etag and etag != project.etag:
        raise Aborted(
            f"{project.name} was changed since it was read (stale etag); re-read and retry",
            reason="STALE_ETAG",
        )


async def create_project(store: Store, project_id: str, time_zone: str = "") -> Project:
    """A new project with its system segments. The id of a deleted project is refused:
    the evaluator's data of that project may still exist under it."""
    validate_project_id(project_id, "project_id")
    if time_zone:
        validate_time_zone(time_zone, "project.time_zone")
    now = utc_now()
    project = Project(project_id, time_zone or DEFAULT_TIME_ZONE, now, now, new_etag())
    async with store.transaction() as tx:
        if await tx.project_was_deleted(project_id):
            raise AlreadyExists(
                f"{project.name} was deleted; the id of a deleted project is not used again",
                reason="PROJECT_ID_DELETED",
            )
        if await tx.get_project(project_id) is not None:
            raise AlreadyExists(f"{project.name} already exists", reason="PROJECT_ID_TAKEN")
        await tx.insert_project(project)
        return await load_project(tx, project_id)


async def get_project(store: Store, project_id: str) -> Project:
    async with store.transaction() as tx:
        return await load_project(tx, project_id)


async def update_project(store: Store, project_id: str, time_zone: str, etag: str = "") -> Project:
    validate_time_zone(time_zone, "project.time_zone")
    async with store.transaction() as tx:
        current = await load_project(tx, project_id)
        _check_etag(current, etag)
        updated = replace(current, time_zone=time_zone, update_time=utc_now(), etag=new_etag())
        if not await tx.update_project(updated, current.etag):
            raise Aborted(f"{current.name} was changed concurrently; re-read and retry")
        if time_zone != current.time_zone:
            # live segments are evaluated in the project's time zone: watchers re-read them
            await tx.note_live_changes(project_id, await tx.live_segment_ids(project_id))
        return await load_project(tx, project_id)


@dataclass(frozen=True)
class ProjectPage:
    projects: list[Project]
    next_page_token: str


async def list_projects(
    store: Store, caller: Principal | None, page_size: int = 0, page_token: str = ""
) -> ProjectPage:
    """The projects the caller's key holds a role on, by id (all of them for a key with a
    role on all projects, and for this process's own credential)."""
    if not 0 <= page_size <= MAX_PROJECT_PAGE:
        raise InvalidArgument.field("page_size", f"must be 0 to {MAX_PROJECT_PAGE}")
    limit = page_size or DEFAULT_PROJECT_PAGE
    key_id = caller.key_id if caller is not None and caller.key_id else None
    bound_to = fingerprint("projects", key_id or "")
    after = decode_page_token(page_token, bound_to).last_id if page_token else None
    async with store.transaction() as tx:
        found = await tx.list_projects(key_id, after, limit + 1)
    next_token = ""
    if len(found) > limit:
        found = found[:limit]
        next_token = encode_page_token(bound_to, Cursor("", found[-1].project_id))
    return ProjectPage(found, next_token)


async def delete_project(store: Store, project_id: str, force: bool, etag: str = "") -> None:
    """Deletes the project, its grants and (with `force`) its segments, in one transaction.
    Without `force` a project holding segments besides the system ones is refused."""
    async with store.transaction() as tx:
        project = await load_project(tx, project_id)
        _check_etag(project, etag)
        own = project.segment_count - len(SYSTEM_SEGMENTS)
        if own > 0 and not force:
            raise FailedPrecondition(
                f"{project.name} still holds {own} segment(s); delete them first or set force",
                reason="PROJECT_NOT_EMPTY",
            )
        await tx.delete_project(project_id, utc_now())
    access_changed()
