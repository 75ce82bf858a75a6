"""API keys (create, get, list, revoke), the bootstrap admin key, and the access decision of
every call, read from the store (`StoreAccessDecider`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from libs.common.access import INTERNAL_PRINCIPAL, Access, access_changed, is_internal_credential
from libs.common.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from libs.common.logging import get_logger
from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from services.definition.application.common import utc_now
from services.definition.domain.keys import (
    ALL_PROJECTS,
    MAX_KEY_DISPLAY_NAME,
    ApiKey,
    Grant,
    decide,
    hash_key,
    key_id_of,
    new_key_text,
    principal_problem,
)
from services.definition.domain.limits import DEFAULT_USAGE_PAGE, MAX_USAGE_PAGE
from services.definition.domain.paging import (
    Cursor,
    decode_page_token,
    encode_page_token,
    fingerprint,
)
from services.definition.domain.ports import Store

BOOTSTRAP_PRINCIPAL = Principal(PrincipalKind.SERVICE, "bootstrap-admin")
ANONYMOUS_PRINCIPAL = Principal(PrincipalKind.SERVICE, "anonymous")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_log = get_logger("segments.access")


@dataclass(frozen=True)
class NewKey:
    principal: Principal
    grants: tuple[Grant, ...]
    display_name: str = ""
    expire_time: datetime | None = None


def _admin_of_all(key_id: str, text: str, principal: Principal, label: str = "") -> ApiKey:
    """A key whose text is `text`, holding admin on all projects."""
    return ApiKey(
        key_id=key_id,
        secret_hash=hash_key(text),
        principal=principal,
        grants=(Grant(ALL_PROJECTS, Role.ADMIN),),
        display_name=label,
        creator=label,
        create_time=utc_now(),
    )


class StoreAccessDecider:
    """`AccessDecider` of the process hosting the definition service: keys and projects are
    read from its store. `auth_disabled` (development): no credential means an admin."""

    def __init__(self, store: Store, *, auth_disabled: bool = False) -> None:
        self.store = store
        self.auth_disabled = auth_disabled

    async def check(self, credential: str, projects: tuple[str, ...], role: Role | None) -> Access:
        virtual: ApiKey | None = None
        if not credential and self.auth_disabled:
            virtual = _admin_of_all("", credential, ANONYMOUS_PRINCIPAL)
        elif is_internal_credential(credential):
            virtual = _admin_of_all("", credential, INTERNAL_PRINCIPAL)
        async with self.store.transaction() as tx:
            key = virtual or await tx.get_api_key(key_id_of(credential))
            existing = await tx.existing_projects(projects)
        principal = decide(key, credential, utc_now(), role, projects, existing)
        return Access(principal, key.expire_time if key is not None else None)

    async def close(self) -> None:
        return None


def _key_violations(new: NewKey, now: datetime) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    problem = principal_problem(new.principal)
    if problem:
        found.append(FieldViolation("api_key.principal.id", problem))
    if not new.grants:
        found.append(FieldViolation("api_key.grants", "give at least one grant"))
    seen: set[str] = set()
    for i, grant in enumerate(new.grants):
        if grant.project_id in seen:
            found.append(
                FieldViolation(f"api_key.grants[{i}].project", "one grant per project at most")
            )
        seen.add(grant.project_id)
    if len(new.display_name) > MAX_KEY_DISPLAY_NAME or _CONTROL.search(new.display_name):
        found.append(
            FieldViolation(
                "api_key.display_name",
                f"at most {MAX_KEY_DISPLAY_NAME} characters, no control characters",
            )
        )
    if new.expire_time is not None and new.expire_time <= now:
        found.append(FieldViolation("api_key.expire_time", "must lie in the future"))
    return found


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        first = violations[0]
        raise InvalidArgument(f"{first.field}: {first.description}", violations=violations)


async def create_key(store: Store, new: NewKey, creator: str) -> tuple[ApiKey, str]:
    """A new key and its text (shown once; only its hash is kept)."""
    now = utc_now()
    _raise_if(_key_violations(new, now))
    key_id, text = new_key_text()
    key = ApiKey(
        key_id=key_id,
        secret_hash=hash_key(text),
        principal=new.principal,
        grants=new.grants,
        display_name=new.display_name,
        creator=creator,
        create_time=now,
        expire_time=new.expire_time,
    )
    async with store.transaction() as tx:
        named = {g.project_id for g in new.grants} - {ALL_PROJECTS}
        existing = await tx.existing_projects(named)
        _raise_if(
            [
                FieldViolation(
                    f"api_key.grants[{i}].project", f"projects/{g.project_id} does not exist"
                )
                for i, g in enumerate(new.grants)
                if g.project_id != ALL_PROJECTS and g.project_id not in existing
            ]
        )
        await tx.insert_api_key(key)
    return key, text


async def get_key(store: Store, key_id: str) -> ApiKey:
    async with store.transaction() as tx:
        key = await tx.get_api_key(key_id)
    if key is None:
        raise NotFound(f"apiKeys/{key_id} does not exist", reason="API_KEY_NOT_FOUND")
    return key


@dataclass(frozen=True)
class KeyPage:
    keys: list[ApiKey]
    next_page_token: str


async def list_keys(
    store: Store, page_size: int = 0, page_token: str = "", show_revoked: bool = False
) -> KeyPage:
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    limit = min(page_size or DEFAULT_USAGE_PAGE, MAX_USAGE_PAGE)
    bound_to = fingerprint("keys", str(show_revoked))
    after = decode_page_token(page_token, bound_to).last_id if page_token else None
    async with store.transaction() as tx:
        found = await tx.list_api_keys(after, limit + 1, show_revoked)
    next_token = ""
    if len(found) > limit:
        found = found[:limit]
        next_token = encode_page_token(bound_to, Cursor("", found[-1].key_id))
    return KeyPage(found, next_token)


async def revoke_key(store: Store, key_id: str) -> ApiKey:
    """Revokes the key (a revoked key stays revoked); calls with it are refused at once in
    this process, and within the decision cache's time in the others."""
    async with store.transaction() as tx:
        key = await tx.get_api_key(key_id)
        if key is None:
            raise NotFound(f"apiKeys/{key_id} does not exist", reason="API_KEY_NOT_FOUND")
        if key.revoke_time is None:
            now = utc_now()
            await tx.revoke_api_key(key_id, now)
            key = replace(key, revoke_time=now)
    access_changed()
    return key


