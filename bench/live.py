"""Live-segment benchmark: `python -m bench.live [--quick]`.

Each scenario runs in its own process (its own peak memory, VmHWM), against the definition
and evaluator services in that process on an ephemeral port (chDB and SQLite in a temporary
directory), through gRPC; with `--server-process` (latency and timers) the services run in a
`segments serve all` process of their own instead, the clients staying in the scenario's:

1. ingest: the same synthetic events (20 event names, an `amount` number) ingested with no
   live segment, then into a project with 100 live segments of the typical mix, then of the
   heavy mix (`_definitions`), in 5,000-event messages; events/s of each and the ratios, in
   one run.
2. latency: with the 100 segments, events sent at 1,000/s (a call of 50 every 50 ms, each
   waiting for the one before; `--overlap`: not waiting) while a subscriber follows
   StreamLiveEntries (`--per-message N`: N entries at most per message); the time from
   sending an event to receiving its entry, p50 and p99, and the rate achieved.
3. timers: N pending inaction timers due at 1,000 a second, then N due at the same instant;
   how late each entry arrives at the subscriber after its timer was due, p50 and p99.
4. sigkill: N timers due at 1,000 a second in a `segments serve all` process killed with
   SIGKILL while they fire, then restarted: each timer makes exactly one entry
   (`bench/live_sigkill.py`).
Without `--scenario`, the latency scenario runs three times: as described, then the goal's
case as deployed (calls overlapping at a true 1,000 events/s, the services in their own
process) with one entry per message and with up to 100.
Results are printed as JSON; `docs/benchmarks.md` quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.machine import CpuShare
from bench.run import peak_rss_mb

NAMES = 20


def _event(pb: Any, i: int, when: datetime, name: str | None = None) -> Any:
    from libs.model.definition_proto import datetime_to_timestamp

    msg = pb.Event(
        event_id=f"e{i}", user_id=f"u{i % 50_000}", event_name=name or f"ev{(i * 7) % NAMES}",
        event_time=datetime_to_timestamp(when),
    )  # fmt: skip
    msg.properties["amount"].number_value = float((i * 37) % 100)
    return msg


def _definitions(dm: Any, heavy: bool = False) -> list[Any]:
    """100 live segments on the event names ev0..ev99, of which the stream uses ev0..ev19:
    70 single actions, 20 inaction timers (B: the next name, T 10 minutes) and 10 more single
    actions. Typical: each with a filter passing 2 events in 100 (amount > 97), so about 2% of
    the events make an entry or a timer. Heavy: the single actions pass 1 in 10 (amount > 89),
    the last 10 and the timers have no filter: about 37% of the events do."""
    from google.protobuf.duration_pb2 import Duration

    out = []
    for i in range(100):
        spec = dm.EventSpec(event_name=f"ev{i}")
        if not heavy or i % 10 < 7:
            threshold = 89 if heavy else 97
            above = dm.Comparison(
                operator=dm.COMPARISON_OPERATOR_GREATER_THAN,
                values=[dm.Value(number_value=threshold)],
            )
            spec.filters.append(dm.PropertyFilter(property="amount", comparison=above))
        if i % 10 in (7, 8):
            trigger = dm.LiveTrigger(inaction_within=dm.InactionWithinTrigger(
                did=spec, did_not=dm.EventSpec(event_name=f"ev{i + 1}"),
                within=Duration(seconds=600)))  # fmt: skip
        else:
            trigger = dm.LiveTrigger(single_action=spec)
        out.append(dm.Definition(live=dm.LiveDefinition(trigger=trigger)))
    return out


class Suite:
    """Definition + evaluator in this process, with a client for each."""

    async def __aenter__(self) -> Suite:
        import grpc

        from libs.clickhouse.engine_priority import lower_engine_threads
        from libs.common.config import Config
        from libs.common.heap import settle_heap
        from libs.common.server import RunningServer
        from segments.v1 import definition_service_pb2_grpc as dgrpc
        from segments.v1 import evaluator_service_pb2_grpc as egrpc
        from services.cli import all_in_one_config, build_services

        # the embedded engine stays open until the process exits (one per process), and its
        # background merges may still write while the directory is removed
        self._dir = tempfile.TemporaryDirectory(
            prefix="segments-live-bench-", ignore_cleanup_errors=True
        )
        key = secrets.token_urlsafe(32)
        #: every call sends the suite's admin key
        self.auth = (("authorization", f"Bearer {key}"),)
        self._projects: set[str] = set()
        config = Config(
            port=0, data_dir=Path(self._dir.name), shutdown_grace_seconds=1.0,
            bootstrap_admin_key=key,
        )  # fmt: skip
        config = all_in_one_config(config, "127.0.0.1", 0)
        self.server = RunningServer(build_services("all", config), config)
        await self.server.start()
        settle_heap()  # as `segments serve` does once started
        lower_engine_threads(config.chdb_thread_nice)
        self.channel = grpc.aio.insecure_channel(self.server.address)
        self.definitions = dgrpc.SegmentDefinitionServiceStub(self.channel)
        self.evaluator = egrpc.SegmentEvaluatorServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close(None)
        await self.server.stop(grace=1.0)
        self._dir.cleanup()

    async def project(self, project: str) -> None:
        """Creates `project` on first use."""
        from segments.v1 import definition_service_pb2 as dpb

        if project not in self._projects:
            request = dpb.CreateProjectRequest(project_id=project)
            await self.definitions.CreateProject(request, metadata=self.auth)
            self._projects.add(project)

    async def define(self, project: str, definitions: list[Any]) -> None:
        from segments.v1 import definition_service_pb2 as dpb
        from segments.v1 import segment_pb2

        await self.project(project)
        for i, definition in enumerate(definitions):
            segment = segment_pb2.Segment(display_name=f"live {i}", definition=definition)
            await self.definitions.CreateSegment(
                dpb.CreateSegmentRequest(
                    parent=f"projects/{project}", segment_id=f"live-{i:03d}", segment=segment
                ),
                metadata=self.auth,
            )
        await asyncio.sleep(1.0)  # the feed reaches the engine

    async def ingest(self, project: str, events: list[Any], batch: int = 5_000) -> float:
        from segments.v1 import evaluator_service_pb2 as pb

        async def requests() -> AsyncIterator[Any]:
            for start in range(0, len(events), batch):
                yield pb.IngestEventsRequest(
                    parent=f"projects/{project}", events=events[start : start + batch]
                )

        await self.project(project)
        started = time.perf_counter()
        response = await self.evaluator.IngestEvents(requests(), timeout=3600, metadata=self.auth)
        assert response.accepted_count == len(events), response
        return time.perf_counter() - started


class ProcessSuite(Suite):
    """The same services in a `segments serve all` process of their own (the benchmark's
    clients in this one, as a deployment's subscribers and senders are); its peak memory is
    `server_peak_rss_mb` once closed."""

    async def __aenter__(self) -> ProcessSuite:
        import grpc

        from bench.live_sigkill import _Process
        from segments.v1 import definition_service_pb2_grpc as dgrpc
        from segments.v1 import evaluator_service_pb2_grpc as egrpc

        self._dir = tempfile.TemporaryDirectory(prefix="segments-live-bench-")
        key = secrets.token_urlsafe(32)
        self.auth = (("authorization", f"Bearer {key}"),)
        self._projects = set()
        self.process = _Process(Path(self._dir.name), key)
        await self.process.ready()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.process.port}")
        self.definitions = dgrpc.SegmentDefinitionServiceStub(self.channel)
        self.evaluator = egrpc.SegmentEvaluatorServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server_peak_rss_mb = round(peak_rss_mb(self.process.proc.pid), 1)
        await self.channel.close(None)
        self.process.stop()
        self._dir.cleanup()


def _suite(server_process: bool) -> Suite:
    return ProcessSuite() if server_process else Suite()


async def scenario_ingest(total: int) -> dict[str, Any]:
    """Rounds of the three ingests in turn (each round new event ids, the order rotating), so
    that a passing load, or the growing table, weighs on all three alike; medians."""
    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import evaluator_service_pb2 as pb

    now = datetime.now(UTC)
    projects = ["plain", "typical", "heavy"]
    seconds: dict[str, list[float]] = {p: [] for p in projects}
    async with Suite() as suite:
        await suite.define("typical", _definitions(dm))
        await suite.define("heavy", _definitions(dm, heavy=True))
        await suite.ingest("warm", [_event(pb, i, now) for i in range(5000)])
        for round_ in range(3):
            events = [_event(pb, i, now) for i in range(total)]
            for e in events:
                e.event_id = f"r{round_}-{e.event_id}"
            for project in projects[round_:] + projects[:round_]:
                seconds[project].append(await suite.ingest(project, events))
        made = {}
        for project in ("typical", "heavy"):
            day = timedelta(days=1)
            request = pb.CountLiveEntriesRequest(
                segment=f"projects/{project}/segments/live-009", bucket=pb.LIVE_ENTRY_BUCKET_DAY,
                start_time=_ts(now - day), end_time=_ts(now + day),
            )  # fmt: skip
            counts = await suite.evaluator.CountLiveEntries(request, metadata=suite.auth)
            made[project] = sum(c.entered_count for c in counts.counts)
    plain, typical, heavy = (statistics.median(seconds[p]) for p in projects)
    return {
        "events_per_round": total,
        "rounds": 3,
        "without_live_events_per_s": round(total / plain),
        "typical_100_live_events_per_s": round(total / typical),
        "typical_ratio": round(plain / typical, 3),  # throughput with / without
        "heavy_100_live_events_per_s": round(total / heavy),
        "heavy_ratio": round(plain / heavy, 3),
        "users_entered_one_segment": made,
    }


def _ts(when: datetime) -> Any:
    from libs.model.definition_proto import datetime_to_timestamp

    return datetime_to_timestamp(when)


async def _follow(
    suite: Suite,
    project: str,
    seen: dict[str, float],
    want: int,
    ready: asyncio.Event | None = None,
    per_message: int = 0,
) -> None:
    """Follows the project's entries (`per_message`: max_entries_per_message), noting when
    each trigger event's entry arrived."""
    from segments.v1 import evaluator_service_pb2 as pb

    await suite.project(project)
    request = pb.StreamLiveEntriesRequest(
        parent=f"projects/{project}", max_entries_per_message=per_message
    )
    call = suite.evaluator.StreamLiveEntries(request, metadata=suite.auth)
    await call.initial_metadata()  # following from here on
    if ready is not None:
        ready.set()
    async for response in call:
        now = time.perf_counter()
        for entry in response.entries or [response.entry]:
            seen[entry.trigger_event.event_id] = now
        if len(seen) >= want:
            call.cancel()
            return


async def scenario_latency(
    seconds: int, overlap: bool = False, server_process: bool = False, per_message: int = 0
) -> dict[str, Any]:
    """Entry latency at 1,000 events/s (a call of 50 events every 50 ms), from the call's start
    and from its answer (the events accepted), and, for comparison,
    how long the IngestEvents calls themselves took (the entry is written while the events are
    stored, before the call answers). A call waits for the one before to answer (a client
    sending one call at a time: when a call takes longer than 50 ms the rate falls short, see
    `events_per_s`); with `overlap` a call starts every 50 ms whatever the ones before do.
    With `server_process` the services run in a process of their own; `per_message`: the
    subscriber's max_entries_per_message (0: one entry per message)."""
    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import evaluator_service_pb2 as pb

    async with _suite(server_process) as suite:
        await suite.define("lat", _definitions(dm))
        sent: dict[str, float] = {}
        answered: dict[str, float] = {}
        seen: dict[str, float] = {}
        calls: list[float] = []
        ready = asyncio.Event()
        follower = asyncio.create_task(_follow(suite, "lat", seen, 10**9, ready, per_message))
        await ready.wait()

        async def send(batch: list[Any]) -> None:
            at = time.perf_counter()
            for e in batch:
                sent[e.event_id] = at
            calls.append(await suite.ingest("lat", batch) * 1000)
            done = time.perf_counter()
            for e in batch:
                answered[e.event_id] = done

        in_flight: set[asyncio.Task[None]] = set()
        machine = CpuShare()
        started = tick = time.perf_counter()
        for step in range(seconds * 20):
            batch = [_event(pb, step * 50 + k, datetime.now(UTC), name=f"ev{9 + 10 * (k % 2)}")
                     for k in range(50)]  # fmt: skip
            for e in batch:  # each of them makes an entry (the filter passes)
                e.properties["amount"].number_value = 99.0
            if overlap:
                task = asyncio.create_task(send(batch))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            else:
                await send(batch)
            tick += 0.05
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - started
        cpu = machine.shares()
        await asyncio.sleep(2.0)
        follower.cancel()
    delays = sorted((seen[i] - sent[i]) * 1000 for i in sent if i in seen)
    # from the call's answer (the events accepted): negative when the entry came first
    after = sorted((seen[i] - answered[i]) * 1000 for i in answered if i in seen)
    calls.sort()
    return {
        **_server(suite),
        "events": len(sent), "entries_received": len(delays), "overlapping_calls": overlap,
        "max_entries_per_message": per_message,
        "events_per_s": round(len(sent) / elapsed),
        "p50_ms": round(statistics.median(delays), 2),
        "p99_ms": round(delays[int(len(delays) * 0.99) - 1], 2),
        "after_answer_p50_ms": round(statistics.median(after), 2),
        "after_answer_p99_ms": round(after[int(len(after) * 0.99) - 1], 2),
        "ingest_call_p50_ms": round(statistics.median(calls), 2),
        "ingest_call_p99_ms": round(calls[int(len(calls) * 0.99) - 1], 2),
        **cpu,
    }  # fmt: skip


async def _timers(suite: Suite, project: str, count: int, within: float, spread: float) -> Any:
    """`count` inaction timers, due from `within` seconds after they are made, evenly over
    `spread` seconds (0: all at once); how late each entry reaches a subscriber."""
    from google.protobuf.duration_pb2 import Duration

    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import evaluator_service_pb2 as pb

    trigger = dm.LiveTrigger(inaction_within=dm.InactionWithinTrigger(
        did=dm.EventSpec(event_name="Cart"), did_not=dm.EventSpec(event_name="Buy"),
        within=Duration(seconds=int(within + spread))))  # fmt: skip
    await suite.define(project, [dm.Definition(live=dm.LiveDefinition(trigger=trigger))])
    now, wall = datetime.now(UTC), time.perf_counter()
    step = spread / count
    events = [_event(pb, i, now - timedelta(seconds=spread - i * step), name="Cart")
              for i in range(count)]  # fmt: skip
    due_wall = {}
    for i, e in enumerate(events):
        e.user_id = f"t{e.event_id}"
        due_wall[e.event_id] = wall + within + i * step
    seen: dict[str, float] = {}
    ready = asyncio.Event()
    follower = asyncio.create_task(_follow(suite, project, seen, count, ready))
    await ready.wait()
    ingest_s = await suite.ingest(project, events)
    pending = time.perf_counter() < wall + within
    await asyncio.wait_for(follower, within + spread + 300)
    late = sorted(max(0.0, seen[i] - due_wall[i]) for i in seen)
    return {
        "timers": count, "fired": len(late), "due_over_s": spread,
        "ingest_of_the_a_events_s": round(ingest_s, 2), "all_pending_when_first_due": pending,
        "p50_late_s": round(statistics.median(late), 3),
        "p99_late_s": round(late[int(len(late) * 0.99) - 1], 3),
        "max_late_s": round(late[-1], 3),
    }  # fmt: skip


async def scenario_timers(count: int, server_process: bool = False) -> dict[str, Any]:
    """Timers due at 1,000 a second (the goal's case), then the same number due at once (how
    fast a burst drains)."""
    within = 60.0 if count > 20_000 else 8.0
    async with _suite(server_process) as suite:
        spread = await _timers(suite, "spread", count, within, count / 1000)
        burst = await _timers(suite, "burst", count, within, 0.0)
    return {**_server(suite), "due_at_1000_per_s": spread, "due_at_once": burst}


def _server(suite: Suite) -> dict[str, Any]:
    """Where the services ran (and their peak memory when in a process of their own)."""
    if isinstance(suite, ProcessSuite):
        return {"server": "own process", "server_peak_rss_mb": suite.server_peak_rss_mb}
    return {"server": "this process"}


def _child(scenario: str, size: int, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.live", "--scenario", scenario, "--size", str(size),
         *extra],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--scenario", choices=["ingest", "latency", "timers", "sigkill"])
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument(
        "--overlap", action="store_true",
        help="latency: start a call every 50 ms without waiting for the ones before",
    )  # fmt: skip
    parser.add_argument(
        "--per-message", type=int, default=0,
        help="latency: the subscriber's max_entries_per_message (0: one entry per message)",
    )  # fmt: skip
    parser.add_argument(
        "--server-process", action="store_true",
        help="latency, timers: the services in a process of their own (`segments serve all`)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.scenario:
        from libs.common.logging import configure_logging

        configure_logging("ERROR")
        from bench.live_sigkill import scenario_sigkill

        run: dict[str, Callable[[int], Coroutine[Any, Any, dict[str, Any]]]] = {
            "ingest": scenario_ingest, "sigkill": scenario_sigkill,
            "latency": lambda size: scenario_latency(
                size, args.overlap, args.server_process, args.per_message
            ),
            "timers": lambda size: scenario_timers(size, args.server_process),
        }  # fmt: skip
        result = asyncio.run(run[args.scenario](args.size))
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(json.dumps(result))
        return
    quick = {"ingest": 30_000, "latency": 10, "timers": 10_000, "sigkill": 10_000}
    full = {"ingest": 200_000, "latency": 60, "timers": 100_000, "sigkill": 100_000}
    sizes = quick if args.quick else full
    results = {name: _child(name, size) for name, size in sizes.items()}
    # the latency goal's case as deployed: calls at a true 1,000 events a second, the services
    # in their own process, a subscriber taking one entry per message and one taking up to 100
    for per_message in (1, 100):
        results[f"latency_overlapping_{per_message}_per_message"] = _child(
            "latency", sizes["latency"], "--overlap", "--server-process",
            "--per-message", str(per_message),
        )  # fmt: skip
    print(json.dumps({"quick": args.quick, **results}, indent=2))


if __name__ == "__main__":
    main()
