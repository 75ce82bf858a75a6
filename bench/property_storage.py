"""How event properties are stored: typed Maps vs the JSON type, measured in one run.

`python -m bench.property_storage [--events N]` creates two copies of the same synthetic
events (default 5M) in a scratch database of the benchmark's chDB path, one with
`str_props Map(String, String)` + `num_props Map(String, Float64)` (what the evaluator uses),
one with a single `props JSON` column, then times the accesses segments make (median of 5):
a numeric filter + sum on one property, a string equality filter, and a property-exists
count. It prints JSON; the numbers go into docs/evaluator.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from bench.run import DATA_DIR

DATABASE = "bench_props"

_MAPS = """CREATE TABLE IF NOT EXISTS props_maps (
    event_name LowCardinality(String), user_id String, event_time DateTime64(3, 'UTC'),
    str_props Map(String, String), num_props Map(String, Float64)
) ENGINE = MergeTree ORDER BY (event_name, user_id, event_time)"""

_JSON = """CREATE TABLE IF NOT EXISTS props_json (
    event_name LowCardinality(String), user_id String, event_time DateTime64(3, 'UTC'),
    props JSON
) ENGINE = MergeTree ORDER BY (event_name, user_id, event_time)"""

_ROWS = """SELECT
    arrayElement(['Charged', 'Viewed', 'Launched', 'Searched'], 1 + cityHash64(number, 1) % 4),
    concat('u', toString(cityHash64(number, 2) % 500000)),
    toDateTime64('2026-05-01 00:00:00', 3, 'UTC')
        + toIntervalMillisecond(cityHash64(number, 3) % 15552000000)"""

QUERIES = {
    "numeric filter + sum": (
        "SELECT sum(num_props['amount']) FROM props_maps"
        " WHERE event_name = 'Charged' AND num_props['amount'] > 50",
        "SELECT sum(props.amount::Float64) FROM props_json"
        " WHERE event_name = 'Charged' AND props.amount::Float64 > 50",
    ),
    "string equality": (
        "SELECT count() FROM props_maps WHERE event_name = 'Viewed'"
        " AND str_props['category'] = 'books'",
        "SELECT count() FROM props_json WHERE event_name = 'Viewed'"
        " AND props.category::String = 'books'",
    ),
    "property exists": (
        "SELECT count() FROM props_maps WHERE mapContains(num_props, 'amount')",
        "SELECT count() FROM props_json WHERE props.amount IS NOT NULL",
    ),
}


async def _median(ch: Any, sql: str) -> float:
    await ch.query(sql)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await ch.query(sql)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(events: int) -> dict[str, Any]:
    from libs.clickhouse.chdb_adapter import ChdbClickHouse

    ch = await ChdbClickHouse.open(DATA_DIR / "chdb", DATABASE, 8 * 1024**3)
    await ch.command(_MAPS)
    await ch.command(_JSON)
    for table in ("props_maps", "props_json"):
        await ch.command(f"TRUNCATE TABLE {table}")
    await ch.command(
        f"INSERT INTO props_maps {_ROWS},"
        " map('category', arrayElement(['books', 'shoes', 'games'], 1 + cityHash64(number) % 3)),"
        " if(number % 5 = 0, map(), map('amount', (cityHash64(number, 5) % 10000) / 100.0))"
        " FROM numbers({n:UInt64})",
        {"n": events},
    )
    await ch.command(
        f"INSERT INTO props_json {_ROWS},"
        " if(number % 5 = 0,"
        "   toJSONString(map('category', arrayElement(['books', 'shoes', 'games'],"
        "     1 + cityHash64(number) % 3))),"
        "   concat('{\"category\":\"', arrayElement(['books', 'shoes', 'games'],"
        '     1 + cityHash64(number) % 3), \'","amount":\','
        "     toString((cityHash64(number, 5) % 10000) / 100.0), '}'))"
        " FROM numbers({n:UInt64})",
        {"n": events},
    )
    sizes = await ch.query(
        "SELECT table, sum(data_compressed_bytes) FROM system.parts"
        " WHERE database = {db:String} AND active GROUP BY table",
        {"db": DATABASE},
    )
    results: dict[str, Any] = {"events": events, "compressed_bytes": dict(sizes)}
    for name, (maps_sql, json_sql) in QUERIES.items():
        maps_s = await _median(ch, maps_sql)
        json_s = await _median(ch, json_sql)
        results[name] = {"maps_s": maps_s, "json_s": json_s, "json_vs_maps": json_s / maps_s}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000_000)
    print(json.dumps(asyncio.run(main(parser.parse_args().events)), indent=2))
