"""Plain records the evaluator ingests and validates (no I/O)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from libs.model.definition import EARLIEST_TIME, LATEST_TIME, Scalar
from services.evaluator.domain.names import check_user_id

CHANNELS = ("MOBILE_PUSH", "WEB_PUSH", "EMAIL", "SMS", "WHATSAPP", "IN_APP")
MAX_EVENT_ID = 128
MAX_EVENT_NAME = 256
MAX_PROPERTY_NAME = 128
MAX_STRING_VALUE = 8192
MAX_PROPERTIES = 256
_PROPERTY = re.compile(r"[A-Za-z0-9 _\-.:$]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
T = TypeVar("T")


@dataclass(frozen=True)
class RowError:
    index: int
    field: str
    description: str


@dataclass(frozen=True)
class Event:
    event_id: str
    user_id: str
    event_name: str
    event_time: datetime | None
    properties: Mapping[str, Scalar] = field(default_factory=dict)


def _pick(column: list[T], indexes: Sequence[int]) -> list[T]:
    return [column[i] for i in indexes]


@dataclass
class EventBatch:
    """Valid events of one batch, column by column, properties split by type as they are stored.

    Columns keep the garbage collector's work flat: an object per event held while batches are
    in flight makes full collections frequent and slow.
    """

    event_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    event_names: list[str] = field(default_factory=list)
    event_times: list[datetime] = field(default_factory=list)
    str_props: list[dict[str, str]] = field(default_factory=list)
    num_props: list[dict[str, float]] = field(default_factory=list)
    bool_props: list[dict[str, bool]] = field(default_factory=list)
    time_props: list[dict[str, datetime]] = field(default_factory=list)
    #: the index of each user's earliest event in the batch (when the batch makes them a user)
    first_seen: dict[str, int] = field(default_factory=dict)

    def append(self, event: Event) -> None:
        when = event.event_time
        assert when is not None
        self.event_ids.append(event.event_id)
        self.user_ids.append(event.user_id)
        self.event_names.append(event.event_name)
        self.event_times.append(when)
        strs, nums, bools, times = typed_maps(event.properties)
        self.str_props.append(strs)
        self.num_props.append(nums)
        self.bool_props.append(bools)
        self.time_props.append(times)
        seen = self.first_seen.get(event.user_id)
        if seen is None or when < self.event_times[seen]:
            self.first_seen[event.user_id] = len(self.event_times) - 1

    def __len__(self) -> int:
        return len(self.event_ids)

    @classmethod
    def concat(cls, parts: Sequence[EventBatch]) -> EventBatch:
        """The events of `parts`, one after the other."""
        joined = cls()
        for part in parts:
            offset = len(joined)
            for user_id, index in part.first_seen.items():
                seen = joined.first_seen.get(user_id)
                if seen is None or part.event_times[index] < joined.event_times[seen]:
                    joined.first_seen[user_id] = offset + index
            joined.event_ids += part.event_ids
            joined.user_ids += part.user_ids
            joined.event_names += part.event_names
            joined.event_times += part.event_times
            joined.str_props += part.str_props
            joined.num_props += part.num_props
            joined.bool_props += part.bool_props
            joined.time_props += part.time_props
        return joined

    def first_of_each_id(self) -> EventBatch:
        """The batch without repeated ids: the first event of each id (itself if none is)."""
        first: dict[str, int] = {}
        for index, event_id in enumerate(self.event_ids):
            first.setdefault(event_id, index)
        return self if len(first) == len(self) else self.select(list(first.values()))

    def select(self, indexes: Sequence[int]) -> EventBatch:
        """The events at `indexes`, in that order."""
        picked = EventBatch(
            _pick(self.event_ids, indexes), _pick(self.user_ids, indexes),
            _pick(self.event_names, indexes), _pick(self.event_times, indexes),
            _pick(self.str_props, indexes), _pick(self.num_props, indexes),
            _pick(self.bool_props, indexes), _pick(self.time_props, indexes),
        )  # fmt: skip
        times = picked.event_times
        for index, user_id in enumerate(picked.user_ids):
            seen = picked.first_seen.get(user_id)
            if seen is None or times[index] < times[seen]:
                picked.first_seen[user_id] = index
        return picked


@dataclass(frozen=True)
class ChannelState:
    address: str = ""
    unsubscribed: bool = False
    blocked: bool = False


@dataclass(frozen=True)
class Profile:
    user_id: str
    email: str = ""
    phone: str = ""
    display_name: str = ""
    test_user: bool = False
    blocked: bool = False
    channels: Mapping[str, ChannelState] = field(default_factory=dict)
    properties: Mapping[str, Scalar] = field(default_factory=dict)
    update_time: datetime | None = None


@dataclass(frozen=True)
class TypedProps:
    """Properties split into the map of their ingested type."""

    str_props: dict[str, str] = field(default_factory=dict)
    num_props: dict[str, float] = field(default_factory=dict)
    bool_props: dict[str, bool] = field(default_factory=dict)
    time_props: dict[str, datetime] = field(default_factory=dict)


def typed_maps(
    properties: Mapping[str, Scalar],
) -> tuple[dict[str, str], dict[str, float], dict[str, bool], dict[str, datetime]]:
    """Properties split into the map of their ingested type: (str, num, bool, time)."""
    strs: dict[str, str] = {}
    nums: dict[str, float] = {}
    bools: dict[str, bool] = {}
    times: dict[str, datetime] = {}
    for key, value in properties.items():
        if isinstance(value, bool):
            bools[key] = value
        elif isinstance(value, int | float):
            nums[key] = float(value)
        elif isinstance(value, datetime):
            times[key] = value.astimezone(UTC)
        else:
            strs[key] = str(value)
    return strs, nums, bools, times


def split_properties(properties: Mapping[str, Scalar]) -> TypedProps:
    return TypedProps(*typed_maps(properties))


def valid_property_name(name: str) -> bool:
    """Whether a property can be ingested under `name`."""
    return bool(_PROPERTY.fullmatch(name))


def check_time(value: datetime | None) -> str | None:
    if value is None:
        return "is required"
    if value.tzinfo is None:
        return "must carry a time zone"
    if not EARLIEST_TIME <= value < LATEST_TIME:
        return "must lie between 1970 and 2262"
    return None


def property_problems(properties: Mapping[str, Scalar], path: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if len(properties) > MAX_PROPERTIES:
        problems.append((path, f"at most {MAX_PROPERTIES} properties"))
    for key, value in properties.items():
        where = f"{path}[{key!r}]"
        if not _PROPERTY.fullmatch(key):
            problems.append((where, "property names are 1-128 letters, digits, spaces, '_-.:$'"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((where, "numbers must be finite"))
        elif isinstance(value, str) and len(value) > MAX_STRING_VALUE:
            problems.append((where, f"strings are at most {MAX_STRING_VALUE} characters"))
        elif isinstance(value, datetime) and check_time(value):
            problems.append((where, f"time {check_time(value)}"))
    return problems


def event_problems(event: Event) -> list[tuple[str, str]]:
    """Each (field, description) wrong with an event; empty when it can be stored."""
    problems: list[tuple[str, str]] = []
    if not event.event_id:
        problems.append(("event_id", "is required"))
    elif len(event.event_id) > MAX_EVENT_ID or _CONTROL.search(event.event_id):
        problems.append(("event_id", f"1 to {MAX_EVENT_ID} characters, no control characters"))
    user_problem = check_user_id(event.user_id)
    if user_problem:
        problems.append(("user_id", user_problem))
    if not event.event_name.strip():
        problems.append(("event_name", "is required"))
    elif len(event.event_name) > MAX_EVENT_NAME or _CONTROL.search(event.event_name):
        problems.append(("event_name", f"1 to {MAX_EVENT_NAME} characters, no control characters"))
    time_problem = check_time(event.event_time)
    if time_problem:
        problems.append(("event_time", time_problem))
    problems.extend(property_problems(event.properties, "properties"))
    return problems


def profile_problems(profile: Profile) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    user_problem = check_user_id(profile.user_id)
    if user_problem:
        problems.append(("user_id", user_problem))
    for name, value in (("email", profile.email), ("phone", profile.phone)):
        if len(value) > 320 or _CONTROL.search(value):
            problems.append((name, "at most 320 characters, no control characters"))
    if profile.phone and not re.fullmatch(r"\+[1-9][0-9]{6,14}", profile.phone):
        problems.append(("phone", "must be in E.164 form, for example +14155550100"))
    if profile.update_time is not None and check_time(profile.update_time):
        problems.append(("update_time", f"{check_time(profile.update_time)}"))
    problems.extend(property_problems(profile.properties, "properties"))
    return problems


def normalise_email(value: str) -> str:
    return value.strip().lower()
