"""Keyset pagination over 2,500 segments in every order, with inserts between page calls."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from libs.model.definition import (
    DidEvent,
    EventSpec,
    LastWindow,
    Node,
    PastBehaviorQuery,
    RelativeOffset,
    TimeUnit,
)
from segments.v1 import definition_service_pb2 as pb
from services.definition.adapters.rows import segment_values
from services.definition.adapters.tables import segments
from services.definition.domain.segment import Segment, name_key, new_etag

from .helpers import Backend

DEFINITION = PastBehaviorQuery(
    root=Node(
        condition=DidEvent(
            event=EventSpec("App Launched"), window=LastWindow(RelativeOffset(7, TimeUnit.DAY))
        )
    )
)
BASE = datetime(2026, 1, 1, tzinfo=UTC)
ORDERS = [
    f"{field}{direction}"
    for field in (
        "display_name",
        "create_time",
        "update_time",
        "engagement_count",
        "dependent_segment_count",
    )
    for direction in ("", " desc")
]


def _segment(project: str, rng: random.Random) -> Segment:
    created = BASE + timedelta(seconds=rng.randrange(600))  # many ties
    return Segment(
        project_id=project,
        segment_id="s" + secrets.token_hex(6),
        display_name=f"{rng.choice(['Buyers', 'buyers', 'Churn', 'VIP'])} {secrets.token_hex(5)}",
        description="",
        definition=DEFINITION,
        creator="bulk@example.com",
        updater="bulk@example.com",
        create_time=created,
        update_time=created + timedelta(seconds=rng.randrange(3)),
        etag=new_etag(),
        engagement_count=rng.randrange(4),
        dependent_segment_count=rng.randrange(3),
    )


async def _bulk_insert(backend: Backend, project: str, count: int, rng: random.Random) -> None:
    rows = [segment_values(_segment(project, rng)) for _ in range(count)]
    async with backend.service.store.engine.begin() as conn:
        await conn.execute(sa.insert(segments), rows)


def _key(segment: Any, field: str) -> Any:
    if field == "display_name":
        return name_key(segment.display_name)
    if field in ("create_time", "update_time"):
        return getattr(segment, field).ToDatetime()
    return getattr(segment, field)


@pytest.mark.slow
async def test_pages_have_no_duplicates_or_gaps(backend: Backend, project: str) -> None:
    stub = backend.stub
    rng = random.Random(7)
    await stub.GetProject(pb.GetProjectRequest(name=f"projects/{project}"))
    await _bulk_insert(backend, project, 2_498, rng)
    parent = f"projects/{project}"
    original = {
        s.segment_id
        for s in (await stub.ListSegments(pb.ListSegmentsRequest(parent=parent))).segments
    }
    assert len(original) == 500  # more than 1,000 segments: the cap is 500
    listed_before = await stub.ListSegments(pb.ListSegmentsRequest(parent=parent, page_size=1))
    assert listed_before.total_size == 2_500
    async with backend.service.store.engine.connect() as conn:
        all_ids = set(
            (
                await conn.execute(
                    sa.select(segments.c.segment_id).where(segments.c.project_id == project)
                )
            ).scalars()
        )
    for order in ORDERS:
        field = order.split()[0]
        seen: list[Any] = []
        token = ""
        while True:
            page = await stub.ListSegments(
                pb.ListSegmentsRequest(
                    parent=parent, order_by=order, page_size=1_000, page_token=token
                )
            )
            assert len(page.segments) <= 500
            seen += page.segments
            token = page.next_page_token
            if not token:
                break
            await _bulk_insert(backend, project, 5, rng)  # lands before and after the cursor
        ids = [s.segment_id for s in seen]
        assert len(ids) == len(set(ids)), f"duplicates with {order}"
        assert all_ids <= set(ids), f"gaps with {order}"
        keys = [(_key(s, field), s.segment_id) for s in seen]
        assert keys == sorted(keys, reverse=order.endswith("desc")), order
        async with backend.service.store.engine.connect() as conn:
            all_ids = set(
                (
                    await conn.execute(
                        sa.select(segments.c.segment_id).where(segments.c.project_id == project)
                    )
                ).scalars()
            )
