"""The live engine's pure rules on their own: property filters and URL matches on one event,
re-entry admission, page counts, the inaction boundary, date occurrences, the index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.model.definition import (
    Comparison,
    ComparisonOperator,
    EventSpec,
    InactionWithinTrigger,
    LiveDefinition,
    PageCountTrigger,
    PropertyFilter,
    Reentry,
    ReentryMode,
    RelativeOffset,
    SingleActionTrigger,
    TimeUnit,
    UrlMatch,
    UrlMatchOperator,
)
from services.evaluator.domain.live_entries import (
    LiveEvent,
    Occurrence,
    PageView,
    Timer,
    admit,
    date_occurrence,
    entry_id,
    followed_by_b,
    page_count_occurrences,
)
from services.evaluator.domain.live_filters import UrlMatcher, compile_filter, filter_holds
from services.evaluator.domain.live_triggers import LiveIndex, LiveSegment
from services.evaluator.domain.records import Event, EventBatch

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
Op = ComparisonOperator


def _f(op: Op, *values: object, relative: RelativeOffset | None = None) -> PropertyFilter:
    return PropertyFilter("p", Comparison(op, tuple(values), relative))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flt", "props", "holds"),
    [
        (_f(Op.EQUALS, "30"), {"p": 30.0}, False),  # a string never equals a number
        (_f(Op.EQUALS, 30.0), {"p": 30.0}, True),
        (_f(Op.NOT_EQUALS, "x"), {}, True),  # negative operators match a missing property
        (_f(Op.CONTAINS, "SHO"), {"p": "a shoe"}, True),
        (_f(Op.STARTS_WITH, "a S"), {"p": "a shoe"}, True),
        (_f(Op.GREATER_THAN, 5.0), {"p": "9"}, False),  # numeric operators need numbers
        (_f(Op.BETWEEN, 1.0, 2.0), {"p": 2.0}, True),
        (_f(Op.IN_LIST, "a", "b"), {"p": "b"}, True),
        (_f(Op.IN_LIST, "a", "b"), {"p": 1.0}, False),
        (_f(Op.NOT_EQUALS, "a"), {"p": True}, True),
        (_f(Op.LESS_THAN, 5.0), {"p": True}, False),  # a boolean is not a number
        (_f(Op.LESS_THAN_OR_EQUAL, 5.0), {"p": 5.0}, True),
        (_f(Op.NOT_IN_LIST, "a", "b"), {"p": "c"}, True),
        (_f(Op.EXISTS), {"p": False}, True),
        (_f(Op.NOT_EXISTS), {"p": False}, False),
        (_f(Op.DATE_WITHIN_LAST, relative=RelativeOffset(2, TimeUnit.DAY)),
         {"p": T0 - timedelta(days=1)}, True),
        (_f(Op.DATE_MORE_THAN_AGO, relative=RelativeOffset(2, TimeUnit.DAY)),
         {"p": T0 - timedelta(days=1)}, False),
    ],
)  # fmt: skip
def test_filters_on_one_event(flt: PropertyFilter, props: dict[str, object], holds: bool) -> None:
    assert filter_holds(flt, props, T0, "UTC") is holds  # type: ignore[arg-type]
    assert compile_filter(flt, "UTC")(props, T0) is holds  # type: ignore[arg-type]


def test_url_matchers() -> None:
    assert UrlMatcher(UrlMatch(UrlMatchOperator.EQUALS, "https://a/b"))("https://a/b")
    assert not UrlMatcher(UrlMatch(UrlMatchOperator.EQUALS, "https://a/b"))("https://a/B")
    assert UrlMatcher(UrlMatch(UrlMatchOperator.CONTAINS, "/B"))("https://a/b")
    assert UrlMatcher(UrlMatch(UrlMatchOperator.MATCHES, r"/(b|c)$"))("https://a/c")
    assert not UrlMatcher(UrlMatch(UrlMatchOperator.MATCHES, r"/(b|c)$"))("https://a/cd")
    assert not UrlMatcher(UrlMatch(UrlMatchOperator.CONTAINS, "a"))(5.0)


def _occ(user: str, key: str, minutes: int) -> Occurrence:
    return Occurrence("s", user, key, T0 + timedelta(minutes=minutes))


def test_reentry_admission() -> None:
    found = [_occ("u1", "e1", 0), _occ("u1", "e2", 30), _occ("u1", "e3", 60), _occ("u2", "e4", 1)]
    every = admit(found, Reentry(), {})
    assert [o.occurrence for o in every] == ["e1", "e4", "e2", "e3"]
    once = admit(found, Reentry(ReentryMode.ONCE), {"u2": T0})
    assert [o.occurrence for o in once] == ["e1"]
    cooldown = Reentry(ReentryMode.AFTER_COOLDOWN, timedelta(hours=1))
    assert [o.occurrence for o in admit(found, cooldown, {})] == ["e1", "e4", "e3"]


def test_entry_ids_depend_on_segment_user_and_occurrence_only() -> None:
    assert entry_id("s", "u", "event:1") == entry_id("s", "u", "event:1")
    assert len({entry_id("s", "u", "event:1"), entry_id("s", "u", "event:2"),
                entry_id("t", "u", "event:1"), entry_id("s", "v", "event:1")}) == 4  # fmt: skip


def _view(event_id: str, minutes: int, scope: str = "") -> PageView:
    event = LiveEvent(event_id, "u", "Page Visited", T0 + timedelta(minutes=minutes))
    return PageView("s", "u", scope, event)


def test_page_counts() -> None:
    views = [_view("a", 0, "s1"), _view("b", 1, "s1"), _view("c", 2, "s1")]
    stored = [(v.event.event_id, v.event.event_time) for v in views]
    session = PageCountTrigger(3)
    assert page_count_occurrences("s", session, "UTC", views[2:], stored[:2]) == []
    found = page_count_occurrences("s", session, "UTC", views[2:], stored)
    assert [(o.occurrence, o.entry_time) for o in found] == [
        ("session:s1", views[2].event.event_time)
    ]
    window = PageCountTrigger(2, RelativeOffset(1, TimeUnit.MINUTE))
    found = page_count_occurrences("s", window, "UTC", views, stored)
    assert [o.occurrence for o in found] == ["event:b", "event:c"]


def test_the_inaction_boundary() -> None:
    timer = Timer("t", "p", "s", "u", "a", T0, T0 + timedelta(minutes=10), "k", "{}")
    assert followed_by_b(timer, [T0 + timedelta(minutes=10)])  # B exactly at T cancels
    assert not followed_by_b(timer, [T0 + timedelta(minutes=10, milliseconds=1)])
    assert not followed_by_b(timer, [T0])  # B at A's own time is not after it


def test_date_occurrences_are_per_day_in_the_project_time_zone() -> None:
    now = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # already March 3 in Tokyo
    value = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)
    found = date_occurrence("s", "u", value, 5, "Asia/Tokyo", now)
    assert found is not None and found.occurrence == "day:2026-03-03"
    assert date_occurrence("s", "u", value, 5, "UTC", now) is None
    assert date_occurrence("s", "u", "2026-03-08", 5, "UTC", now) is None


def test_the_index_matches_by_event_name_and_forgets_removed_segments() -> None:
    index = LiveIndex()
    buy = LiveSegment("projects/p/segments/buy", "p",
                      LiveDefinition(SingleActionTrigger(EventSpec("Buy"))))  # fmt: skip
    inaction = InactionWithinTrigger(EventSpec("Cart"), EventSpec("Buy"), timedelta(minutes=5))
    cart = LiveSegment("projects/p/segments/cart", "p", LiveDefinition(inaction))
    index.reset([buy, cart])
    batch = EventBatch()
    for i, name in enumerate(["Buy", "Cart", "View"]):
        batch.append(Event(f"e{i}", "u", name, T0, {}))
    batch.append(Event("old", "u", "Buy", T0 - timedelta(days=2), {}))
    found = index.match_batch("p", batch, T0, timedelta(days=1))
    assert [o.occurrence for o in found.occurrences] == ["event:e0"]
    assert [t.due for t in found.timers] == [T0 + timedelta(minutes=5)]
    assert not index.match_batch("other", batch, T0, timedelta(days=1))
    index.remove(buy.name)
    assert not index.match_batch("p", batch, T0, timedelta(days=1)).occurrences
    assert len(index) == 1
