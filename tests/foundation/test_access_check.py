"""The pieces of the access check: which projects a request names, the decision cache, the
configuration of keys, and the development mode without keys."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from libs.common.access import Access, CachingDecider, access_changed, named_projects
from libs.common.config import Config, ConfigError
from libs.common.errors import InvalidArgument, Unauthenticated
from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from libs.common.server import RunningServer, ServerError
from libs.common.status import call_status
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import segment_pb2 as sp
from services.definition.service import DefinitionService
from tests.support.auth import ADMIN_KEY, bearer

from .conftest import FakeService, make_server, raw_method


def test_named_projects_reads_parent_name_segment_names_and_message_fields() -> None:
    assert named_projects(dpb.ListSegmentsRequest(parent="projects/a")) == ("a",)
    assert named_projects(dpb.GetSegmentRequest(name="projects/b/segments/s")) == ("b",)
    assert named_projects(epb.CountSegmentRequest(segment="projects/c/segments/s")) == ("c",)
    assert named_projects(
        dpb.BatchDeleteSegmentsRequest(
            parent="projects/a", names=["projects/a/segments/x", "projects/z/segments/y"]
        )
    ) == ("a", "z")
    update = dpb.UpdateSegmentRequest(segment=sp.Segment(name="projects/d/segments/s"))
    assert named_projects(update) == ("d",)
    header = epb.UploadCustomListRequest(
        header=epb.UploadCustomListHeader(segment="projects/e/segments/l")
    )
    assert named_projects(header) == ("e",)
    assert named_projects(epb.UploadCustomListRequest(chunk=b"a,b")) == ()
    assert named_projects(dpb.ListSegmentsRequest()) == ()
    assert named_projects(b"raw bytes") == ()
    for bad in ("project/x", "projects/", "projects/-", "projects/a b/segments/s", "x"):
        with pytest.raises(InvalidArgument) as caught:
            named_projects(dpb.GetSegmentRequest(name=bad))
        assert caught.value.violations[0].field == "name"


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def check(self, credential: str, projects: tuple[str, ...], role: Role | None) -> Access:
        self.calls += 1
        if credential == "bad":
            raise Unauthenticated("unknown API key", reason="API_KEY_UNKNOWN")
        return Access(Principal(PrincipalKind.SERVICE, "svc", "k1"))

    async def close(self) -> None:
        return None


async def test_the_cache_reuses_allowing_decisions_for_its_time_only() -> None:
    now = [100.0]
    inner = _Counting()
    cache = CachingDecider(inner, ttl_seconds=5, clock=lambda: now[0])
    for _ in range(3):
        await cache.check("good", ("p",), Role.VIEWER)
    assert inner.calls == 1
    await cache.check("good", ("q",), Role.VIEWER)  # another question: asked
    assert inner.calls == 2
    now[0] += 5.1
    await cache.check("good", ("p",), Role.VIEWER)
    assert inner.calls == 3
    for _ in range(2):  # refusals are never kept
        with pytest.raises(Unauthenticated):
            await cache.check("bad", ("p",), Role.VIEWER)
    assert inner.calls == 5
    access_changed()  # a key revoked or a project deleted in this process
    await cache.check("good", ("p",), Role.VIEWER)
    assert inner.calls == 6
    uncached = CachingDecider(inner, ttl_seconds=0)
    await uncached.check("good", ("p",), Role.VIEWER)
    await uncached.check("good", ("p",), Role.VIEWER)
    assert inner.calls == 8


def test_key_settings_are_checked() -> None:
    good = "k" * 32
    config = Config.from_env(
        {
            "SEGMENTS_BOOTSTRAP_ADMIN_KEY": good,
            "SEGMENTS_SERVICE_KEY": good,
            "SEGMENTS_AUTH_CACHE_SECONDS": "0",
            "SEGMENTS_AUTH_DISABLED": "true",
        }
    )
    assert config.bootstrap_admin_key == good and config.auth_disabled
    assert good not in repr(config)
    for env in (
        {"SEGMENTS_BOOTSTRAP_ADMIN_KEY": "short"},
        {"SEGMENTS_SERVICE_KEY": "has a space " * 4},
        {"SEGMENTS_AUTH_CACHE_SECONDS": "-1"},
        {"SEGMENTS_AUTH_CACHE_SECONDS": "301"},
        {"SEGMENTS_AUTH_DISABLED": "maybe"},
    ):
        with pytest.raises(ConfigError) as caught:
            Config.from_env(env)
        assert next(iter(env)) in str(caught.value)


async def test_development_mode_only_on_loopback(tmp_path: Path) -> None:
    config = replace(Config(), data_dir=tmp_path, auth_disabled=True, shutdown_grace_seconds=1)
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
    with pytest.raises(ServerError, match="loopback"):
        await RunningServer([DefinitionService(url)], config, host="0.0.0.0", port=0).start()
    service = DefinitionService(url, auth_disabled=True)
    server = RunningServer([service], config, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = dpb_grpc.SegmentDefinitionServiceStub(channel)
            await stub.CreateProject(dpb.CreateProjectRequest(project_id="dev"), timeout=10)
            created = await stub.CreateSegment(
                dpb.CreateSegmentRequest(
                    parent="projects/dev",
                    segment=sp.Segment(display_name="Everyone", definition=_all_time("Open")),
                ),
                timeout=10,
            )
            assert created.creator == "anonymous"
            with pytest.raises(grpc.aio.AioRpcError) as caught:  # a key is still checked
                await stub.GetProject(
                    dpb.GetProjectRequest(name="projects/dev"),
                    metadata=(("authorization", "Bearer " + "n" * 40),),
                    timeout=10,
                )
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as caught:  # projects stay explicit
                await stub.GetProject(dpb.GetProjectRequest(name="projects/nope"), timeout=10)
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop()


def _all_time(event: str) -> dm.Definition:
    return dm.Definition(
        past_behavior=dm.PastBehaviorQuery(
            root=dm.Node(
                did_event=dm.DidEventCondition(
                    event=dm.EventSpec(event_name=event),
                    window=dm.TimeWindow(all_time=dm.AllTime()),
                )
            )
        )
    )


async def test_a_method_missing_from_the_role_table_is_refused(tmp_path: Path) -> None:
    handlers = {"unlisted": grpc.unary_unary_rpc_method_handler(lambda r, c: b"served")}
    server = make_server([FakeService(handlers)], replace(Config(), data_dir=tmp_path))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            method = raw_method(channel, "unary_unary", "unlisted")
            for metadata, code, reason in (
                ((), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING"),
                (bearer(ADMIN_KEY), grpc.StatusCode.PERMISSION_DENIED, "RPC_NOT_IN_ROLE_TABLE"),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await method(b"", metadata=metadata, timeout=10)
                assert caught.value.code() is code
                status = call_status(caught.value)
                assert status is not None
                info = error_details_pb2.ErrorInfo()
                assert status.details[0].Unpack(info) and info.reason == reason
    finally:
        await server.stop()
