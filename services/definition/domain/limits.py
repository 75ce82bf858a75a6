"""Every size limit of the definition service, in one place (documented in
docs/definition-model.md, "Limits")."""

from __future__ import annotations

from datetime import timedelta

from libs.model import definition as m

#: Depth of the condition tree (the root is depth 1).
MAX_TREE_DEPTH = 10
#: Nodes (groups and leaves) in one condition tree.
MAX_NODES = 200
#: Steps of one event sequence.
MAX_SEQUENCE_STEPS = 20
#: Values of one comparison (in-list / not-in-list).
MAX_LIST_VALUES = 1_000
#: Display name length.
MIN_DISPLAY_NAME = 1
MAX_DISPLAY_NAME = 200
#: A listing's `search` (longer than any display name or segment id it could match).
MAX_SEARCH = 200
#: Description length.
MAX_DESCRIPTION = 2_000
#: Distinct segments one definition references (include, exclude, in-segment leaves).
MAX_REFERENCED_SEGMENTS = 50
#: The longest chain of references from a segment (one segment including another is 1), and
#: how many references its evaluation meets when each is followed wherever it is reached.
MAX_REFERENCE_DEPTH = 10
MAX_EXPANDED_REFERENCES = 200
#: Property and event names.
MAX_NAME_LENGTH = 128
#: URL patterns, partner names and cohort ids.
MAX_PATTERN_LENGTH = 2_048
#: Filters on one event.
MAX_FILTERS_PER_EVENT = 50
#: String values in a comparison.
MAX_STRING_VALUE = 1_024
#: Cool-down of a live segment's AFTER_COOLDOWN re-entry policy.
MAX_REENTRY_COOLDOWN = timedelta(days=366)
#: The longest relative offset (a `last` window, a relative date comparison, a page-count
#: window) and duration (`within`), per unit: about 300 years, the supported range of times
#: (1970 to 2262) and a little more.
MAX_OFFSET: dict[m.TimeUnit, int] = {
    m.TimeUnit.MINUTE: 158_000_000,
    m.TimeUnit.HOUR: 2_630_000,
    m.TimeUnit.DAY: 110_000,
    m.TimeUnit.WEEK: 15_700,
    m.TimeUnit.MONTH: 3_600,
}
MAX_DURATION = timedelta(days=110_000)
#: Usage external ids and display names.
MAX_EXTERNAL_ID = 128
MAX_USAGE_DISPLAY_NAME = 200

#: Page and batch-delete sizes: the product rule.
SMALL_PROJECT_CAP = 50
LARGE_PROJECT_CAP = 500
LARGE_PROJECT_THRESHOLD = 1_000
#: Page size of usage listings.
MAX_USAGE_PAGE = 500
DEFAULT_USAGE_PAGE = 100


def size_cap(segment_count: int) -> int:
    """Page and batch-delete cap: 50, or 500 when the project holds more than 1,000 segments."""
    return LARGE_PROJECT_CAP if segment_count > LARGE_PROJECT_THRESHOLD else SMALL_PROJECT_CAP
