"""Loads `services.demo.DemoData` into a running suite through its public gRPC API.

First it makes sure the demo project exists and that `<data dir>/demo.key` holds a working
API key with admin on it (created through the API with this process's own credential, which
only works in the process serving the suite); every later step uses that key.

Each step that a service answers with UNIMPLEMENTED is logged as skipped, so the demo works
while services are still landing and fills up as they do. Re-running it is harmless: segment
creation uses fixed ids and idempotency keys, events carry fixed ids, profiles are upserts,
and a working key in demo.key is kept.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from libs.common.access import internal_credential
from libs.common.logging import get_logger
from libs.model.definition_proto import date_to_proto
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as ds
from segments.v1 import definition_service_pb2_grpc as ds_grpc
from segments.v1 import evaluator_service_pb2 as ev
from segments.v1 import evaluator_service_pb2_grpc as ev_grpc
from segments.v1 import reporting_service_pb2 as rp
from segments.v1 import reporting_service_pb2_grpc as rp_grpc
from services.demo import PROJECT, DemoData
from services.demo_export import export_worked_example

DEMO_USER = "demo@segments.example"
#: the daily job runs for the data set's last days, so that every segment has a trend
REPORT_DAYS = 14
TREND_SEGMENT = "cart-abandoners-7d"
EVENT_BATCH = 1000
_log = get_logger("segments.demo")

SKIPPED = "skipped (not implemented yet)"


async def _step(outcomes: dict[str, str], name: str, call: Callable[[], Awaitable[str]]) -> None:
    try:
        outcome = await call()
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            outcome = SKIPPED
            _log.info("demo_step_skipped", step=name, reason=exc.details())
        elif exc.code() is grpc.StatusCode.ALREADY_EXISTS:
            outcome = "already present"
            _log.info("demo_step_already_done", step=name)
        else:
            outcome = f"failed: {exc.code().name}: {exc.details()}"
            _log.error("demo_step_failed", step=name, code=exc.code().name, error=exc.details())
    else:
        _log.info("demo_step_done", step=name, outcome=outcome)
    outcomes[name] = outcome


def _read_key(key_file: Path) -> str:
    return key_file.read_text().strip() if key_file.exists() else ""


def _write_key(key_file: Path, secret: str) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(secret + "\n")
    os.chmod(key_file, 0o600)


async def _key_works(definitions: Any, key: str) -> bool:
    try:
        await definitions.CheckAccess(
            access_pb2.CheckAccessRequest(projects=[PROJECT], role=access_pb2.ROLE_ADMIN),
            metadata=(("authorization", f"Bearer {key}"),),
        )
    except grpc.aio.AioRpcError:
        return False
    return True


async def demo_key(definitions: Any, key_file: Path) -> str:
    """The demo project made sure of, and an API key with admin on it: the one in `key_file`
    when it still works, else a new one written there (readable by its owner only)."""
    internal = (("authorization", f"Bearer {internal_credential()}"),)
    try:
        await definitions.CreateProject(
            ds.CreateProjectRequest(project_id=PROJECT.removeprefix("projects/")),
            metadata=internal,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
            raise
    key = await asyncio.to_thread(_read_key, key_file)
    if key and await _key_works(definitions, key):
        return key
    created = await definitions.CreateApiKey(
        access_pb2.CreateApiKeyRequest(
            api_key=access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_PERSON, id=DEMO_USER),
                grants=[access_pb2.Grant(project=PROJECT, role=access_pb2.ROLE_ADMIN)],
                display_name="demo key (make demo)",
            )
        ),
        metadata=internal,
    )
    secret: str = created.secret
    await asyncio.to_thread(_write_key, key_file, secret)
    _log.info("demo_key_created", key=created.api_key.name, file=str(key_file))
    return secret


async def load(address: str, data: DemoData, key_file: Path) -> dict[str, str]:
    """Runs every step against `address`; returns {step: outcome}. The demo's API key is
    kept in `key_file`."""
    outcomes: dict[str, str] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        definitions = ds_grpc.SegmentDefinitionServiceStub(channel)
        evaluator = ev_grpc.SegmentEvaluatorServiceStub(channel)
        key = await demo_key(definitions, key_file)
        metadata = (("authorization", f"Bearer {key}"),)

        async def get_project() -> str:
            project = await definitions.GetProject(
                ds.GetProjectRequest(name=PROJECT), metadata=metadata
            )
            return f"project {project.name} ({project.time_zone or 'UTC'})"

        await _step(outcomes, "get project", get_project)

        for segment_id, segment in data.segments:

            async def create(segment_id: str = segment_id, segment: Any = segment) -> str:
                created = await definitions.CreateSegment(
                    ds.CreateSegmentRequest(
                        parent=PROJECT,
                        segment=segment,
                        segment_id=segment_id,
                        request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo/{segment_id}")),
                    ),
                    metadata=metadata,
                )
                return f"created {created.name}"

            await _step(outcomes, f"create segment {segment_id}", create)

        async def upsert() -> str:
            response = await evaluator.UpsertProfiles(
                ev.UpsertProfilesRequest(parent=PROJECT, profiles=data.profiles),
                metadata=metadata,
            )
            return f"{response.upserted_count} profiles, {len(response.errors)} rejected"

        await _step(outcomes, "upsert profiles", upsert)

        async def requests() -> AsyncIterator[ev.IngestEventsRequest]:
            for start in range(0, len(data.events), EVENT_BATCH):
                yield ev.IngestEventsRequest(
                    parent=PROJECT, events=data.events[start : start + EVENT_BATCH]
                )

        async def ingest() -> str:
            response = await evaluator.IngestEvents(requests(), metadata=metadata)
            return (
                f"{response.accepted_count} accepted, {response.duplicate_count} duplicates, "
                f"{response.rejected_count} rejected"
            )

        await _step(outcomes, "ingest events", ingest)

        for segment_id, _ in data.segments:
            if segment_id.startswith("live-"):
                continue

            async def count(segment_id: str = segment_id) -> str:
                # as of now: the data set ends at the start of today
                response = await evaluator.CountSegment(
                    ev.CountSegmentRequest(
                        segment=f"{PROJECT}/segments/{segment_id}", sample_size=5
                    ),
                    metadata=metadata,
                )
                return f"{response.user_count} users now"

            await _step(outcomes, f"count {segment_id}", count)

        await _step(
            outcomes,
            "export ny-facebook-april-lapsed",
            lambda: export_worked_example(channel, metadata, data.as_of),
        )
        await _daily_reports(channel, metadata, outcomes, data.as_of)

    for step, outcome in outcomes.items():
        print(f"  demo: {step}: {outcome}", flush=True)
    return outcomes


async def _daily_reports(
    channel: grpc.aio.Channel, metadata: Any, outcomes: dict[str, str], as_of: datetime
) -> None:
    """Runs the daily job for the data set's last REPORT_DAYS days, and reads a trend."""
    reporting = rp_grpc.SegmentReportingServiceStub(channel)
    last = as_of.date() - timedelta(days=1)
    days = [last - timedelta(days=i) for i in reversed(range(REPORT_DAYS))]

    async def run_days() -> str:
        states = []
        for day in days:
            run = await reporting.RunDailyJob(
                rp.RunDailyJobRequest(parent=PROJECT, date=date_to_proto(day)),
                metadata=metadata,
            )
            states.append(rp.DailyRunState.Name(run.state).removeprefix("DAILY_RUN_STATE_"))
        return f"{len(days)} days ({days[0]} to {days[-1]}): {', '.join(sorted(set(states)))}"

    await _step(outcomes, "daily job", run_days)

    async def read_trend() -> str:
        response = await reporting.GetSegmentTrend(
            rp.GetSegmentTrendRequest(
                segment=f"{PROJECT}/segments/{TREND_SEGMENT}",
                start_date=date_to_proto(days[0]),
                end_date=date_to_proto(days[-1]),
            ),
            metadata=metadata,
        )
        return "users a day: " + " ".join(str(p.user_count) for p in response.points)

    await _step(outcomes, f"trend {TREND_SEGMENT}", read_trend)
