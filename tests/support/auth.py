"""Credentials for tests: fixed API keys, metadata, and channels that send a key on every call.

Every RPC but health and reflection needs `authorization: Bearer <api key>`. Test servers
that host the definition service take `ADMIN_KEY` as their bootstrap admin key (admin on all
projects, principal service "bootstrap-admin"), and `seed_people()` stores two person keys,
`ANA_KEY` (ana@example.com) and `BO_KEY` (bo@example.com), both admin on all projects.

* `bearer(key)`: the metadata of one call.
* `authorized_channel(address, key)`: a channel that adds `bearer(key)` to every call that
  carries no authorization of its own (a call may still pass other metadata, or another key).
* `create_project(channel, project_id)`: CreateProject with the admin key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import grpc

from libs.common.access import Access
from libs.common.errors import Unauthenticated
from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from services.definition.domain.keys import ALL_PROJECTS, ApiKey, Grant, hash_key, key_id_of
from services.definition.domain.ports import Store

ADMIN_KEY = "sgk_00000000ad01_" + "t" * 40 + "adm"
ANA_KEY = "sgk_00000000a7a0_" + "t" * 40 + "ana"
BO_KEY = "sgk_00000000b0b0_" + "t" * 40 + "bob"
PEOPLE = {ANA_KEY: "ana@example.com", BO_KEY: "bo@example.com"}

Metadata = tuple[tuple[str, str], ...]


def bearer(key: str = ADMIN_KEY) -> Metadata:
    return (("authorization", f"Bearer {key}"),)


async def seed_people(store: Store) -> None:
    """Stores `ANA_KEY` and `BO_KEY` (people, admin on all projects) unless present."""
    async with store.transaction() as tx:
        for text, email in PEOPLE.items():
            if await tx.get_api_key(key_id_of(text)) is None:
                await tx.insert_api_key(
                    ApiKey(
                        key_id=key_id_of(text),
                        secret_hash=hash_key(text),
                        principal=Principal(PrincipalKind.PERSON, email),
                        grants=(Grant(ALL_PROJECTS, Role.ADMIN),),
                        display_name="test person",
                        creator="tests",
                        create_time=datetime.now(UTC),
                    )
                )


def _with_key(details: grpc.aio.ClientCallDetails, key: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if "authorization" not in metadata:
        metadata.add("authorization", f"Bearer {key}")
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _KeyedUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(details, self.key), request)


class _KeyedUnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(details, self.key), request)


class _KeyedStreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_key(details, self.key), requests)


class _KeyedStreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_key(details, self.key), requests)


def authorized_channel(
    address: str, key: str = ADMIN_KEY, *, options: Sequence[tuple[str, Any]] | None = None
) -> grpc.aio.Channel:
    """An insecure channel to `address` sending `key` on every call without its own."""
    # grpc files each interceptor under one kind only: one object per kind of call.
    interceptors: list[Any] = [
        _KeyedUnaryUnary(key),
        _KeyedUnaryStream(key),
        _KeyedStreamUnary(key),
        _KeyedStreamStream(key),
    ]
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


async def create_project(channel: grpc.aio.Channel, project_id: str, time_zone: str = "") -> None:
    """Creates `project_id` with the admin key; an existing one is fine."""
    stub = dpb_grpc.SegmentDefinitionServiceStub(channel)
    request = dpb.CreateProjectRequest(project_id=project_id)
    if time_zone:
        request.project.time_zone = time_zone
    try:
        await stub.CreateProject(request, metadata=bearer(ADMIN_KEY), timeout=30)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
            raise


class StaticDecider:
    """An `AccessDecider` without a store, for tests of the server machinery (interceptors,
    shutdown, placeholders): `ADMIN_KEY` is an admin of every project and every project
    exists; any other key is unknown. Tests of access itself use the real definition store."""

    principal = Principal(PrincipalKind.SERVICE, "test-admin", key_id_of(ADMIN_KEY))

    async def check(self, credential: str, projects: tuple[str, ...], role: Role | None) -> Access:
        if credential != ADMIN_KEY:
            raise Unauthenticated("unknown API key", reason="API_KEY_UNKNOWN")
        return Access(self.principal)

    async def close(self) -> None:
        return None


async def make_key(
    channel: grpc.aio.Channel,
    grants: dict[str, int],
    *,
    person: str = "",
    service: str = "",
    expire_time: datetime | None = None,
) -> str:
    """A new key's text, made with the admin key: `grants` maps "projects/{p}" (or
    "projects/-") to an `access_pb2.Role` value; the principal is `person` or `service`."""
    stub = dpb_grpc.SegmentDefinitionServiceStub(channel)
    kind = access_pb2.PRINCIPAL_KIND_SERVICE if service else access_pb2.PRINCIPAL_KIND_PERSON
    key = access_pb2.ApiKey(
        principal=access_pb2.Principal(kind=kind, id=service or person or "someone@example.com"),
        grants=[
            access_pb2.Grant(project=p, role=access_pb2.Role.ValueType(r))
            for p, r in grants.items()
        ],
    )
    if expire_time is not None:
        key.expire_time.FromDatetime(expire_time)
    created = await stub.CreateApiKey(
        access_pb2.CreateApiKeyRequest(api_key=key), metadata=bearer(ADMIN_KEY), timeout=30
    )
    secret: str = created.secret
    return secret
