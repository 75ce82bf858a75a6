"""What grpc health says about each hosted service, kept up to date.

A service is SERVING while its stores answer: a service offering
`async def health_problem() -> str | None` is asked every `interval` seconds
(None: fine, else what is wrong), and flips to NOT_SERVING while it reports a problem, back to
SERVING by itself once the problem is gone. A service that implements nothing (its
`implemented` attribute is False: a placeholder) is NOT_SERVING. The server as a whole (the
empty service name) is SERVING while every implemented service is (and it hosts one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from grpc_health.v1 import health_pb2

from libs.common.logging import get_logger
from libs.common.service import Service

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: Seconds between two checks of the stores.
DEFAULT_INTERVAL_SECONDS = 5.0

_log = get_logger("segments.health")


def implemented(service: Service) -> bool:
    return bool(getattr(service, "implemented", True))


class HealthMonitor:
    """Sets the health status of `services` in `health` (a grpc health servicer) now, then
    every `interval` seconds until `stop()`."""

    def __init__(self, health: Any, services: Sequence[Service], interval: float) -> None:
        self._health = health
        self._services = list(services)
        self._interval = interval
        self._problems: dict[str, str | None] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception as exc:  # pragma: no cover - defensive: keep watching
                _log.error("health_check_failed", exc_info=exc)

    async def _problem(self, service: Service) -> str | None:
        if not implemented(service):
            return "implements no RPC yet"
        check = getattr(service, "health_problem", None)
        if check is None:
            return None
        timeout = max(1.0, min(self._interval, 5.0))
        try:
            async with asyncio.timeout(timeout):
                problem: str | None = await check()
        except TimeoutError:
            return f"its stores did not answer within {timeout:g} s"
        except Exception as exc:
            _log.error("health_check_failed", service=service.name, exc_info=exc)
            return f"its health check failed: {type(exc).__name__}"
        return problem

    async def refresh(self) -> None:
        """Checks every service once and publishes the outcome."""
        problems = await asyncio.gather(*(self._problem(s) for s in self._services))
        anything = any(implemented(s) for s in self._services)
        everything = SERVING if anything else NOT_SERVING
        for service, problem in zip(self._services, problems, strict=True):
            before = self._problems.get(service.name, "")
            self._problems[service.name] = problem
            await self._health.set(service.name, SERVING if problem is None else NOT_SERVING)
            if problem is not None and implemented(service):
                everything = NOT_SERVING
                if problem != before:
                    _log.warning("service_not_serving", service=service.name, problem=problem)
            elif problem is None and before not in (None, ""):
                _log.info("service_serving_again", service=service.name)
        await self._health.set("", everything)
