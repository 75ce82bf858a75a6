"""The pieces of the access check (credential -> principal -> role -> project), used by the
interceptor every server runs (`libs.common.access_interceptor`):

* `bearer_credential`: the API key of ``authorization: Bearer <api key>``;
* `named_projects`: the projects a request names (its ``parent``, ``name`` or ``segment``
  fields, ``projects/{project}/...``);
* `AccessDecider`: whether a key holds a role on projects. It answers UNAUTHENTICATED
  (unknown, revoked or expired key), NOT_FOUND (the project does not exist, or the key has no
  role on it: one answer, so existence never leaks) or PERMISSION_DENIED (a role there, but
  too small), or the caller's `Principal`. The decider of a process that hosts the definition
  service reads keys from its store; every other process asks the definition service
  (`libs.common.access_peer`);
* `CachingDecider`: decisions reused for `Config.auth_cache_seconds`; `access_changed()`
  empties every cache of the process at once (a key revoked, a project deleted).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from libs.common.context import (
    AUTHORIZATION_KEY,
    USER_EMAIL_KEY,
    Principal,
    PrincipalKind,
    metadata_value,
)
from libs.common.errors import InvalidArgument, Unauthenticated
from libs.common.principal import is_email
from libs.common.rpc_roles import Role

MAX_CREDENTIAL_LENGTH = 512
MAX_CACHED_DECISIONS = 10_000
_PROJECT_NAME = re.compile(r"projects/([A-Za-z0-9][A-Za-z0-9_-]{0,62})(/.*)?", re.S)
#: A request's `parent` naming every project (AIP-159).
ALL_PROJECTS_PARENT = "projects/-"
#: Fields that name a project, at the top of a request and inside its message fields.
_NAMING_FIELDS = ("parent", "name", "segment")

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Access:
    """A decision that allowed a call: who the caller is and until when the key is valid."""

    principal: Principal
    expire_time: datetime | None = None


class AccessDecider(Protocol):
    """Decides whether `credential` holds `role` on each of `projects` (project ids).

    `projects` empty: the role on all projects. `role` None: only that the credential is
    valid. Raises `Unauthenticated`, `NotFound` or `PermissionDenied`; returns the `Access`.
    """

    async def check(
        self, credential: str, projects: tuple[str, ...], role: Role | None
    ) -> Access: ...

    async def close(self) -> None: ...


# --- this process's own credential -------------------------------------------------------------

_INTERNAL_CREDENTIAL = "sgi_" + secrets.token_urlsafe(32)
INTERNAL_PRINCIPAL = Principal(PrincipalKind.SERVICE, "segments-internal")


def internal_credential() -> str:
    """A random credential of this process, never stored or shown: it holds admin on all
    projects, but only in a process hosting the definition service, on calls from loopback
    to this very process (its own background work, the demo). Other processes do not know it."""
    return _INTERNAL_CREDENTIAL


def is_internal_credential(credential: str) -> bool:
    return hmac.compare_digest(credential.encode(), _INTERNAL_CREDENTIAL.encode())


def from_loopback(context: Context) -> bool:
    peer = context.peer() or ""
    return peer.startswith(("ipv4:127.", "ipv6:[::1]", "unix:"))


# --- reading a call -------------------------------------------------------------------------------


def bearer_credential(context: Context) -> str:
    """The API key of `authorization: Bearer <key>`, or "" when the header is absent."""
    header = metadata_value(context, AUTHORIZATION_KEY).strip()
    if not header:
        return ""
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if (
        scheme.lower() != "bearer"
        or not credential
        or len(credential) > MAX_CREDENTIAL_LENGTH
        or not (credential.isascii() and credential.isprintable())
        or " " in credential
    ):
        raise Unauthenticated(
            "the authorization metadata must be 'Bearer <api key>'",
            reason="API_KEY_MALFORMED",
        )
    return credential


def _project_of(value: str, path: str) -> str:
    match = _PROJECT_NAME.fullmatch(value)
    if match is None:
        raise InvalidArgument.field(
            path, f"must be a resource name of a project, projects/{{project}}/..., got {value!r}"
        )
    return match.group(1)


def named_projects(message: object) -> tuple[str, ...]:
    """The ids of the projects a request names, sorted: its `parent`, `name` and `segment`
    string fields and `names` list, and the `parent`, `name` and `segment` strings of its
    message fields (`UpdateSegmentRequest.segment.name`, an upload header's `segment`).
    A named value that is not `projects/{project}/...` is INVALID_ARGUMENT. A top-level
    `parent` of `projects/-` (every project, as in WatchLiveSegments) names none: the role
    is then needed on all projects."""
    if not isinstance(message, Message):
        return ()
    if getattr(message, "parent", None) == ALL_PROJECTS_PARENT:
        return ()
    found: set[str] = set()
    fields = message.DESCRIPTOR.fields_by_name
    for name, field in fields.items():
        if field.is_repeated:
            if name == "names" and field.type == FieldDescriptor.TYPE_STRING:
                for i, value in enumerate(getattr(message, name)):
                    found.add(_project_of(value, f"names[{i}]"))
            continue
        if field.type == FieldDescriptor.TYPE_STRING and name in _NAMING_FIELDS:
            value = getattr(message, name)
            if value:
                found.add(_project_of(value, name))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and message.HasField(name):
            inner = getattr(message, name)
            for inner_name in _NAMING_FIELDS:
                inner_field = inner.DESCRIPTOR.fields_by_name.get(inner_name)
                if (
                    inner_field is not None
                    and inner_field.type == FieldDescriptor.TYPE_STRING
                    and not inner_field.is_repeated
                ):
                    value = getattr(inner, inner_name)
                    if value:
                        found.add(_project_of(value, f"{name}.{inner_name}"))
    return tuple(sorted(found))


def acting_for(principal: Principal, context: Context) -> Principal:
    """A service principal acting for a person ("x-user-email"); people never act for others."""
    if principal.kind is not PrincipalKind.SERVICE:
        return principal
    email = metadata_value(context, USER_EMAIL_KEY).strip()
    if not email:
        return principal
    if not is_email(email):
        raise InvalidArgument.field(USER_EMAIL_KEY, "must be an e-mail address (metadata)")
    return Principal(principal.kind, principal.id, principal.key_id, acting_for=email)


# --- the decision cache ---------------------------------------------------------------------------

_CACHES: weakref.WeakSet[CachingDecider] = weakref.WeakSet()


def access_changed() -> None:
    """Forgets every cached decision of this process: call after revoking a key, changing a
    grant or deleting a project, so that the change holds at once in this process."""
    for cache in list(_CACHES):
        cache.clear()


class CachingDecider:
    """Reuses the allowing decisions of `inner` for `ttl_seconds` (never past the key's
    expiry). Refusals are not cached. `access_changed()` clears it."""

    def __init__(
        self,
        inner: AccessDecider,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[tuple[str, tuple[str, ...], Role | None], tuple[Access, float]] = {}
        _CACHES.add(self)

    def clear(self) -> None:
        self._entries.clear()

    async def check(self, credential: str, projects: tuple[str, ...], role: Role | None) -> Access:
        if self.ttl <= 0:
            return await self.inner.check(credential, projects, role)
        key = (hashlib.sha256(credential.encode()).hexdigest(), projects, role)
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None:
            access, until = cached
            expired = access.expire_time is not None and access.expire_time <= datetime.now(UTC)
            if until > now and not expired:
                return access
            del self._entries[key]
        access = await self.inner.check(credential, projects, role)
        if len(self._entries) >= MAX_CACHED_DECISIONS:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            while len(self._entries) >= MAX_CACHED_DECISIONS:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (access, now + self.ttl)
        return access

    async def close(self) -> None:
        await self.inner.close()
