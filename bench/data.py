"""Synthetic data generated inside the engine (INSERT ... SELECT FROM numbers()).

Sizes are parameters; the defaults are the issue's: 1M users, 10M events over 180 days. Every
value is a deterministic hash of the row number, so two runs see the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.clickhouse.port import ClickHouse

PROJECT = "bench"
EVENT_NAMES = [
    "App Launched",
    "Product Viewed",
    "Added To Cart",
    "Charged",
    "Searched",
    "Page Visited",
    "Rated",
    "Shared",
    "Logged In",
    "Notification Clicked",
]
CITIES = ["New York", "Boston", "Chicago", "Austin", "Seattle", "Denver", "Miami", "Dallas"]
SOURCES = ["facebook", "google", "organic", "referral"]


@dataclass(frozen=True)
class Sizes:
    users: int = 1_000_000
    events: int = 10_000_000
    days: int = 180

    @property
    def end(self) -> datetime:
        return datetime(2026, 11, 1, tzinfo=UTC)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


async def generate(ch: ClickHouse, sizes: Sizes) -> None:
    """Fill profiles, users and events of project PROJECT (the tables must be empty)."""
    values = {
        "project": PROJECT,
        "users": sizes.users,
        "events": sizes.events,
        "start": sizes.start,
        "span_ms": sizes.days * 86_400_000,
        "names": EVENT_NAMES,
        "cities": CITIES,
        "sources": SOURCES,
    }

    async def run(sql: str, **settings: int) -> None:
        used = {k: v for k, v in values.items() if "{" + k + ":" in sql}
        await ch.command(sql, used, settings=settings or None)

    await run(
        "INSERT INTO profiles (project, user_id, email, phone, display_name, test_user, blocked,"
        " channel_address, channel_unsubscribed, channel_blocked, str_props, num_props,"
        " bool_props, time_props, update_time)"
        " SELECT {project:String}, concat('u', toString(number)),"
        " concat('u', toString(number), '@example.com'), '', concat('User ', toString(number)),"
        " 0, toUInt8(number % 97 = 0),"
        " map('EMAIL', concat('u', toString(number), '@example.com')), map(), map(),"
        " map('city', arrayElement({cities:Array(String)}, 1 + cityHash64(number, 11) % 8),"
        "     'source', arrayElement({sources:Array(String)}, 1 + cityHash64(number, 12) % 4)),"
        " map('age', toFloat64(18 + cityHash64(number, 13) % 60)), map(), map(),"
        " {start:DateTime64(3)}"
        " FROM numbers({users:UInt64})"
    )
    await run(
        "INSERT INTO users (project, user_id, seen_at)"
        " SELECT {project:String}, concat('u', toString(number)), toDateTime64(0, 3, 'UTC')"
        " FROM numbers({users:UInt64})"
    )
    # Event names are skewed: "Charged" and "Added To Cart" are rarer than launches and views.
    await run(
        "INSERT INTO events (project, event_name, user_id, event_time, event_id, str_props,"
        " num_props, bool_props, time_props)"
        " SELECT {project:String},"
        " arrayElement({names:Array(String)}, 1 + toUInt32(pow(cityHash64(number, 1) % 1000 / 1000,"
        "   1.6) * 10)),"
        " concat('u', toString(cityHash64(number, 2) % {users:UInt64})),"
        " {start:DateTime64(3)} + toIntervalMillisecond(cityHash64(number, 3) % {span_ms:UInt64}),"
        " concat('e', toString(number)),"
        " map('category', arrayElement(['books', 'shoes', 'games', 'food'],"
        "   1 + cityHash64(number, 4) % 4)),"
        " if(cityHash64(number, 6) % 5 = 0, map(), map('amount', (cityHash64(number, 5) % 20000)"
        "   / 100.0)),"
        " map(), map()"
        " FROM numbers({events:UInt64})",
        max_insert_threads=2,
        max_block_size=1_000_000,
    )
