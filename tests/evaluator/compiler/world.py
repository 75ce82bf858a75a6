"""In-memory test data (events, profiles, list members) and loading it into ClickHouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from libs.clickhouse.port import ClickHouse
from libs.model.definition import Scalar

PROJECT = "proj"
#: `seen_at` of users who only have a profile: before any event of the tests.
PROFILE_SEEN_AT = datetime(2000, 1, 1, tzinfo=UTC)
TABLES = ("events", "profiles", "users", "list_members", "list_uploads", "list_upload_members")


@dataclass(frozen=True)
class Event:
    user_id: str
    name: str
    time: datetime  # aware UTC, millisecond precision
    props: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    user_id: str
    props: dict[str, Scalar] = field(default_factory=dict)
    test_user: bool = False


@dataclass(frozen=True)
class ListRow:
    segment: str
    user_id: str
    sequence: int
    is_member: bool


@dataclass
class World:
    events: list[Event] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    list_rows: list[ListRow] = field(default_factory=list)
    project: str = PROJECT


def typed_maps(
    props: dict[str, Scalar],
) -> tuple[dict[str, str], dict[str, float], dict[str, int], dict[str, datetime]]:
    """A property dict split into the four typed maps of the schema."""
    strings: dict[str, str] = {}
    numbers: dict[str, float] = {}
    flags: dict[str, int] = {}
    times: dict[str, datetime] = {}
    for key, value in props.items():
        if isinstance(value, bool):
            flags[key] = int(value)
        elif isinstance(value, str):
            strings[key] = value
        elif isinstance(value, datetime):
            times[key] = value
        else:
            numbers[key] = float(value)
    return strings, numbers, flags, times


async def load(ch: ClickHouse, world: World, *, noise_project: bool = True) -> None:
    """Replaces the tables' content with `world` (plus a copy under another project)."""
    for table in TABLES:
        await ch.command(f"TRUNCATE TABLE {table}")
    projects = [world.project, world.project + "-other"] if noise_project else [world.project]
    event_rows = []
    user_rows = []
    for project in projects:
        for index, e in enumerate(world.events):
            event_rows.append(
                (project, e.name, e.user_id, e.time, f"{project}-{index}", *typed_maps(e.props))
            )
            user_rows.append((project, e.user_id, e.time))
    # the other project gets every user as a member, to catch missing project filters
    profile_rows = []
    for project in projects:
        other = project != world.project
        for p in world.profiles:
            profile_rows.append(
                (
                    project,
                    p.user_id,
                    int(p.test_user or other),
                    *typed_maps(p.props),
                    PROFILE_SEEN_AT,
                )
            )
            user_rows.append((project, p.user_id, PROFILE_SEEN_AT))
    list_rows = [
        (project, r.segment, r.user_id, r.sequence, int(r.is_member or project != world.project))
        for project in projects
        for r in world.list_rows
    ]
    await ch.insert(
        "events",
        [
            "project",
            "event_name",
            "user_id",
            "event_time",
            "event_id",
            "str_props",
            "num_props",
            "bool_props",
            "time_props",
        ],
        event_rows,
    )
    await ch.insert(
        "profiles",
        [
            "project",
            "user_id",
            "test_user",
            "str_props",
            "num_props",
            "bool_props",
            "time_props",
            "update_time",
        ],
        profile_rows,
    )
    await ch.insert("users", ["project", "user_id", "seen_at"], user_rows)
    await ch.insert(
        "list_members", ["project", "segment", "user_id", "sequence", "is_member"], list_rows
    )
    # The same rows as uploads of a custom list: the latest state per user is version 1,
    # finished; version 2, every user of the rows, is an upload that never finished.
    latest: dict[tuple[str, str, str], tuple[int, int]] = {}
    for project, segment, user_id, sequence, member in list_rows:
        key = (project, segment, user_id)
        if key not in latest or sequence > latest[key][0]:
            latest[key] = (sequence, member)
    uploaded = [(p, s, 1, u) for (p, s, u), (_, member) in latest.items() if member]
    uploaded += [(p, s, 2, u) for (p, s, u) in latest]
    await ch.insert("list_upload_members", ["project", "segment", "version", "user_id"], uploaded)
    finished = sorted({(p, s, 1, 0, PROFILE_SEEN_AT) for (p, s, _) in latest})
    await ch.insert(
        "list_uploads",
        ["project", "segment", "version", "member_count", "create_time"],
        finished,
    )
