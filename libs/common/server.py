"""The one gRPC bootstrap of every Segments process.

`RunningServer` starts services, opens the port with health checking, server reflection and
the interceptors, and shuts down gracefully: health flips to NOT_SERVING first, then
in-flight calls get `shutdown_grace_seconds` to finish, then each service stops (stores
closed). `serve()` runs one until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

from libs.audit import AuditStore, AuditWriter
from libs.clickhouse.engine_priority import lower_engine_threads
from libs.common import tracing
from libs.common.access import AccessDecider, CachingDecider
from libs.common.access_interceptor import AccessInterceptor
from libs.common.access_peer import PeerAccessDecider
from libs.common.config import Config, ConfigError
from libs.common.errors import DomainError
from libs.common.health import DEFAULT_INTERVAL_SECONDS, HealthMonitor
from libs.common.heap import settle_heap
from libs.common.interceptors import server_interceptors
from libs.common.limits import ConcurrencyLimiter, FailedAuthLimiter
from libs.common.logging import get_logger
from libs.common.metrics import MetricsEndpoint, start_metrics_endpoint
from libs.common.peers import configure_peers
from libs.common.rpc_roles import EXPENSIVE_RPCS, RPC_ROLES, Role
from libs.common.service import Service
from libs.common.telemetry import TelemetryInterceptor
from libs.common.tls import server_credentials

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE_NAME: str = reflection.SERVICE_NAME

_log = get_logger("segments.server")


class ServerError(RuntimeError):
    """The server could not start (port in use, a service failed to start)."""


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


class RunningServer:
    """A grpc.aio server hosting `services` on `host:port` (port 0: an ephemeral port).

    Every call but health and reflection passes the access check (`libs.common.access`): its
    decider is `access` when given (tests), else the one of the hosted service that offers
    `access_decider()` (the definition service), else the definition service's CheckAccess at
    `config.peer_address("definition")`; `roles` is the role table (default `RPC_ROLES`) and
    `expensive` the methods limited per principal (default `EXPENSIVE_RPCS`).
    Health says SERVING for a service while its stores answer (checked every
    `health_interval` seconds; `libs.common.health`).
    Audit records go to `config.service_database_url("audit")` (opened on the first one).
    """

    def __init__(
        self,
        services: Sequence[Service],
        config: Config,
        *,
        host: str | None = None,
        port: int | None = None,
        access: AccessDecider | None = None,
        roles: Mapping[str, Role] = RPC_ROLES,
        expensive: Collection[str] = EXPENSIVE_RPCS,
        health_interval: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ServerError(f"a service is listed twice: {names}")
        self.services = list(services)
        self.config = config
        self.host = host if host is not None else config.host
        self.requested_port = port if port is not None else config.port
        self.port = 0
        self.health: Any = AioHealthServicer()
        self._monitor = HealthMonitor(self.health, self.services, health_interval)
        self._server: grpc.aio.Server | None = None
        self._started: list[Service] = []
        self._stopping = False
        self._access = access
        self._roles = roles
        self._expensive = expensive
        self._decider: AccessDecider | None = None
        self._audit = AuditWriter(AuditStore(config.service_database_url("audit")))
        self.metrics: MetricsEndpoint | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> int:
        """Starts every service, then the server; returns the bound port."""
        if self._server is not None:
            raise ServerError("server already started")
        if self.config.auth_disabled and not is_loopback(self.host):
            raise ServerError(
                "SEGMENTS_AUTH_DISABLED is for development on a loopback address only; "
                f"refusing to serve {self.host} without authentication"
            )
        try:
            configure_peers(self.config)
        except ConfigError as exc:
            raise ServerError(str(exc)) from exc
        tracing.configure(self.config, _trace_service_name(self.services))
        try:
            for service in self.services:
                try:
                    await service.start()
                except DomainError as exc:
                    raise ServerError(start_failure(service.name, exc, self.config)) from exc
                self._started.append(service)
            self._decider = CachingDecider(self._make_decider(), self.config.auth_cache_seconds)
            access = AccessInterceptor(
                self._decider,
                roles=self._roles,
                expensive=self._expensive,
                auth_disabled=self.config.auth_disabled,
                failures=FailedAuthLimiter(self.config.auth_failures_per_minute),
                concurrency=ConcurrencyLimiter(self.config.max_concurrent_expensive_calls),
                audit=self._audit,
            )
            server = grpc.aio.server(
                interceptors=[TelemetryInterceptor(), *server_interceptors(access)],
                # A port in use is an error, never silently shared with another process.
                options=[("grpc.so_reuseport", 0)],
            )
            for service in self.services:
                service.register(server)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            reflection.enable_server_reflection(
                [*(s.name for s in self.services), HEALTH_SERVICE_NAME, REFLECTION_SERVICE_NAME],
                server,
            )
            address = f"{self.host}:{self.requested_port}"
            try:
                credentials = server_credentials(self.config)
            except ConfigError as exc:
                raise ServerError(str(exc)) from exc
            try:
                if credentials is None:
                    port = server.add_insecure_port(address)
                else:
                    port = server.add_secure_port(address, credentials)
            except RuntimeError as exc:
                raise ServerError(
                    f"cannot listen on {self.host}:{self.requested_port}: {exc}"
                ) from exc
            if port == 0:
                raise ServerError(f"cannot listen on {self.host}:{self.requested_port}")
            await server.start()
            self._start_metrics()
        except BaseException:
            await self._stop_services()
            raise
        if self.config.auth_disabled:
            _log.warning(
                "authentication_disabled",
                message="SEGMENTS_AUTH_DISABLED is set: calls without an API key act as an "
                "admin of every project. Development only.",
            )
            print(
                "segments: WARNING: authentication is DISABLED (SEGMENTS_AUTH_DISABLED): "
                "any local caller is an admin of every project. Development only.",
                file=sys.stderr,
                flush=True,
            )
        self._server = server
        self.port = port
        await self._monitor.start()
        _log.info(
            "server_started",
            host=self.host,
            port=port,
            services=[s.name for s in self.services],
        )
        return port

    def _start_metrics(self) -> None:
        if self.config.metrics_port is None:
            return
        try:
            self.metrics = start_metrics_endpoint(self.host, self.config.metrics_port)
        except OSError as exc:
            raise ServerError(
                f"cannot serve metrics on {self.host}:{self.config.metrics_port} "
                f"(SEGMENTS_METRICS_PORT): {exc.strerror or exc}"
            ) from exc
        _log.info("metrics_endpoint_started", host=self.host, port=self.metrics.port)

    def _make_decider(self) -> AccessDecider:
        if self._access is not None:
            return self._access
        for service in self.services:
            provider = getattr(service, "access_decider", None)
            if provider is not None:
                decider: AccessDecider = provider()
                return decider
        return PeerAccessDecider(self.config.peer_address("definition"))

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, then in-flight calls finish (up to `grace`), then services stop."""
        if self._stopping:
            return
        self._stopping = True
        grace = self.config.shutdown_grace_seconds if grace is None else grace
        _log.info("server_stopping", grace_seconds=grace)
        await self._monitor.stop()
        await self.health.enter_graceful_shutdown()
        # Let health watchers see NOT_SERVING before the port closes.
        await asyncio.sleep(0)
        for service in self._started:
            drain = getattr(service, "drain", None)
            if drain is not None:
                await drain()
        if self._server is not None:
            await self._server.stop(grace)
        await self._stop_services()
        _log.info("server_stopped")

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def _stop_services(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self._decider is not None:
            await self._decider.close()
            self._decider = None
        await self._audit.close()
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception as exc:
                _log.error("service_stop_failed", service=service.name, exc_info=exc)


def service_key(name: str) -> str:
    """ "evaluator" of "segments.v1.SegmentEvaluatorService" (the name in variables)."""
    return name.rsplit(".", 1)[-1].removeprefix("Segment").removesuffix("Service").lower()


def start_failure(name: str, exc: DomainError, config: Config) -> str:
    """One line saying why a service could not start, naming the variable to check when a
    store cannot be reached."""
    key = service_key(name)
    hint = ""
    if exc.reason == "CLICKHOUSE_UNAVAILABLE":
        hint = " (check SEGMENTS_CLICKHOUSE_URL)"
    elif exc.reason == "STORE_UNREACHABLE":
        hint = f" (check {config.database_variable(key)})"
    return f"the {key} service cannot start: {exc.message}{hint}"


def _trace_service_name(services: Sequence[Service]) -> str:
    """ "segments-evaluator" for one service, "segments" for several in one process."""
    if len(services) == 1:
        return "segments-" + service_key(services[0].name)
    return "segments"


async def serve(
    services: Sequence[Service],
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    on_started: Callable[[RunningServer], Any] | None = None,
) -> int:
    """Runs `services` until SIGTERM or SIGINT, then shuts down gracefully.

    Returns the port that was bound. `on_started` (optional, may be async) runs once the
    port is open, for example to load demo data through the API.
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop_requested.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    server = RunningServer(services, config, host=host, port=port)
    try:
        bound = await server.start()
        try:
            if on_started is not None:
                result = on_started(server)
                if asyncio.iscoroutine(result):
                    await result
            settle_heap()
            if not config.clickhouse_url:
                lower_engine_threads(config.chdb_thread_nice)
            await stop_requested.wait()
        finally:
            await server.stop()
        return bound
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
