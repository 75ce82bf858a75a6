"""Live-segment benchmark, SIGKILL scenario (run by `python -m bench.live`).

N inaction timers due at 1,000 a second in a `segments serve all` process (its own data
directory: chDB and SQLite); once about a third of them fired, the process is killed with
SIGKILL and a new one started on the same data. A subscriber follows the entries through both
(resuming after the last cursor it read): every timer must make exactly one entry, none lost
and none twice. Reported: how many fired before the kill and after the restart, duplicates,
missing, how long the new process took to answer, and how late the entries after the restart
were.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.run import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    """`segments serve all` on `data_dir`, as a subprocess."""

    def __init__(self, data_dir: Path, key: str) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_")}
        env.update(
            SEGMENTS_DATA_DIR=str(data_dir),
            SEGMENTS_LOG_LEVEL="WARNING",
            SEGMENTS_BOOTSTRAP_ADMIN_KEY=key,
        )
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "all", "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self) -> float:
        """Waits until the evaluator answers; seconds since the start."""
        for _ in range(1200):
            async with Channel(self.port, "") as channel:
                if await channel.serving():
                    return time.perf_counter() - self.started
            await asyncio.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Channel:
    """A client of one server process, with the benchmark's key."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.auth = (("authorization", f"Bearer {key}"),)

    async def __aenter__(self) -> Channel:
        import grpc

        from segments.v1 import definition_service_pb2_grpc as dgrpc
        from segments.v1 import evaluator_service_pb2_grpc as egrpc

        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.definitions = dgrpc.SegmentDefinitionServiceStub(self.channel)
        self.evaluator = egrpc.SegmentEvaluatorServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close(None)

    async def serving(self) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        request = health_pb2.HealthCheckRequest(service="segments.v1.SegmentEvaluatorService")
        try:
            reply = await stub.Check(request, timeout=1)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def define(self, project: str, definition: Any) -> None:
        from segments.v1 import definition_service_pb2 as dpb
        from segments.v1 import segment_pb2

        await self.definitions.CreateProject(
            dpb.CreateProjectRequest(project_id=project), metadata=self.auth
        )
        segment = segment_pb2.Segment(display_name="killed", definition=definition)
        request = dpb.CreateSegmentRequest(
            parent=f"projects/{project}", segment_id="timers", segment=segment
        )
        await self.definitions.CreateSegment(request, metadata=self.auth)
        await asyncio.sleep(1.0)  # the feed reaches the engine

    async def ingest(self, project: str, events: list[Any], batch: int = 5_000) -> None:
        from segments.v1 import evaluator_service_pb2 as pb

        async def requests() -> AsyncIterator[Any]:
            for start in range(0, len(events), batch):
                yield pb.IngestEventsRequest(
                    parent=f"projects/{project}", events=events[start : start + batch]
                )

        response = await self.evaluator.IngestEvents(requests(), timeout=3600, metadata=self.auth)
        assert response.accepted_count == len(events), response

    async def follow(self, project: str, after: str) -> AsyncGenerator[Any, None]:
        from segments.v1 import evaluator_service_pb2 as pb

        request = pb.StreamLiveEntriesRequest(parent=f"projects/{project}", resume_after=after)
        call = self.evaluator.StreamLiveEntries(request, metadata=self.auth)
        try:
            async for response in call:
                yield response.entry
        finally:
            call.cancel()


async def scenario_sigkill(count: int) -> dict[str, Any]:
    from google.protobuf.duration_pb2 import Duration

    from bench.live import _event
    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import evaluator_service_pb2 as pb

    key = secrets.token_urlsafe(32)
    spread = count / 1000
    within = 60.0 if count > 20_000 else 15.0
    seen: dict[str, int] = {}  # timer's A event id -> entries received
    late_after_restart: list[float] = []
    with tempfile.TemporaryDirectory(prefix="segments-live-kill-") as tmp:
        first = _Process(Path(tmp), key)
        second: _Process | None = None
        try:
            await first.ready()
            async with Channel(first.port, key) as channel:
                trigger = dm.LiveTrigger(inaction_within=dm.InactionWithinTrigger(
                    did=dm.EventSpec(event_name="Cart"), did_not=dm.EventSpec(event_name="Buy"),
                    within=Duration(seconds=int(within + spread))))  # fmt: skip
                await channel.define(
                    "killed", dm.Definition(live=dm.LiveDefinition(trigger=trigger))
                )
                now, wall = datetime.now(UTC), time.perf_counter()
                step = spread / count
                events = [_event(pb, i, now - timedelta(seconds=spread - i * step), name="Cart")
                          for i in range(count)]  # fmt: skip
                due_wall = {}
                for i, e in enumerate(events):
                    e.user_id = f"t{e.event_id}"
                    due_wall[e.event_id] = wall + within + i * step
                await channel.ingest("killed", events)
                pending = time.perf_counter() < wall + within
                last = "0"
                async for entry in channel.follow("killed", "0"):
                    seen[entry.trigger_event.event_id] = (
                        seen.get(entry.trigger_event.event_id, 0) + 1
                    )
                    last = entry.cursor
                    if len(seen) >= count // 3:
                        break
            before_kill = len(seen)
            peaks = [peak_rss_mb(first.proc.pid)]
            first.kill()
            killed_at = time.perf_counter()
            second = _Process(Path(tmp), key)
            restart_s = await second.ready()
            async with Channel(second.port, key) as channel:
                deadline = time.perf_counter() + within + spread + 600
                follower = channel.follow("killed", last)
                while len(seen) < count and time.perf_counter() < deadline:
                    try:
                        entry = await asyncio.wait_for(anext(follower), 60)
                    except TimeoutError:
                        break
                    event_id = entry.trigger_event.event_id
                    seen[event_id] = seen.get(event_id, 0) + 1
                    late_after_restart.append(max(0.0, time.perf_counter() - due_wall[event_id]))
                # anything more within a few seconds would be an entry made twice
                try:
                    while True:
                        entry = await asyncio.wait_for(anext(follower), 3.0)
                        seen[entry.trigger_event.event_id] += 1
                except (TimeoutError, StopAsyncIteration):
                    pass
                await follower.aclose()
            peaks.append(peak_rss_mb(second.proc.pid))
        finally:
            first.stop()
            if second is not None:
                second.stop()
    late_after_restart.sort()
    n = len(late_after_restart)
    return {
        "timers": count, "due_over_s": spread, "all_pending_when_first_due": pending,
        "fired_before_kill": before_kill, "fired_after_restart": n,
        "missing": count - len(seen), "made_twice": sum(1 for v in seen.values() if v > 1),
        "restart_to_serving_s": round(restart_s, 2),
        "late_after_restart_p50_s": round(statistics.median(late_after_restart), 3) if n else None,
        "late_after_restart_p99_s": round(late_after_restart[int(n * 0.99) - 1], 3) if n else None,
        "killed_at_s_after_first_due": round(killed_at - (wall + within), 2),
        "server_peak_rss_mb_before_and_after_kill": peaks,
    }  # fmt: skip