async def ensure_bootstrap_key(store: Store, text: str) -> None:
    """Makes sure a key whose text is `text` exists with admin on all projects. A revoked
    bootstrap key stays revoked (and is reported): unset the variable once rotated."""
    key_id = key_id_of(text)
    bootstrap = _admin_of_all(key_id, text, BOOTSTRAP_PRINCIPAL, "SEGMENTS_BOOTSTRAP_ADMIN_KEY")
    try:
        async with store.transaction() as tx:
            existing = await tx.get_api_key(key_id)
            if existing is None:
                await tx.insert_api_key(bootstrap)
    except AlreadyExists:
        return  # another process made it at the same moment
    if existing is None:
        _log.warning(
            "bootstrap_admin_key_created",
            key=bootstrap.name,
            advice="create named keys, then revoke this one and unset SEGMENTS_BOOTSTRAP_ADMIN_KEY",
        )
    elif existing.revoke_time is not None:
        _log.warning(
            "bootstrap_admin_key_revoked",
            key=existing.name,
            advice="SEGMENTS_BOOTSTRAP_ADMIN_KEY names a revoked key; it stays revoked. Unset it.",
        )
    elif existing.secret_hash != bootstrap.secret_hash:
        _log.error("bootstrap_admin_key_id_taken", key=existing.name)
