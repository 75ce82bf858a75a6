"""API keys, roles and explicit projects through the definition service, on both stores."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2 as sp
from services.definition.adapters.store import SqlStore
from services.definition.adapters.tables import api_keys
from services.definition.application.access import ensure_bootstrap_key
from services.definition.domain.keys import ApiKey, Grant, hash_key, key_id_of
from tests.support.auth import ADMIN_KEY, bearer, create_project, make_key

from .helpers import Backend, Stub, create, reason_of

VIEWER, EDITOR, ADMIN = access_pb2.ROLE_VIEWER, access_pb2.ROLE_EDITOR, access_pb2.ROLE_ADMIN


async def _fails(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_key_is_shown_once_and_stored_as_its_hash_only(
    backend: Backend, stub: Stub, project: str
) -> None:
    created = await stub.CreateApiKey(
        access_pb2.CreateApiKeyRequest(
            api_key=access_pb2.ApiKey(
                principal=access_pb2.Principal(
                    kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="orchestrator"
                ),
                grants=[access_pb2.Grant(project=f"projects/{project}", role=VIEWER)],
                display_name="campaign orchestrator",
            )
        )
    )
    secret = created.secret
    assert secret.startswith("sgk_") and len(secret) == 4 + 12 + 1 + 43
    key_id = created.api_key.name.removeprefix("apiKeys/")
    assert secret.startswith(f"sgk_{key_id}_")
    assert created.api_key.creator == "bootstrap-admin"
    got = await stub.GetApiKey(access_pb2.GetApiKeyRequest(name=created.api_key.name))
    assert got == created.api_key and secret not in str(got)
    async with backend.service.store.transaction() as tx:
        row = (await tx.conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(tuple(row))
    listed = await stub.ListApiKeys(access_pb2.ListApiKeysRequest(page_size=500))
    assert created.api_key.name in [k.name for k in listed.api_keys]
    assert all(not k.HasField("revoke_time") for k in listed.api_keys)


async def test_missing_malformed_unknown_revoked_and_expired_keys_are_unauthenticated(
    backend: Backend, stub: Stub, project: str
) -> None:
    key = await make_key(backend.channel, {f"projects/{project}": VIEWER}, person="v@example.com")
    request = pb.GetProjectRequest(name=f"projects/{project}")
    assert (await stub.GetProject(request, metadata=bearer(key))).name == request.name
    expired_text = "sgk_00000000e0e0_" + "x" * 43
    async with backend.service.store.transaction() as tx:
        if await tx.get_api_key(key_id_of(expired_text)) is None:
            await tx.insert_api_key(
                ApiKey(
                    key_id=key_id_of(expired_text),
                    secret_hash=hash_key(expired_text),
                    principal=Principal(PrincipalKind.PERSON, "old@example.com"),
                    grants=(Grant(project, Role.ADMIN),),
                    display_name="",
                    creator="tests",
                    create_time=datetime.now(UTC) - timedelta(days=2),
                    expire_time=datetime.now(UTC) - timedelta(days=1),
                )
            )
    revoked = await make_key(backend.channel, {f"projects/{project}": ADMIN}, person="r@x.io")
    assert (await stub.GetProject(request, metadata=bearer(revoked))).name == request.name
    await stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(name=f"apiKeys/{key_id_of(revoked)}"))
    cases = {
        "API_KEY_MISSING": (("authorization", ""),),
        "API_KEY_MALFORMED": (("authorization", f"Basic {key}"),),
        "API_KEY_UNKNOWN": bearer("sgk_0123456789ab_" + "z" * 43),
        "API_KEY_REVOKED": bearer(revoked),
        "API_KEY_EXPIRED": bearer(expired_text),
    }
    for reason, metadata in cases.items():
        error = await _fails(stub.GetProject(request, metadata=metadata))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, reason
        assert reason_of(error) == reason
    for other in ("Bearer", "Bearer a b", "Bearer " + "x" * 600, "Token abc"):
        error = await _fails(stub.GetProject(request, metadata=(("authorization", other),)))
        assert (error.code(), reason_of(error)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "API_KEY_MALFORMED",
        )


async def test_roles_and_projects_decide_and_existence_never_leaks(
    backend: Backend, stub: Stub, project: str
) -> None:
    other = f"{project}o"
    await create_project(backend.channel, other)
    segment = await create(stub, project, "Buyers")
    viewer = await make_key(backend.channel, {f"projects/{project}": VIEWER}, person="v@x.io")
    assert await stub.GetSegment(pb.GetSegmentRequest(name=segment.name), metadata=bearer(viewer))
    denied = await _fails(
        stub.CreateSegment(
            pb.CreateSegmentRequest(parent=f"projects/{project}", segment=segment),
            metadata=bearer(viewer),
        )
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(denied) == "ROLE_TOO_SMALL" and "editor" in (denied.details() or "")
    # a project the key has no role on, and one that does not exist: the same answer
    answers = []
    for name in (f"projects/{other}", "projects/never-created"):
        error = await _fails(
            stub.GetProject(pb.GetProjectRequest(name=name), metadata=bearer(viewer))
        )
        answers.append((error.code(), reason_of(error), (error.details() or "").replace(name, "P")))
    assert answers[0] == answers[1]
    assert answers[0][:2] == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")
    # a request naming no project needs the role on all projects
    error = await _fails(
        stub.ListSegments(pb.ListSegmentsRequest(parent=""), metadata=bearer(viewer))
    )
    assert reason_of(error) == "ROLE_ON_ALL_PROJECTS_REQUIRED"
    # key and project administration need admin on all projects
    admin_of_one = await make_key(backend.channel, {f"projects/{project}": ADMIN}, person="a@x.io")
    for call in (
        stub.CreateProject(
            pb.CreateProjectRequest(project_id=f"{project}n"), metadata=bearer(admin_of_one)
        ),
        stub.ListApiKeys(access_pb2.ListApiKeysRequest(), metadata=bearer(admin_of_one)),
    ):
        error = await _fails(call)
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    # a malformed resource name is INVALID_ARGUMENT for whoever sends it
    error = await _fails(
        stub.GetSegment(pb.GetSegmentRequest(name="project/x"), metadata=bearer(viewer))
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_projects_are_not_found_and_nothing_creates_them(
    backend: Backend, stub: Stub
) -> None:
    ghost = "ghost-project"
    for call in (
        stub.GetProject(pb.GetProjectRequest(name=f"projects/{ghost}")),
        stub.ListSegments(pb.ListSegmentsRequest(parent=f"projects/{ghost}")),
        stub.CreateSegment(
            pb.CreateSegmentRequest(
                parent=f"projects/{ghost}", segment=sp.Segment(display_name="x")
            )
        ),
        stub.GetSegment(pb.GetSegmentRequest(name=f"projects/{ghost}/segments/all-users")),
    ):
        error = await _fails(call)
        assert (error.code(), reason_of(error)) == (
            grpc.StatusCode.NOT_FOUND,
            "PROJECT_NOT_FOUND",
        )
    listed = await stub.ListProjects(pb.ListProjectsRequest(page_size=500))
    assert f"projects/{ghost}" not in [p.name for p in listed.projects]


async def test_create_list_and_delete_projects(backend: Backend, stub: Stub, project: str) -> None:
    created = await stub.CreateProject(
        pb.CreateProjectRequest(
            project_id=f"{project}-ny", project=sp.Project(time_zone="America/New_York")
        )
    )
    assert (created.name, created.time_zone, created.segment_count) == (
        f"projects/{project}-ny",
        "America/New_York",
        2,
    )
    for bad, _field in (("-x", "project_id"), ("a/b", "project_id"), ("", "project_id")):
        error = await _fails(stub.CreateProject(pb.CreateProjectRequest(project_id=bad)))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
    error = await _fails(stub.CreateProject(pb.CreateProjectRequest(project_id=project)))
    assert (error.code(), reason_of(error)) == (grpc.StatusCode.ALREADY_EXISTS, "PROJECT_ID_TAKEN")
    # a key sees the projects it holds a role on
    scoped = await make_key(backend.channel, {f"projects/{project}": VIEWER}, person="s@x.io")
    mine = await stub.ListProjects(pb.ListProjectsRequest(), metadata=bearer(scoped))
    assert [p.name for p in mine.projects] == [f"projects/{project}"]
    pages, token = [], ""
    while True:
        page = await stub.ListProjects(pb.ListProjectsRequest(page_size=2, page_token=token))
        pages += [p.name for p in page.projects]
        token = page.next_page_token
        if not token:
            break
    assert pages == sorted(pages) and f"projects/{project}-ny" in pages
    # delete: refused while segments exist, unless forced; grants go; the id is never reused
    await create(stub, project, "Keep me")
    name = f"projects/{project}"
    error = await _fails(stub.DeleteProject(pb.DeleteProjectRequest(name=name)))
    assert (error.code(), reason_of(error)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PROJECT_NOT_EMPTY",
    )
    await stub.DeleteProject(pb.DeleteProjectRequest(name=name, force=True))
    error = await _fails(stub.GetProject(pb.GetProjectRequest(name=name)))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    error = await _fails(stub.GetProject(pb.GetProjectRequest(name=name), metadata=bearer(scoped)))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    key = await stub.GetApiKey(access_pb2.GetApiKeyRequest(name=f"apiKeys/{key_id_of(scoped)}"))
    assert list(key.grants) == []
    error = await _fails(stub.CreateProject(pb.CreateProjectRequest(project_id=project)))
    assert (error.code(), reason_of(error)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "PROJECT_ID_DELETED",
    )


async def test_records_name_the_principal_and_a_service_may_act_for_a_person(
    backend: Backend, stub: Stub, project: str
) -> None:
    parent = f"projects/{project}"
    service = await make_key(backend.channel, {parent: EDITOR}, service="orchestrator")
    person = await make_key(backend.channel, {parent: EDITOR}, person="pat@example.com")
    as_ada = (("x-user-email", "ada@example.com"),)
    by_service = await create(stub, project, "S1", metadata=bearer(service) + as_ada)
    by_service_alone = await create(stub, project, "S2", metadata=bearer(service))
    by_person = await create(stub, project, "S3", metadata=bearer(person) + as_ada)
    assert by_service.creator == "ada@example.com via orchestrator"
    assert by_service_alone.creator == "orchestrator"
    assert by_person.creator == "pat@example.com"  # a person never acts for another
    error = await _fails(
        create(stub, project, "S4", metadata=(*bearer(service), ("x-user-email", "nope")))
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_check_access_and_key_validation(backend: Backend, stub: Stub, project: str) -> None:
    parent = f"projects/{project}"
    key = await make_key(backend.channel, {parent: EDITOR}, service="reporting-job")
    ok = await stub.CheckAccess(
        access_pb2.CheckAccessRequest(projects=[parent], role=EDITOR), metadata=bearer(key)
    )
    assert ok.principal.id == "reporting-job" and ok.api_key == f"apiKeys/{key_id_of(key)}"
    for request, code in (
        (access_pb2.CheckAccessRequest(projects=[parent], role=ADMIN), "PERMISSION_DENIED"),
        (access_pb2.CheckAccessRequest(projects=["projects/zz"], role=VIEWER), "NOT_FOUND"),
        (access_pb2.CheckAccessRequest(projects=["nope"], role=VIEWER), "INVALID_ARGUMENT"),
        (
            access_pb2.CheckAccessRequest(projects=[parent], role=access_pb2.Role.ValueType(9)),
            "INVALID_ARGUMENT",
        ),
    ):
        error = await _fails(stub.CheckAccess(request, metadata=bearer(key)))
        assert error.code().name == code, request
    bad_keys: list[tuple[access_pb2.ApiKey, str]] = [
        (
            access_pb2.ApiKey(grants=[access_pb2.Grant(project=parent, role=VIEWER)]),
            "api_key.principal.kind",
        ),
        (
            access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_PERSON, id="no-at"),
                grants=[access_pb2.Grant(project=parent, role=VIEWER)],
            ),
            "api_key.principal.id",
        ),
        (
            access_pb2.ApiKey(
                principal=access_pb2.Principal(
                    kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="Bad Name"
                ),
                grants=[access_pb2.Grant(project=parent, role=VIEWER)],
            ),
            "api_key.principal.id",
        ),
        (
            access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="svc"),
            ),
            "api_key.grants",
        ),
        (
            access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="svc"),
                grants=[access_pb2.Grant(project="projects/missing-one", role=VIEWER)],
            ),
            "api_key.grants[0].project",
        ),
        (
            access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="svc"),
                grants=[access_pb2.Grant(project=parent)],
            ),
            "api_key.grants[0].role",
        ),
        (
            access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="svc"),
                grants=[
                    access_pb2.Grant(project=parent, role=VIEWER),
                    access_pb2.Grant(project=parent, role=ADMIN),
                ],
            ),
            "api_key.grants[1].project",
        ),
    ]
    past = access_pb2.ApiKey(
        principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="svc"),
        grants=[access_pb2.Grant(project=parent, role=VIEWER)],
    )
    past.expire_time.FromDatetime(datetime(2020, 1, 1, tzinfo=UTC))
    bad_keys.append((past, "api_key.expire_time"))
    before = await stub.ListApiKeys(access_pb2.ListApiKeysRequest(page_size=500))
    for message, field in bad_keys:
        error = await _fails(stub.CreateApiKey(access_pb2.CreateApiKeyRequest(api_key=message)))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in (error.details() or ""), (field, error.details())
    after = await stub.ListApiKeys(access_pb2.ListApiKeysRequest(page_size=500))
    assert len(after.api_keys) == len(before.api_keys)  # nothing half-written
    for name in ("apiKeys/nope", "keys/0123456789ab", "apiKeys/0123456789ab"):
        error = await _fails(stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(name=name)))
        assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


async def test_revoking_twice_keeps_the_first_time(stub: Stub, backend: Backend) -> None:
    key = await make_key(backend.channel, {"projects/-": VIEWER}, service="twice")
    name = f"apiKeys/{key_id_of(key)}"
    first = await stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(name=name))
    second = await stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(name=name))
    assert first.revoke_time == second.revoke_time and first.HasField("revoke_time")
    listed = await stub.ListApiKeys(access_pb2.ListApiKeysRequest(page_size=500))
    assert name not in [k.name for k in listed.api_keys]
    shown = await stub.ListApiKeys(access_pb2.ListApiKeysRequest(page_size=500, show_revoked=True))
    assert name in [k.name for k in shown.api_keys]
    assert ADMIN_KEY not in str(shown)


async def test_two_processes_ensuring_one_bootstrap_key_make_one_and_revoked_stays(
    backend: Backend, stub: Stub, project: str
) -> None:
    text = "bootstrap-" + secrets.token_urlsafe(32)
    other = SqlStore(backend.service.store.url)  # another process's connection to the store
    await other.open()
    try:
        await asyncio.gather(
            ensure_bootstrap_key(backend.service.store, text), ensure_bootstrap_key(other, text)
        )
        listed = await stub.ListProjects(pb.ListProjectsRequest(), metadata=bearer(text))
        assert f"projects/{project}" in [p.name for p in listed.projects]  # all projects
        name = f"apiKeys/{key_id_of(text)}"
        await stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(name=name))
        await ensure_bootstrap_key(other, text)  # a restart with the variable still set
        error = await _fails(stub.ListProjects(pb.ListProjectsRequest(), metadata=bearer(text)))
        assert reason_of(error) == "API_KEY_REVOKED"
    finally:
        await other.close()
