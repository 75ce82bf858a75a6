"""Picks the adapter from configuration."""

from __future__ import annotations

from libs.clickhouse.observed import ObservedClickHouse
from libs.clickhouse.port import ClickHouse
from libs.common.config import Config


async def open_clickhouse(config: Config, database: str | None = None) -> ClickHouse:
    """chDB at `config.chdb_path` when no server URL is configured, else clickhouse-connect;
    either measured and traced (`ObservedClickHouse`)."""
    name = database or config.clickhouse_database
    if config.clickhouse_url:
        from libs.clickhouse.http_adapter import HttpClickHouse

        http = await HttpClickHouse.open(config.clickhouse_url, name, config.query_max_memory_bytes)
        return ObservedClickHouse(http, "http")
    from libs.clickhouse.chdb_adapter import ChdbClickHouse

    embedded = await ChdbClickHouse.open(config.chdb_path, name, config.query_max_memory_bytes)
    return ObservedClickHouse(embedded, "chdb")
