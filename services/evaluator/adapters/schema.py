"""ClickHouse schema of the evaluator: versioned migrations applied at start-up.

Table contract (the compiler reads these by unqualified name in the current database):

* `events` one row per ingested event; properties in the map of their ingested type.
* `event_ids` every stored event id with its event's sort key and its ingest attempt,
  ordered for the ingest duplicate check; `ingest_batches` the attempts that finished.
* `profiles` latest write wins (ReplacingMergeTree on update_time); read with FINAL.
* `profile_versions` every write of a profile, with its update_time: the profile as of an
  instant is the user's latest version at or before it; `profile_watermarks` the latest
  update_time per project, so that an evaluation knows when current profiles are also the
  profiles as of its instant.
* `users` the universe: `SELECT DISTINCT user_id FROM users WHERE project = p AND
  seen_at <= as_of` (profiles are seen at their first version's update_time, or at the
  epoch when written before versions were kept; events at their batch's earliest time).
* `list_members` partner members (ReplacingMergeTree on sequence; FINAL).
* `list_uploads` / `list_upload_members` custom lists, one version per upload; a version
  exists once its `list_uploads` row is written, after all its members.
* `partner_deltas` applied partner delta ids (replay safety).
* `snapshots` / `snapshot_members` versioned member sets; a version exists once its
  `snapshots` row is written, after all its members, and holds the members of the attempt
  that row names.

Every statement is idempotent (IF NOT EXISTS), so a migration interrupted half-way is simply
run again; `schema_migrations` records what has been applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from libs.clickhouse.port import ClickHouse

_PROPS = """
    str_props Map(String, String),
    num_props Map(String, Float64),
    bool_props Map(String, UInt8),
    time_props Map(String, DateTime64(3, 'UTC'))"""

#: The events sort key. Measured on chDB 26.9 with 5M events, 200 event names, 200k users
#: (OPTIMIZE FINAL): "did ev7 and not ev9" grouped by user read 98,304 rows with this key
#: against 5,000,000 (the whole table) with (project, user_id, event_time), about 3x faster.
EVENTS_ORDER_BY = "(project, event_name, user_id, event_time)"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, profiles, users, lists, snapshots",
        (
            f"""CREATE TABLE IF NOT EXISTS events (
    project LowCardinality(String),
    event_name LowCardinality(String),
    user_id String,
    event_time DateTime64(3, 'UTC'),
    event_id String,{_PROPS},
    ingest_time DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY {EVENTS_ORDER_BY}""",
            """CREATE TABLE IF NOT EXISTS event_ids (
    project LowCardinality(String),
    event_id String
) ENGINE = ReplacingMergeTree ORDER BY (project, event_id)""",
            f"""CREATE TABLE IF NOT EXISTS profiles (
    project LowCardinality(String),
    user_id String,
    email String,
    phone String,
    display_name String,
    test_user UInt8,
    blocked UInt8,
    channel_address Map(String, String),
    channel_unsubscribed Map(String, UInt8),
    channel_blocked Map(String, UInt8),{_PROPS},
    update_time DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(update_time) ORDER BY (project, user_id)""",
            """CREATE TABLE IF NOT EXISTS users (
    project LowCardinality(String),
    user_id String,
    seen_at SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree ORDER BY (project, user_id)""",
            """CREATE TABLE IF NOT EXISTS list_members (
    project LowCardinality(String),
    segment String,
    user_id String,
    sequence Int64,
    is_member UInt8
) ENGINE = ReplacingMergeTree(sequence) ORDER BY (project, segment, user_id)""",
            """CREATE TABLE IF NOT EXISTS partner_deltas (
    project LowCardinality(String),
    segment String,
    delta_id String,
    sequence Int64,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY (project, segment, delta_id)""",
            """CREATE TABLE IF NOT EXISTS snapshots (
    project LowCardinality(String),
    segment String,
    version Int64,
    as_of DateTime64(3, 'UTC'),
    user_count UInt64,
    create_time DateTime64(3, 'UTC'),
    deleted UInt8,
    revision UInt64
) ENGINE = ReplacingMergeTree(revision) ORDER BY (project, segment, version)""",
            """CREATE TABLE IF NOT EXISTS snapshot_members (
    project LowCardinality(String),
    segment String,
    version Int64,
    user_id String
) ENGINE = MergeTree ORDER BY (project, segment, version, user_id)""",
        ),
    ),
    Migration(
        2,
        "event ids record their event's sort key",
        # Ingest writes an id (with its event's key and the attempt's token) before the
        # event, and the token to ingest_batches once the attempt is whole: a re-sent id of an
        # unfinished attempt whose event is not under that key was cut off by a crash, and is
        # stored again. Rows from before this migration have an empty event_name: their events
        # were written first.
        (
            "ALTER TABLE event_ids ADD COLUMN IF NOT EXISTS event_name LowCardinality(String)",
            "ALTER TABLE event_ids ADD COLUMN IF NOT EXISTS user_id String",
            "ALTER TABLE event_ids ADD COLUMN IF NOT EXISTS event_time DateTime64(3, 'UTC')",
            "ALTER TABLE event_ids ADD COLUMN IF NOT EXISTS batch UUID",
            """CREATE TABLE IF NOT EXISTS ingest_batches (
    project LowCardinality(String),
    batch UUID
) ENGINE = ReplacingMergeTree ORDER BY (project, batch)""",
        ),
    ),
    Migration(
        3,
        "custom lists as versions: an upload is seen whole or not at all",
        (
            """CREATE TABLE IF NOT EXISTS list_uploads (
    project LowCardinality(String),
    segment String,
    version Int64,
    member_count UInt64,
    create_time DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY (project, segment, version)""",
            """CREATE TABLE IF NOT EXISTS list_upload_members (
    project LowCardinality(String),
    segment String,
    version Int64,
    user_id String
) ENGINE = MergeTree ORDER BY (project, segment, version, user_id)""",
            # Custom lists uploaded before: the list segments no partner delta was applied to
            # (partner segments change only through deltas) become their version 1.
            """INSERT INTO list_upload_members (project, segment, version, user_id)
SELECT project, segment, 1, user_id FROM list_members FINAL
WHERE is_member = 1
  AND (project, segment) NOT IN (SELECT project, segment FROM partner_deltas)
  AND (project, segment) NOT IN (SELECT project, segment FROM list_uploads)""",
            """INSERT INTO list_uploads (project, segment, version, member_count, create_time)
SELECT project, segment, 1, uniqExact(user_id), now64(3) FROM list_upload_members
WHERE version = 1 AND (project, segment) NOT IN (SELECT project, segment FROM list_uploads)
GROUP BY project, segment""",
        ),
    ),
    Migration(
        4,
        "snapshot members tagged with the attempt that wrote them",
        # A version's `snapshots` row names the attempt whose members it holds, so that two
        # processes taking the same version number never mix their members. Rows from before
        # this migration have the nil UUID on both sides.
        (
            "ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS attempt UUID",
            "ALTER TABLE snapshot_members ADD COLUMN IF NOT EXISTS attempt UUID",
        ),
    ),
    Migration(
        5,
        "profile history: every write is a version with its update_time",
        (
            f"""CREATE TABLE IF NOT EXISTS profile_versions (
    project LowCardinality(String),
    user_id String,
    email String,
    phone String,
    display_name String,
    test_user UInt8,
    blocked UInt8,
    channel_address Map(String, String),
    channel_unsubscribed Map(String, UInt8),
    channel_blocked Map(String, UInt8),{_PROPS},
    update_time DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (project, user_id, update_time)""",
            """CREATE TABLE IF NOT EXISTS profile_watermarks (
    project LowCardinality(String),
    latest SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree ORDER BY project""",
            # Profiles written before: their current state becomes their one version.
            """INSERT INTO profile_versions SELECT project, user_id, email, phone, display_name,
    test_user, blocked, channel_address, channel_unsubscribed, channel_blocked, str_props,
    num_props, bool_props, time_props, update_time FROM profiles FINAL
WHERE (project, user_id) NOT IN (SELECT project, user_id FROM profile_versions)""",
            """INSERT INTO profile_watermarks SELECT project, max(update_time) FROM profiles
GROUP BY project""",
        ),
    ),
)

_CREATE_LOG = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY version"""


async def applied_versions(ch: ClickHouse) -> set[int]:
    rows = await ch.query("SELECT DISTINCT version FROM schema_migrations")
    return {int(r[0]) for r in rows}


async def migrate(ch: ClickHouse, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Applies the migrations not yet recorded; returns the versions applied now."""
    await ch.command(_CREATE_LOG)
    done = await applied_versions(ch)
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.statements:
            await ch.command(statement)
        await ch.insert(
            "schema_migrations",
            ["version", "description", "applied_at"],
            [[migration.version, migration.description, datetime.now(UTC)]],
        )
        applied.append(migration.version)
    return applied
