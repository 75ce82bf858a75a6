"""Prometheus metrics of a Segments process: the one registry, every metric object the services
record into, and the HTTP endpoint the server bootstrap starts when `SEGMENTS_METRICS_PORT` is
set (docs/operations.md lists every metric and what it means).

Services import the objects below and record into them where the thing happens; nothing else
defines metrics. Names follow Prometheus conventions (a counter `foo` is exposed as
`foo_total`); the per-RPC ones are the usual gRPC server metrics (`grpc_server_*`), recorded for
every call by `libs.common.telemetry`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: The registry the endpoint serves (not the library's global default one).
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

#: Seconds: from 1 ms to 2 minutes (calls, queries and transactions alike).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)

# --- every gRPC call (libs.common.telemetry) --------------------------------------------------
_RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
RPC_STARTED = Counter(
    "grpc_server_started", "RPCs started on the server.", _RPC_LABELS, registry=REGISTRY
)
RPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by status code.",
    (*_RPC_LABELS, "grpc_code"),
    registry=REGISTRY,
)
RPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, in seconds.",
    _RPC_LABELS,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RPC_MSG_RECEIVED = Counter(
    "grpc_server_msg_received", "Request messages received.", _RPC_LABELS, registry=REGISTRY
)
RPC_MSG_SENT = Counter(
    "grpc_server_msg_sent", "Response messages sent.", _RPC_LABELS, registry=REGISTRY
)

# --- evaluator: ingestion ---------------------------------------------------------------------
EVENTS_INGESTED = Counter(
    "segments_events_ingested",
    "Events received by IngestEvents, by outcome (accepted, duplicate, rejected).",
    ("outcome",),
    registry=REGISTRY,
)
PROFILES_UPSERTED = Counter(
    "segments_profiles_upserted",
    "Profiles received by UpsertProfiles, by outcome (upserted, rejected).",
    ("outcome",),
    registry=REGISTRY,
)

# --- evaluator: live segments -----------------------------------------------------------------
LIVE_ENTRIES = Counter(
    "segments_live_entries", "Entries into live segments written.", registry=REGISTRY
)
LIVE_ENTRY_LATENCY_SECONDS = Histogram(
    "segments_live_entry_latency_seconds",
    "From the moment a user qualified (event received, or inaction timer due) to the entry "
    "being stored, in seconds.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
LIVE_TIMERS_PENDING = Gauge(
    "segments_live_timers_pending",
    "Inaction timers waiting to fire (as last read from the live store).",
    registry=REGISTRY,
)

# --- export -----------------------------------------------------------------------------------
EXPORT_JOBS = Counter(
    "segments_export_jobs",
    "Export jobs that reached a state (pending, running, succeeded, failed, cancelled).",
    ("state",),
    registry=REGISTRY,
)
EXPORT_JOBS_RUNNING = Gauge(
    "segments_export_jobs_running", "Export jobs running in this process.", registry=REGISTRY
)
EXPORT_ROWS_WRITTEN = Counter(
    "segments_export_rows_written", "CSV rows written by export jobs.", registry=REGISTRY
)

# --- reporting: the daily job -----------------------------------------------------------------
DAILY_RUNS = Counter(
    "segments_daily_runs",
    "Daily runs that reached a state (running, succeeded, failed).",
    ("state",),
    registry=REGISTRY,
)
DAILY_RUN_SEGMENTS = Counter(
    "segments_daily_run_segments",
    "Segments computed by daily runs, by outcome (succeeded, failed after retries), and "
    "days back-filled (backfilled).",
    ("outcome",),
    registry=REGISTRY,
)
DAILY_RUN_LAST_SUCCESS = Gauge(
    "segments_daily_run_last_success_timestamp_seconds",
    "When the last daily run that succeeded ended (Unix time).",
    registry=REGISTRY,
)

# --- stores -----------------------------------------------------------------------------------
CLICKHOUSE_QUERY_SECONDS = Histogram(
    "segments_clickhouse_query_seconds",
    "Duration of ClickHouse statements, by adapter (chdb, http) and operation (query, stream, "
    "command, insert), in seconds.",
    ("adapter", "operation"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CLICKHOUSE_QUERY_FAILURES = Counter(
    "segments_clickhouse_query_failures",
    "ClickHouse statements that failed, by adapter, operation and error code.",
    ("adapter", "operation", "code"),
    registry=REGISTRY,
)
SQL_TRANSACTION_SECONDS = Histogram(
    "segments_sql_transaction_seconds",
    "Duration of SQL store transactions (definition, evaluator, reporting, export stores), "
    "in seconds.",
    ("store",),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SQL_TRANSACTION_FAILURES = Counter(
    "segments_sql_transaction_failures",
    "SQL store transactions that failed, by store and error code.",
    ("store", "code"),
    registry=REGISTRY,
)


@dataclass(frozen=True)
class PoolState:
    """What a connection pool holds right now."""

    size: int
    checked_out: int
    idle: int
    overflow: int


class _PoolCollector(Collector):
    """`segments_sql_pool_*` gauges of every open SQL store, read at scrape time."""

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[Any, tuple[str, Callable[[], PoolState]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def watch(self, owner: Any, store: str, read: Callable[[], PoolState]) -> None:
        with self._lock:
            self._pools[owner] = (store, read)

    def forget(self, owner: Any) -> None:
        with self._lock:
            self._pools.pop(owner, None)

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "segments_sql_pool_connections",
            "Connections of SQL store pools, by store and state (checked_out, idle, overflow).",
            labels=("store", "state"),
        )
        size = GaugeMetricFamily(
            "segments_sql_pool_size", "Configured pool size of SQL stores.", labels=("store",)
        )
        totals: dict[str, PoolState] = {}
        with self._lock:
            pools = list(self._pools.values())
        for store, read in pools:
            state = read()
            seen = totals.get(store)
            totals[store] = (
                state
                if seen is None
                else PoolState(
                    seen.size + state.size,
                    seen.checked_out + state.checked_out,
                    seen.idle + state.idle,
                    seen.overflow + state.overflow,
                )
            )
        for store, state in sorted(totals.items()):
            connections.add_metric((store, "checked_out"), state.checked_out)
            connections.add_metric((store, "idle"), state.idle)
            connections.add_metric((store, "overflow"), state.overflow)
            size.add_metric((store,), state.size)
        yield connections
        yield size

    def describe(self) -> Iterator[Metric]:
        return iter(())


SQL_POOLS = _PoolCollector()
REGISTRY.register(SQL_POOLS)


class MetricsEndpoint:
    """The HTTP server of `/metrics` (a daemon thread), closed by the server bootstrap."""

    def __init__(self, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=REGISTRY)
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_endpoint(host: str, port: int) -> MetricsEndpoint:
    """Serves `/metrics` on `host:port` (0: a free port; see `MetricsEndpoint.port`).
    Raises OSError when the port cannot be bound."""
    return MetricsEndpoint(host, port)
