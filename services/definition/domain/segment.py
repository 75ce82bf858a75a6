"""Entities of the definition service: projects, segments and their usages."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime

from libs.model.definition import (
    Definition,
    SegmentType,
    SystemDefinition,
    SystemSegmentKind,
    segment_type,
)

DEFAULT_TIME_ZONE = "UTC"


def new_etag() -> str:
    """A fresh opaque etag; every write of a resource sets a new one."""
    return secrets.token_hex(8)


def new_segment_id() -> str:
    """A short unique id: "s" and 12 hex digits (valid as a user-chosen id too)."""
    return "s" + secrets.token_hex(6)


def name_key(display_name: str) -> str:
    """The case-insensitive form of a display name, unique within a project.

    Computed here rather than with SQL lower() so that PostgreSQL and SQLite agree on
    non-ASCII letters.
    """
    return display_name.casefold()


@dataclass(frozen=True)
class Project:
    project_id: str
    time_zone: str
    create_time: datetime
    update_time: datetime
    etag: str
    segment_count: int = 0

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}"


@dataclass(frozen=True)
class Segment:
    project_id: str
    segment_id: str
    display_name: str
    description: str
    definition: Definition
    creator: str
    updater: str
    create_time: datetime
    update_time: datetime
    etag: str
    goal_count: int = 0
    intent_goal_count: int = 0
    engagement_count: int = 0
    dependent_segment_count: int = 0

    @property
    def name(self) -> str:
        return segment_name(self.project_id, self.segment_id)

    @property
    def type(self) -> SegmentType:
        return segment_type(self.definition)

    @property
    def is_system(self) -> bool:
        return isinstance(self.definition, SystemDefinition)


def segment_name(project_id: str, segment_id: str) -> str:
    return f"projects/{project_id}/segments/{segment_id}"


@dataclass(frozen=True)
class SystemSegment:
    segment_id: str
    display_name: str
    description: str
    definition: SystemDefinition


#: Created with every project; never updated or deleted.
SYSTEM_SEGMENTS = (
    SystemSegment(
        "all-users",
        "All Users",
        "Every user of the project.",
        SystemDefinition(SystemSegmentKind.ALL_USERS),
    ),
    SystemSegment(
        "test-users",
        "Test Users",
        "Profiles marked as test users.",
        SystemDefinition(SystemSegmentKind.TEST_USERS),
    ),
)


class UsageKind(enum.Enum):
    CAMPAIGN = "CAMPAIGN"
    JOURNEY = "JOURNEY"
    GOAL = "GOAL"
    INTENT_GOAL = "INTENT_GOAL"

    @property
    def slug(self) -> str:
        """The lower-case prefix of usage ids: campaign, journey, goal, intent-goal."""
        return self.value.lower().replace("_", "-")


class UsageStatus(enum.Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"


class UsageRole(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    INCLUDE = "INCLUDE"
    EXCLUDE = "EXCLUDE"


#: Statuses that make a usage count (engagement and goal counts, delete refusals).
LIVE_STATUSES = frozenset({UsageStatus.ACTIVE, UsageStatus.SCHEDULED})
ENGAGEMENT_KINDS = frozenset({UsageKind.CAMPAIGN, UsageKind.JOURNEY})


@dataclass(frozen=True)
class Usage:
    project_id: str
    segment_id: str
    kind: UsageKind
    external_id: str
    display_name: str
    status: UsageStatus
    role: UsageRole
    create_time: datetime
    update_time: datetime

    @property
    def usage_id(self) -> str:
        return usage_id(self.kind, self.external_id)

    @property
    def name(self) -> str:
        return f"{segment_name(self.project_id, self.segment_id)}/usages/{self.usage_id}"

    @property
    def is_engagement(self) -> bool:
        """Active or scheduled campaign or journey: counts and blocks deletion."""
        return self.kind in ENGAGEMENT_KINDS and self.status in LIVE_STATUSES


def usage_id(kind: UsageKind, external_id: str) -> str:
    return f"{kind.slug}-{external_id}"


@dataclass(frozen=True)
class UsageCounts:
    """Derived counts of a segment from its usages (active or scheduled ones only)."""

    goal_count: int = 0
    intent_goal_count: int = 0
    engagement_count: int = 0
