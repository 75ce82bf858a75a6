"""In-memory test data (events, profiles, list members) and loading it into ClickHouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from libs.clickhouse.port import ClickHouse
from libs.model.definition import Scalar

PROJECT = "proj"
#: `update_time` of a profile version unless a test says otherwise: before any event.
PROFILE_SEEN_AT = datetime(2000, 1, 1, tzinfo=UTC)
TABLES = (
    "events",
    "profiles",
    "profile_versions",
    "profile_watermarks",
    "users",
    "list_members",
    "list_uploads",
    "list_upload_members",
)


@dataclass(frozen=True)
class Event:
    user_id: str
    name: str
    time: datetime  # aware UTC, millisecond precision
    props: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """One version of a user's profile; a user may have several (the latest wins, and as of an
    instant the latest at or before it)."""

    user_id: str
    props: dict[str, Scalar] = field(default_factory=dict)
    test_user: bool = False
    update_time: datetime = PROFILE_SEEN_AT


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

    def latest_profiles(self, as_of: datetime | None = None) -> dict[str, Profile]:
        """Each user's latest profile version (at or before `as_of` when given); of versions
        with one update_time, the last listed."""
        found: dict[str, Profile] = {}
        for p in self.profiles:
            if as_of is not None and p.update_time > as_of:
                continue
            if p.user_id not in found or p.update_time >= found[p.user_id].update_time:
                found[p.user_id] = p
        return found

    def profiles_changed_after(self, as_of: datetime) -> bool:
        """Whether an evaluation as of `as_of` reads profile versions (as the evaluator
        decides from the project's watermark)."""
        return any(p.update_time > as_of for p in self.profiles)


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
    current = {id(p) for p in world.latest_profiles().values()}
    version_rows = []
    profile_rows = []
    for project in projects:
        other = project != world.project
        for p in world.profiles:
            row = (project, p.user_id, int(p.test_user or other), *typed_maps(p.props))
            version_rows.append((*row, p.update_time))
            if id(p) in current:
                profile_rows.append((*row, p.update_time))
            user_rows.append((project, p.user_id, p.update_time))
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
    profile_columns = [
        "project",
        "user_id",
        "test_user",
        "str_props",
        "num_props",
        "bool_props",
        "time_props",
        "update_time",
    ]
    await ch.insert("profiles", profile_columns, profile_rows)
    await ch.insert("profile_versions", profile_columns, version_rows)
    if world.profiles:
        watermark = max(p.update_time for p in world.profiles)
        await ch.insert(
            "profile_watermarks", ["project", "latest"], [(p, watermark) for p in projects]
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
