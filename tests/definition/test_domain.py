"""Unit tests of the domain: validation, filters, ordering, page tokens, graphs, names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.errors import InvalidArgument
from libs.model import definition as m
from services.definition.domain.filtering import (
    SEGMENT_FILTER_FIELDS,
    USAGE_FILTER_FIELDS,
    Clause,
    parse_filter,
)
from services.definition.domain.graph import CycleError, find_cycle, topological_order
from services.definition.domain.limits import size_cap
from services.definition.domain.names import parse_segment_name, parse_usage_name
from services.definition.domain.paging import (
    Cursor,
    SortField,
    decode_page_token,
    encode_page_token,
    parse_order_by,
    resolve_page_size,
)
from services.definition.domain.segment import UsageKind
from services.definition.domain.validation import definition_violations

WEEK = m.LastWindow(m.RelativeOffset(7, m.TimeUnit.DAY))


def _paths(definition: m.Definition) -> list[str]:
    return [v.field for v in definition_violations(definition, "d", "p")]


def _leaf(condition: m.Condition) -> m.PastBehaviorQuery:
    return m.PastBehaviorQuery(root=m.Node(condition=condition))


def test_a_window_mixing_a_date_and_an_instant_is_ordered_in_the_project_zone() -> None:
    # 03:00 UTC on March 1st is after midnight in UTC, before midnight in New York (05:00 UTC)
    window = m.RangeWindow(
        m.TimePoint(instant=datetime(2024, 3, 1, 3, tzinfo=UTC)),
        m.TimePoint(date=date(2024, 3, 1)),
    )
    query = _leaf(m.DidEvent(m.EventSpec("Charged"), window))
    inverted = ["d.past_behavior.root.did_event.window.range"]
    assert [v.field for v in definition_violations(query, "d", "p", "UTC")] == inverted
    assert definition_violations(query, "d", "p", "America/New_York") == []
    reverse = m.RangeWindow(
        m.TimePoint(date=date(2024, 3, 1)),
        m.TimePoint(instant=datetime(2024, 3, 1, 3, tzinfo=UTC)),
    )
    query = _leaf(m.DidEvent(m.EventSpec("Charged"), reverse))
    assert definition_violations(query, "d", "p", "UTC") == []
    found = definition_violations(query, "d", "p", "America/New_York")
    assert [v.field for v in found] == inverted
    assert "America/New_York" in found[0].description


def test_valid_definition_has_no_violations() -> None:
    query = _leaf(m.DidEvent(m.EventSpec("Charged"), WEEK))
    assert _paths(query) == []
    assert _paths(m.CustomListDefinition(m.IdentityKind.EMAIL)) == []


def test_violation_paths() -> None:
    bad_window = m.LastWindow(m.RelativeOffset(0, m.TimeUnit.DAY))
    tree = m.PastBehaviorQuery(
        root=m.Node(
            operator=m.BooleanOperator.OR,
            children=(
                m.Node(condition=m.DidEvent(m.EventSpec("a"), WEEK)),
                m.Node(condition=m.DidEvent(m.EventSpec("b"), WEEK)),
                m.Node(condition=m.DidEvent(m.EventSpec("c"), bad_window)),
            ),
        )
    )
    assert _paths(tree) == ["d.past_behavior.root.children[2].did_event.window.last.amount"]
    rng = m.RangeWindow(m.TimePoint(date=date(2026, 5, 1)), m.TimePoint(date=date(2026, 5, 1)))
    assert _paths(_leaf(m.FirstTime(m.EventSpec("x"), rng))) == [
        "d.past_behavior.root.first_time.window.range"
    ]
    between = m.Comparison(m.ComparisonOperator.BETWEEN, (datetime(2026, 1, 1, tzinfo=UTC), 3.0))
    assert _paths(_leaf(m.UserProperty(m.PropertyFilter("age", between)))) == [
        "d.past_behavior.root.user_property.comparison.values"
    ]
    sequence = m.Sequence((m.EventSpec("a"), m.EventSpec("")), WEEK, timedelta(0))
    assert _paths(_leaf(sequence)) == [
        "d.past_behavior.root.sequence.steps[1].event_name",
        "d.past_behavior.root.sequence.within",
    ]
    assert _paths(m.PastBehaviorQuery()) == ["d.past_behavior.root"]
    assert _paths(m.SystemDefinition(m.SystemSegmentKind.ALL_USERS)) == ["d.system"]
    assert _paths(m.PartnerDefinition("", "c1")) == ["d.partner.partner"]


def test_reference_limits() -> None:
    names = tuple(f"projects/p/segments/s{i:03d}" for i in range(51))
    assert _paths(m.PastBehaviorQuery(included_segments=names)) == ["d.past_behavior"]
    query = m.PastBehaviorQuery(included_segments=("projects/q/segments/abcd",))
    assert _paths(query) == ["d.past_behavior.included_segments[0]"]


def test_filter_parser() -> None:
    clauses = parse_filter(
        '(type = PAST_BEHAVIOR) AND create_time >= "2026-01-01T00:00:00Z" has_goals = TRUE',
        SEGMENT_FILTER_FIELDS,
    )
    assert clauses == [
        Clause("type", "=", "PAST_BEHAVIOR"),
        Clause("create_time", ">=", datetime(2026, 1, 1, tzinfo=UTC)),
        Clause("has_goals", "=", True),
    ]
    assert parse_filter("kind = USAGE_KIND_CAMPAIGN", USAGE_FILTER_FIELDS) == [
        Clause("kind", "=", "CAMPAIGN")
    ]
    assert parse_filter("  ", SEGMENT_FILTER_FIELDS) == []
    for bad in ("nope = 1", "creator < a", "type =", "(type = LIVE", "type = LIVE)", "NOT x"):
        with pytest.raises(InvalidArgument) as info:
            parse_filter(bad, SEGMENT_FILTER_FIELDS)
        assert info.value.violations[0].field == "filter"


def test_order_by_and_page_sizes() -> None:
    assert parse_order_by("") == parse_order_by("create_time desc")
    order = parse_order_by("engagement_count")
    assert order.field == SortField.ENGAGEMENT_COUNT and not order.descending
    with pytest.raises(InvalidArgument):
        parse_order_by("display_name, create_time")
    assert (size_cap(1_000), size_cap(1_001)) == (50, 500)
    assert resolve_page_size(0, 50) == 50
    assert resolve_page_size(70, 50) == 50
    assert resolve_page_size(7, 50) == 7


@given(
    key=st.one_of(
        st.text(max_size=50),
        st.integers(min_value=-(2**40), max_value=2**40),
        st.datetimes(timezones=st.just(UTC)),
    ),
    last_id=st.text(max_size=63),
)
def test_page_tokens_round_trip(key: str | int | datetime, last_id: str) -> None:
    token = encode_page_token("abc", Cursor(key, last_id))
    assert decode_page_token(token, "abc") == Cursor(key, last_id)
    with pytest.raises(InvalidArgument):
        decode_page_token(token, "other")


def test_bad_page_tokens() -> None:
    for token in ("x", "!!!", encode_page_token("abc", Cursor("k", "i"))[:-3]):
        with pytest.raises(InvalidArgument):
            decode_page_token(token, "abc")


def test_cycles_and_topological_order() -> None:
    edges = {"b": ["c"], "c": ["d"], "d": []}
    assert find_cycle("a", ["b"], edges) is None
    assert find_cycle("d", ["a"], {"a": ["b"], **edges}) == ["d", "a", "b", "c", "d"]
    assert find_cycle("a", ["a"], {}) == ["a", "a"]
    order = topological_order("a", {"a": ["c", "b"], "b": ["d"], "c": ["d"], "d": []})
    assert order == ["d", "b", "c", "a"]
    with pytest.raises(CycleError):
        topological_order("a", {"a": ["b"], "b": ["c"], "c": ["a"]})


def test_names() -> None:
    ref = parse_segment_name("projects/p1/segments/all-users", "name")
    assert (ref.project_id, ref.segment_id) == ("p1", "all-users")
    usage = parse_usage_name("projects/p/segments/s/usages/intent-goal-7", "name")
    assert (usage.kind, usage.external_id) == (UsageKind.INTENT_GOAL, "7")
    with pytest.raises(InvalidArgument):
        parse_segment_name("projects/p/segments/", "name")
    with pytest.raises(InvalidArgument):
        parse_usage_name("projects/p/segments/s/usages/robot-7", "name")
