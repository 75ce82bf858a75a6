"""Control characters and over-long strings get the same precise answer on SQLite and
PostgreSQL: refused in stored text with the field path, ordinary characters that match
nothing in filters and search; over-long search and filter strings are refused with the
limit (issue 13, defects 5 and 6)."""

from __future__ import annotations

from segments.v1 import definition_service_pb2 as dpb

from .serving import Served, behaviour, did, invalid_fields, served_both

__all__ = ["served_both"]


async def test_control_characters_in_stored_text_are_refused(served_both: Served) -> None:
    s = served_both
    for text in ("a\x00b", "bell\x07", "esc\x1b["):
        fields = await invalid_fields(
            s.create("ctrl-desc", behaviour(did("Buy")), description=text)
        )
        assert "segment.description" in fields, fields
    created = await s.create("tabbed", behaviour(did("Buy")), description="one\ttwo\nthree")
    assert created


async def test_control_characters_in_filters_and_search_match_nothing(served_both: Served) -> None:
    s = served_both
    await s.create("findable", behaviour(did("Buy")), display_name="Findable")

    async def listed(search: str = "", filter: str = "") -> list[str]:
        request = dpb.ListSegmentsRequest(parent=s.parent, search=search, filter=filter)
        page = await s.definitions.ListSegments(request)
        return [x.name for x in page.segments]

    everything = await listed()
    assert everything
    for text in ("\x00", "Find\x00able", "\x01"):
        assert await listed(search=text) == []
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        assert await listed(filter=f'display_name = "{quoted}"') == []
        assert await listed(filter=f'segment_id = "{quoted}"') == []
        assert sorted(await listed(filter=f'creator != "{quoted}"')) == sorted(everything)


async def test_over_long_search_and_filter_are_refused_with_the_limit(
    served_both: Served,
) -> None:
    s = served_both
    fields = await invalid_fields(
        s.definitions.ListSegments(dpb.ListSegmentsRequest(parent=s.parent, search="x" * 50_000))
    )
    assert "200" in fields["search"]
    fields = await invalid_fields(
        s.definitions.ListSegments(
            dpb.ListSegmentsRequest(parent=s.parent, filter=f'display_name = "{"x" * 50_000}"')
        )
    )
    assert "2,000" in fields["filter"]
    fields = await invalid_fields(
        s.definitions.ListSegments(
            dpb.ListSegmentsRequest(
                parent=s.parent, filter='create_time > "0001-01-01T00:00:00+14:00"'
            )
        )
    )
    assert "filter" in fields
