"""A segment's figures for a day, as the daily job stores them and reports read them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

#: Channels of the contract, as the evaluator names them (Channel enum without CHANNEL_).
CHANNELS = ("MOBILE_PUSH", "WEB_PUSH", "EMAIL", "SMS", "WHATSAPP", "IN_APP")
#: Sample users kept per segment and day.
SAMPLE_SIZE = 100


class Source(enum.StrEnum):
    """How a day's figures were computed."""

    DAILY = "DAILY"  # by the daily job, once the day was over
    BACKFILL = "BACKFILL"  # later, by as-of evaluation of the past day


@dataclass(frozen=True)
class DayFigures:
    project: str
    segment: str  # resource name
    day: date
    user_count: int
    reachable: Mapping[str, int]  # by channel
    sample: tuple[str, ...]  # in stable hash order
    as_of: datetime
    source: Source
    definition_version: str
    computed_at: datetime


class DayCount(NamedTuple):
    """A stored day's size and how it was computed: what a trend shows (a tuple, as cheap to
    build as the hundreds of them one trend reads)."""

    day: date
    user_count: int
    source: Source
    definition_version: str


def percentage(reachable: int, total: int) -> float:
    """reachable / total * 100, 0 for an empty segment."""
    return reachable * 100.0 / total if total > 0 else 0.0
