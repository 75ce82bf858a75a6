"""Live entries over gRPC, with the live tables on SQLite and PostgreSQL: event triggers and
their filters, stable entry ids, replayed batches, resuming from a cursor, re-entry policies,
the past-behaviour part, and events too old to trigger anything."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import segment_pb2

from ..grpc_stack import TIMEOUT, did, past, rich
from ..support import event
from .conftest import T0
from .helpers import Live, equals, live_def, seconds, single, users


async def test_single_action_with_filters_enters_once_per_event_and_replays_add_nothing(
    live: Live,
) -> None:
    seg = await live.define("big-buy", single("Buy", equals("currency", "USD")))
    batch = [
        event("e1", "u1", "Buy", T0, currency="USD", amount=5),
        event("e2", "u2", "Buy", T0 + timedelta(seconds=1), currency="EUR"),
        event("e3", "u3", "View", T0, currency="USD"),
        event("e4", "u1", "Buy", T0 + timedelta(seconds=2), currency="USD"),
    ]
    got = await live.ingest(*batch)
    assert got.accepted_count == 4
    entries = await live.entries(2)
    assert users(entries) == ["u1", "u1"]
    first = entries[0]
    assert first.segment == seg
    assert first.trigger_event.event_id == "e1"
    assert first.trigger_event.properties["amount"].number_value == 5
    assert first.entry_time.ToDatetime().replace(tzinfo=T0.tzinfo) == T0
    assert not first.late
    assert len({e.entry_id for e in entries}) == 2
    assert int(entries[0].cursor) < int(entries[1].cursor)

    again = await live.ingest(*batch)  # the same batch re-sent: no second entry
    assert again.duplicate_count == 4
    assert len(await live.entries(2)) == 2


async def test_a_subscriber_resumes_after_its_cursor_and_gets_each_entry_once_in_order(
    live: Live,
) -> None:
    await live.define("buyers", single("Buy"))
    await live.ingest(*[event(f"e{i}", f"u{i}", "Buy", T0) for i in range(3)])
    first = await live.entries(3)
    assert users(first) == ["u0", "u1", "u2"]
    # the subscriber processed two, then went away; more entries arrive meanwhile
    await live.ingest(*[event(f"e{i}", f"u{i}", "Buy", T0) for i in range(3, 5)])
    resumed = await live.entries(3, after=first[1].cursor)
    assert users(resumed) == ["u2", "u3", "u4"]
    assert resumed[0].entry_id == first[2].entry_id
    cursors = [int(e.cursor) for e in resumed]
    assert cursors == sorted(cursors)


async def test_a_follower_sees_new_entries_as_they_are_made(live: Live) -> None:
    seg = await live.define("buyers", single("Buy"))
    call = live.stack.evaluator.StreamLiveEntries(
        pb.StreamLiveEntriesRequest(segment=seg),  # no cursor: only entries made from now on
        timeout=TIMEOUT,
    )
    try:
        await call.initial_metadata()  # following from here on
        await live.ingest(event("e1", "u1", "Buy", T0))
        response = await call.read()
        assert isinstance(response, pb.StreamLiveEntriesResponse)
        assert response.entry.user_id == "u1"
    finally:
        call.cancel()


async def test_page_visit_referrer_and_campaign_triggers(live: Live) -> None:
    def visit(m: dm.UrlMatch) -> dm.Definition:
        return live_def(dm.LiveTrigger(page_visit=m))

    regex = await live.define(
        "shoes-or-home",
        visit(dm.UrlMatch(operator=dm.URL_MATCH_OPERATOR_MATCHES, pattern=r"/(shoes|home)$")),
    )
    starts = await live.define(
        "shop",
        visit(dm.UrlMatch(operator=dm.URL_MATCH_OPERATOR_STARTS_WITH, pattern="HTTPS://SHOP.")),
    )
    ref = await live.define(
        "from-facebook",
        live_def(dm.LiveTrigger(referrer=dm.ReferrerTrigger(referrer_url=dm.UrlMatch(
            operator=dm.URL_MATCH_OPERATOR_CONTAINS, pattern="facebook")))),
    )  # fmt: skip
    camp = await live.define(
        "spring",
        live_def(dm.LiveTrigger(referrer=dm.ReferrerTrigger(campaign=dm.UrlMatch(
            operator=dm.URL_MATCH_OPERATOR_EQUALS, pattern="spring-2026")))),
    )  # fmt: skip
    await live.ingest(
        event("v1", "u1", "Page Visited", T0, url="https://shop.example.com/shoes"),
        event("v2", "u2", "Page Visited", T0, url="https://blog.example.com/home/x",
              referrer="https://m.Facebook.com/"),
        event("v3", "u3", "Page Visited", T0, utm_campaign="Spring-2026"),
        event("v4", "u4", "Page Visited", T0, utm_campaign="spring-2026", url=5),
        event("v5", "u5", "Clicked", T0, url="https://shop.example.com/shoes"),
    )  # fmt: skip
    found = {(e.segment, e.user_id) for e in await live.entries(4)}
    assert found == {(regex, "u1"), (starts, "u1"), (ref, "u2"), (camp, "u4")}


async def test_page_count_in_a_session_and_in_a_rolling_window(live: Live) -> None:
    session = await live.define(
        "three-in-session",
        live_def(
            dm.LiveTrigger(page_count=dm.PageCountTrigger(pages=3, session=dm.SessionScope()))
        ),
    )
    window = await live.define(
        "two-in-ten-minutes",
        live_def(dm.LiveTrigger(page_count=dm.PageCountTrigger(
            pages=2, window=dm.RelativeOffset(amount=10, unit=dm.TIME_UNIT_MINUTE)))),
    )  # fmt: skip
    minute = timedelta(minutes=1)
    live.clock.set(T0 + timedelta(minutes=12))
    await live.ingest(
        event("p1", "u1", "Page Visited", T0, session_id="s1"),
        event("p2", "u1", "Page Visited", T0 + minute, session_id="s1"),
    )
    await live.ingest(  # a separate batch: counts carry over
        event("p3", "u1", "Page Visited", T0 + 2 * minute, session_id="s2"),
        event("p4", "u1", "Page Visited", T0 + 3 * minute, session_id="s1"),
        event("p5", "u1", "Page Visited", T0 + 4 * minute, session_id="s1"),
        event("q1", "u2", "Page Visited", T0, session_id="x"),
        event("q2", "u2", "Page Visited", T0 + 11 * minute, session_id="x"),
    )
    found = await live.entries(5)
    in_session = [e for e in found if e.segment == session]
    assert [(e.user_id, e.trigger_event.event_id) for e in in_session] == [("u1", "p5")]
    # the session reached three views with p4 (its third): that is when the user qualified
    assert in_session[0].entry_time.ToDatetime() == (T0 + 3 * minute).replace(tzinfo=None)
    in_window = sorted((e.user_id, e.trigger_event.event_id) for e in found if e.segment == window)
    # u2's two views are 11 minutes apart: never two in ten minutes
    assert in_window == [("u1", "p2"), ("u1", "p3"), ("u1", "p4"), ("u1", "p5")]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (dm.REENTRY_MODE_UNSPECIFIED, ["e1", "e2", "e3"]),
        (dm.REENTRY_MODE_ONCE, ["e1"]),
        (dm.REENTRY_MODE_AFTER_COOLDOWN, ["e1", "e3"]),
    ],
)
async def test_reentry_policies(live: Live, mode: int, expected: list[str]) -> None:
    policy = dm.ReentryPolicy(mode=mode)  # type: ignore[arg-type]
    if mode == dm.REENTRY_MODE_AFTER_COOLDOWN:
        policy.cooldown.CopyFrom(seconds(3600))
    await live.define("buyers", single("Buy", reentry=policy))
    live.clock.set(T0 + timedelta(hours=1))
    await live.ingest(
        event("e1", "u1", "Buy", T0), event("e2", "u1", "Buy", T0 + timedelta(minutes=30))
    )
    await live.ingest(event("e3", "u1", "Buy", T0 + timedelta(hours=1)))
    found = await live.entries(len(expected))
    assert [e.trigger_event.event_id for e in found] == expected


async def test_the_past_behaviour_part_is_checked_for_the_user_when_they_qualify(
    live: Live,
) -> None:
    await live.ingest(event("old", "u1", "Signup", T0 - timedelta(days=3)))
    query = past(did("Signup")).past_behavior
    await live.define("buyers-signed-up", single("Buy", past=query))
    await live.ingest(event("b1", "u1", "Buy", T0), event("b2", "u2", "Buy", T0))
    assert users(await live.entries(1)) == ["u1"]


async def test_events_too_old_when_they_arrive_trigger_nothing(live: Live) -> None:
    await live.define("buyers", single("Buy"))
    await live.ingest(
        event("old", "u1", "Buy", T0 - timedelta(days=2)),
        event("new", "u2", "Buy", T0 - timedelta(hours=2)),
    )
    found = await live.entries(1)
    assert [(e.user_id, e.late) for e in found] == [("u2", True)]


async def test_bad_requests_answer_precise_statuses(live: Live) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await live.stack.definitions.CreateSegment(
            dpb.CreateSegmentRequest(
                parent=live.parent,
                segment=segment_pb2.Segment(
                    display_name="bad",
                    definition=live_def(
                        dm.LiveTrigger(page_visit=dm.UrlMatch(
                            operator=dm.URL_MATCH_OPERATOR_MATCHES, pattern=r"(a)\1")),
                        reentry=dm.ReentryPolicy(mode=dm.REENTRY_MODE_ONCE, cooldown=seconds(5)),
                    ),
                ),
            ),
            timeout=TIMEOUT,
        )  # fmt: skip
    err = rich(caught.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == [
        "segment.definition.live.trigger.page_visit.pattern",
        "segment.definition.live.reentry.cooldown",
    ]
    assert "RE2" in err.violations[0][1]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await live.entries(1, segment=f"{live.parent}/segments/missing")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
