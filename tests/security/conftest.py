"""One server per store backend hosting all four services (as `segments serve all` does),
with projects and keys for the access matrix and the isolation tests."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from libs.common.server import RunningServer
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
from services.cli import all_in_one_config, build_services
from services.definition.domain.keys import ApiKey, Grant, hash_key, key_id_of
from services.definition.service import DefinitionService
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project, make_key
from tests.support.postgres import temporary_database

from .samples import Ctx

ROLES = (
    access_pb2.ROLE_VIEWER,
    access_pb2.ROLE_EDITOR,
    access_pb2.ROLE_EXPORTER,
    access_pb2.ROLE_ADMIN,
)


@dataclass
class Suite:
    """The running server, an admin channel and the keys of the matrix."""

    backend: str
    server: RunningServer
    channel: grpc.aio.Channel
    ctx: Ctx
    other_key: str  # admin of another project only
    revoked_key: str
    expired_key: str
    all_projects: dict[int, str] = field(default_factory=dict)  # role -> key on all projects
    _by_project: dict[tuple[str, int], str] = field(default_factory=dict)

    async def key(self, project: str, role: int) -> str:
        """A person's key holding `role` on `project` (made on first use)."""
        if (project, role) not in self._by_project:
            self._by_project[(project, role)] = await make_key(
                self.channel, {f"projects/{project}": role}, person=f"r{role}@{project}.test"
            )
        return self._by_project[(project, role)]


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Suite]:
    backend = str(request.param)
    directory = tmp_path_factory.mktemp(f"security-{backend}")
    engine = ChdbEngine.for_path(Path(tmp_path_factory.getbasetemp()) / "chdb")
    (directory / "chdb").symlink_to(engine.path, target_is_directory=True)
    async with AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{directory / 'definitions.sqlite3'}"
        else:
            url = await stack.enter_async_context(temporary_database())
        async with _serve(backend, directory, url) as suite:
            yield suite


@asynccontextmanager
async def _serve(backend: str, directory: Path, url: str) -> AsyncIterator[Suite]:
    config = all_in_one_config(
        replace(
            Config(),
            data_dir=directory,
            database_url=url,
            clickhouse_database=f"mx_{uuid.uuid4().hex[:12]}",
            bootstrap_admin_key=ADMIN_KEY,
            shutdown_grace_seconds=1.0,
            # the matrix sends hundreds of bad keys from one address on purpose
            auth_failures_per_minute=0,
        ),
        "127.0.0.1",
        0,
    )
    server = RunningServer(build_services("all", config), config)
    await server.start()
    channel = authorized_channel(server.address)
    try:
        ctx = Ctx(
            "mx-a",
            channel,
            dpb_grpc.SegmentDefinitionServiceStub(channel),
            epb_grpc.SegmentEvaluatorServiceStub(channel),
        )
        await create_project(channel, "mx-a")
        await create_project(channel, "mx-b")
        revoked = await make_key(channel, {"projects/-": access_pb2.ROLE_ADMIN}, service="gone")
        await ctx.definitions.RevokeApiKey(
            access_pb2.RevokeApiKeyRequest(name=f"apiKeys/{key_id_of(revoked)}")
        )
        expired = "sgk_0000000e0e0e_" + secrets.token_urlsafe(32)
        definition = next(s for s in server.services if isinstance(s, DefinitionService))
        async with definition.store.transaction() as tx:
            await tx.insert_api_key(
                ApiKey(
                    key_id=key_id_of(expired),
                    secret_hash=hash_key(expired),
                    principal=Principal(PrincipalKind.SERVICE, "expired"),
                    grants=(Grant("-", Role.ADMIN),),
                    display_name="",
                    creator="tests",
                    create_time=datetime.now(UTC) - timedelta(days=2),
                    expire_time=datetime.now(UTC) - timedelta(days=1),
                )
            )
        suite = Suite(
            backend,
            server,
            channel,
            ctx,
            other_key=await make_key(
                channel, {"projects/mx-b": access_pb2.ROLE_ADMIN}, person="b@b.io"
            ),
            revoked_key=revoked,
            expired_key=expired,
        )
        for role in ROLES:
            suite.all_projects[role] = await make_key(
                channel, {"projects/-": role}, service=f"all-{role}"
            )
        yield suite
    finally:
        await channel.close(None)
        await server.stop(grace=1.0)
