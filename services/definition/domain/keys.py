"""API keys, their grants, and the access decision made from them (pure; no I/O).

A key's text is ``sgk_<id>_<secret>``: a public 12-hex-digit id (the key's resource name is
``apiKeys/<id>``) and 256 random bits. Only the SHA-256 of the whole text is stored: the text
holds 256 random bits, so nobody can find it from its hash by guessing, and a slow password
hash (which protects low-entropy passwords) would only slow down every call. The stored hash
is compared with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from libs.common.errors import NotFound, PermissionDenied, Unauthenticated
from libs.common.principal import MAX_EMAIL, SERVICE_NAME, Principal, PrincipalKind, is_email
from libs.common.rpc_roles import Role

ALL_PROJECTS = "-"
KEY_PREFIX = "sgk_"
_KEY_TEXT = re.compile(r"sgk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
KEY_ID = re.compile(r"[0-9a-f]{12}")
MAX_KEY_DISPLAY_NAME = 200


@dataclass(frozen=True)
class Grant:
    """`role` on project `project_id`, or on all projects (`ALL_PROJECTS`)."""

    project_id: str
    role: Role


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    secret_hash: str
    principal: Principal
    grants: tuple[Grant, ...]
    display_name: str
    creator: str
    create_time: datetime
    expire_time: datetime | None = None
    revoke_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"apiKeys/{self.key_id}"

    def role_on(self, project_id: str) -> Role | None:
        """The key's role on `project_id` (its grant there or on all projects, the larger)."""
        roles = [g.role for g in self.grants if g.project_id in (project_id, ALL_PROJECTS)]
        return max(roles) if roles else None

    def role_on_all(self) -> Role | None:
        roles = [g.role for g in self.grants if g.project_id == ALL_PROJECTS]
        return max(roles) if roles else None


def hash_key(text: str) -> str:
    """The stored form of a key's text: SHA-256, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_key_text() -> tuple[str, str]:
    """(key id, key text) of a fresh random key."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(text: str) -> str:
    """The id under which the key `text` is stored: the id inside a generated key's text; for
    any other text (a bootstrap key chosen by an operator), the first 12 hex digits of its
    hash."""
    match = _KEY_TEXT.fullmatch(text)
    return match.group(1) if match else hash_key(text)[:12]


def principal_problem(principal: Principal) -> str | None:
    if principal.kind is PrincipalKind.PERSON:
        if not is_email(principal.id):
            return f"a person is known by an e-mail address of at most {MAX_EMAIL} characters"
    elif not SERVICE_NAME.fullmatch(principal.id):
        return "a service name is 3 to 60 lower-case letters, digits and '-', from a letter"
    return None


def _role_name(role: Role) -> str:
    return role.name.lower()


def decide(
    key: ApiKey | None,
    text: str,
    now: datetime,
    role: Role | None,
    projects: tuple[str, ...],
    existing: frozenset[str],
) -> Principal:
    """Whether the key whose text is `text` (stored as `key`, None when unknown) holds `role`
    on each of `projects` (ids; those of them that exist are `existing`). None `role`: only
    that the key is valid; no projects: `role` on all projects. Returns the key's principal."""
    if key is None or not hmac.compare_digest(key.secret_hash, hash_key(text)):
        raise Unauthenticated("unknown API key", reason="API_KEY_UNKNOWN")
    if key.revoke_time is not None:
        raise Unauthenticated(f"{key.name} was revoked", reason="API_KEY_REVOKED")
    if key.expire_time is not None and key.expire_time <= now:
        raise Unauthenticated(f"{key.name} has expired", reason="API_KEY_EXPIRED")
    principal = Principal(key.principal.kind, key.principal.id, key.key_id)
    if role is None:
        return principal
    if not projects:
        held = key.role_on_all()
        if held is None or held < role:
            raise PermissionDenied(
                f"this call names no project (parent, name or segment: projects/{{project}}/...), "
                f"so it needs {_role_name(role)} on all projects",
                reason="ROLE_ON_ALL_PROJECTS_REQUIRED",
                metadata={"required_role": _role_name(role)},
            )
        return principal
    for project_id in projects:
        if project_id not in existing or key.role_on(project_id) is None:
            raise NotFound(
                f"projects/{project_id} does not exist or this key has no role on it",
                reason="PROJECT_NOT_FOUND",
                metadata={"project": f"projects/{project_id}"},
            )
    for project_id in projects:
        held = key.role_on(project_id)
        if held is not None and held < role:
            raise PermissionDenied(
                f"this key is {_role_name(held)} on projects/{project_id}; this call needs "
                f"{_role_name(role)}",
                reason="ROLE_TOO_SMALL",
                metadata={
                    "project": f"projects/{project_id}",
                    "role": _role_name(held),
                    "required_role": _role_name(role),
                },
            )
    return principal
