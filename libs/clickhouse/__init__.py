"""ClickHouse access shared by the evaluator, reporting and export services.

`open_clickhouse(config)` returns a `ClickHouse` executor: embedded chDB when no server URL is
configured, else a clickhouse-connect client over HTTP. Both run the same SQL.
"""

from libs.clickhouse.common import encode_insert
from libs.clickhouse.factory import open_clickhouse
from libs.clickhouse.port import ClickHouse, InsertData, Params, Row, Settings

__all__ = [
    "ClickHouse",
    "InsertData",
    "Params",
    "Row",
    "Settings",
    "encode_insert",
    "open_clickhouse",
]
