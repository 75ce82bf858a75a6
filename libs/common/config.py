"""Configuration from environment variables. Every variable, its default and meaning is in
the README's configuration table; keep the two in step."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICE_NAMES = ("definition", "evaluator", "reporting", "export")


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from exc


def _bool(env: Mapping[str, str], key: str) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def _secret(env: Mapping[str, str], key: str) -> str | None:
    """A key given in the environment: 32 to 256 printable characters without spaces."""
    raw = env.get(key) or None
    if raw is not None and not (
        32 <= len(raw) <= 256 and raw.isascii() and raw.isprintable() and " " not in raw
    ):
        raise ConfigError(f"{key} must be 32 to 256 printable ASCII characters without spaces")
    return raw


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Config:
    """Settings shared by all services. Build it with `Config.from_env()`."""

    host: str = "127.0.0.1"
    # Port of `segments serve all` (all four services on one port).
    port: int = 50051
    # Ports used when a service is started alone.
    service_ports: Mapping[str, int] = field(
        default_factory=lambda: {
            "definition": 50061,
            "evaluator": 50062,
            "reporting": 50063,
            "export": 50064,
        }
    )
    # Where embedded stores (SQLite file, chDB directory) and exports live.
    data_dir: Path = Path("var")
    # SQLAlchemy async URL of the definition store; None means the embedded SQLite file.
    database_url: str | None = None
    # SQLAlchemy async URLs of the evaluator's, reporting's and export's own tables
    # (SEGMENTS_<SERVICE>_DATABASE_URL); see `service_database_url`.
    service_database_urls: Mapping[str, str] = field(default_factory=dict)
    # ClickHouse HTTP URL (http://user:pass@host:8123/db); None means embedded chDB.
    clickhouse_url: str | None = None
    # ClickHouse database that holds this deployment's tables.
    clickhouse_database: str = "segments"
    # Directory for export files; None means data_dir / "exports".
    export_dir_override: Path | None = None
    # Addresses of peer services; None means "this process" (same port as `serve all`).
    definition_address: str | None = None
    evaluator_address: str | None = None
    # Logging.
    log_level: str = "INFO"
    # Seconds in-flight calls get to finish on SIGTERM.
    shutdown_grace_seconds: float = 10.0
    # Memory cap for one ClickHouse query; past half of it, GROUP BY and ORDER BY spill to disk.
    query_max_memory_bytes: int = 4 * 1024**3
    # Nice steps below the process's priority of the embedded engine's threads in a serving
    # process (0: at the process's).
    chdb_thread_nice: int = 10
    # Snapshot versions kept per segment (older ones are deleted after a new one commits).
    snapshots_kept: int = 3
    # Members of committed snapshots held in memory for batch membership (0 disables the cache).
    membership_cache_members: int = 2_000_000
    # Seconds an evaluator trusts what it read about a segment's latest snapshot version; a
    # version committed by another process is seen after at most this long (0: always re-read).
    snapshot_check_seconds: float = 1.0
    # When set, the process hosting the definition service ensures a key with this value
    # holding admin on all projects (first set-up; rotate it: docs/security.md).
    bootstrap_admin_key: str | None = field(default=None, repr=False)
    # Key this process sends on peer calls made outside any caller's call (background work);
    # None: this process's own internal credential, valid only within this process.
    service_key: str | None = field(default=None, repr=False)
    # Seconds an access decision is reused without asking the store or the definition service
    # again; a key revoked in another process stops working after at most this long.
    auth_cache_seconds: float = 5.0
    # Development only: calls without a credential act as an admin of all projects. Refused
    # unless the listen address is loopback.
    auth_disabled: bool = False
    # Failed authentications allowed per client address and minute (0: no limit).
    auth_failures_per_minute: int = 60
    # Expensive calls (count, stream, snapshot, export) one principal may run at once in one
    # process (0: no limit).
    max_concurrent_expensive_calls: int = 4
    # TLS: the server's certificate chain and private key (PEM files); None: plaintext.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # When set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca_file: Path | None = None
    # CA bundle trusted by peer calls (and clients of ours); when set, peer calls use TLS and
    # present tls_cert_file/tls_key_file as their client certificate when those are set.
    tls_ca_file: Path | None = None
    # Port of the Prometheus `/metrics` endpoint on SEGMENTS_HOST; None: no endpoint.
    metrics_port: int | None = None
    # OTLP/gRPC endpoint that receives traces (http://collector:4317); None: tracing off.
    otlp_endpoint: str | None = None
    # Share of new traces kept (a call whose caller sampled its trace is always kept).
    trace_sample_ratio: float = 1.0
    # Live segments: entries and finished timers are deleted after this many days.
    live_retention_days: float = 30.0
    # Live segments: an event older than this (event time vs arrival) triggers nothing.
    live_max_event_age_seconds: float = 86_400.0
    # Export jobs: jobs one process runs at once (0: this process runs none), running jobs
    # per project, pending or running jobs one principal may have (over every project),
    # seconds after which a silent worker's job is taken over, how long finished files are
    # kept, and how long a STREAM job waits for its reader.
    export_workers: int = 2
    export_max_running_per_project: int = 2
    export_max_unfinished_per_principal: int = 10
    export_lease_seconds: float = 15.0
    export_file_ttl_seconds: float = 7 * 86400.0
    export_stream_wait_seconds: float = 3600.0
    # Reporting: the scheduler runs each project's day this long after its local midnight
    # (False: this process runs no scheduler nor back-fills, it only answers the API); days
    # a new segment's trend is back-filled from before its creation (0: from its first
    # complete day); a silent process's run is taken over after the lease; a failing
    # segment is tried this many times, waiting from the first back-off up to the cap.
    reporting_scheduler: bool = True
    reporting_delay_seconds: float = 1800.0
    reporting_poll_seconds: float = 60.0
    backfill_days: int = 30
    reporting_lease_seconds: float = 60.0
    reporting_attempts: int = 3
    reporting_retry_seconds: float = 5.0
    reporting_retry_max_seconds: float = 300.0

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "definitions.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    def service_database_url(self, service: str) -> str:
        """SQLAlchemy async URL of the SQL tables `service` owns (live state, daily runs, export
        jobs; "audit": the audit records every process writes): SEGMENTS_<SERVICE>_DATABASE_URL,
        else SEGMENTS_DATABASE_URL (one database shared by the services, each with its own
        tables and migration version table), else the embedded SQLite file
        `<data dir>/<service>.sqlite3`."""
        if service == "definition":
            return self.effective_database_url
        configured = self.service_database_urls.get(service) or self.database_url
        return configured or f"sqlite+aiosqlite:///{self.data_dir / f'{service}.sqlite3'}"

    def database_variable(self, service: str) -> str:
        """The variable naming `service_database_url(service)` (when one does)."""
        if service != "definition" and self.service_database_urls.get(service):
            return f"SEGMENTS_{service.upper()}_DATABASE_URL"
        if self.database_url:
            return "SEGMENTS_DATABASE_URL"
        return "SEGMENTS_DATA_DIR"

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def export_dir(self) -> Path:
        return self.export_dir_override or self.data_dir / "exports"

    def port_for(self, service: str) -> int:
        return self.service_ports[service]

    def peer_address(self, service: str) -> str:
        """Address of a peer service: configured, else this process's `serve all` port."""
        configured = {
            "definition": self.definition_address,
            "evaluator": self.evaluator_address,
        }.get(service)
        return configured or f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        defaults = cls()
        ports = {
            name: _int(env, f"SEGMENTS_{name.upper()}_PORT", defaults.service_ports[name])
            for name in SERVICE_NAMES
        }
        export_dir = env.get("SEGMENTS_EXPORT_DIR")
        level = env.get("SEGMENTS_LOG_LEVEL", defaults.log_level).upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(
                f"SEGMENTS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}"
            )
        kept = _int(env, "SEGMENTS_SNAPSHOTS_KEPT", defaults.snapshots_kept)
        if kept < 1:
            raise ConfigError(f"SEGMENTS_SNAPSHOTS_KEPT must be at least 1, got {kept}")
        cached = _int(env, "SEGMENTS_MEMBERSHIP_CACHE_MEMBERS", defaults.membership_cache_members)
        check = _float(env, "SEGMENTS_SNAPSHOT_CHECK_SECONDS", defaults.snapshot_check_seconds)
        if cached < 0 or check < 0:
            raise ConfigError(
                "SEGMENTS_MEMBERSHIP_CACHE_MEMBERS and SEGMENTS_SNAPSHOT_CHECK_SECONDS must not be "
                f"negative, got {cached} and {check}"
            )
        tls = {
            name: Path(value) if (value := env.get(f"SEGMENTS_TLS_{name.upper()}_FILE")) else None
            for name in ("cert", "key", "client_ca", "ca")
        }
        if (tls["cert"] is None) != (tls["key"] is None):
            raise ConfigError("SEGMENTS_TLS_CERT_FILE and SEGMENTS_TLS_KEY_FILE go together")
        if tls["client_ca"] is not None and tls["cert"] is None:
            raise ConfigError("SEGMENTS_TLS_CLIENT_CA_FILE needs SEGMENTS_TLS_CERT_FILE (TLS)")
        failures = _int(env, "SEGMENTS_AUTH_FAILURES_PER_MINUTE", defaults.auth_failures_per_minute)
        expensive = _int(
            env, "SEGMENTS_MAX_CONCURRENT_EXPENSIVE_CALLS", defaults.max_concurrent_expensive_calls
        )
        if failures < 0 or expensive < 0:
            raise ConfigError(
                "SEGMENTS_AUTH_FAILURES_PER_MINUTE and SEGMENTS_MAX_CONCURRENT_EXPENSIVE_CALLS "
                f"must not be negative, got {failures} and {expensive}"
            )
        nice = _int(env, "SEGMENTS_CHDB_THREAD_NICE", defaults.chdb_thread_nice)
        if not 0 <= nice <= 19:
            raise ConfigError(f"SEGMENTS_CHDB_THREAD_NICE must be 0 to 19, got {nice}")
        auth_cache = _float(env, "SEGMENTS_AUTH_CACHE_SECONDS", defaults.auth_cache_seconds)
        if not 0 <= auth_cache <= 300:
            raise ConfigError(f"SEGMENTS_AUTH_CACHE_SECONDS must be 0 to 300, got {auth_cache}")
        metrics_port = (
            _int(env, "SEGMENTS_METRICS_PORT", 0) if env.get("SEGMENTS_METRICS_PORT") else None
        )
        if metrics_port is not None and not 0 <= metrics_port <= 65535:
            raise ConfigError(f"SEGMENTS_METRICS_PORT must be 0 to 65535, got {metrics_port}")
        ratio = _float(env, "SEGMENTS_TRACE_SAMPLE_RATIO", defaults.trace_sample_ratio)
        if not 0 <= ratio <= 1:
            raise ConfigError(f"SEGMENTS_TRACE_SAMPLE_RATIO must be 0 to 1, got {ratio}")
        retention = _float(env, "SEGMENTS_LIVE_RETENTION_DAYS", defaults.live_retention_days)
        max_age = _float(
            env, "SEGMENTS_LIVE_MAX_EVENT_AGE_SECONDS", defaults.live_max_event_age_seconds
        )
        if not 0 < max_age <= retention * 86_400:
            raise ConfigError(
                "SEGMENTS_LIVE_MAX_EVENT_AGE_SECONDS must be positive and at most "
                f"SEGMENTS_LIVE_RETENTION_DAYS in seconds, got {max_age} and {retention} days"
            )
        workers = _int(env, "SEGMENTS_EXPORT_WORKERS", defaults.export_workers)
        per_project = _int(
            env, "SEGMENTS_EXPORT_MAX_RUNNING_PER_PROJECT", defaults.export_max_running_per_project
        )
        per_principal = _int(
            env,
            "SEGMENTS_EXPORT_MAX_UNFINISHED_PER_PRINCIPAL",
            defaults.export_max_unfinished_per_principal,
        )
        lease = _float(env, "SEGMENTS_EXPORT_LEASE_SECONDS", defaults.export_lease_seconds)
        ttl = _float(env, "SEGMENTS_EXPORT_FILE_TTL_SECONDS", defaults.export_file_ttl_seconds)
        stream_wait = _float(
            env, "SEGMENTS_EXPORT_STREAM_WAIT_SECONDS", defaults.export_stream_wait_seconds
        )
        if stream_wait <= 0:
            raise ConfigError(
                f"SEGMENTS_EXPORT_STREAM_WAIT_SECONDS must be above 0, got {stream_wait}"
            )
        if workers < 0 or per_project < 1 or per_principal < 1 or lease < 2 or ttl <= 0:
            raise ConfigError(
                "SEGMENTS_EXPORT_WORKERS must be at least 0, "
                "SEGMENTS_EXPORT_MAX_RUNNING_PER_PROJECT at least 1, "
                "SEGMENTS_EXPORT_MAX_UNFINISHED_PER_PRINCIPAL at least 1, "
                "SEGMENTS_EXPORT_LEASE_SECONDS at least 2 and "
                f"SEGMENTS_EXPORT_FILE_TTL_SECONDS above 0, got {workers}, {per_project}, "
                f"{per_principal}, {lease} and {ttl}"
            )
        reporting = {
            "delay": _float(
                env, "SEGMENTS_REPORTING_DELAY_SECONDS", defaults.reporting_delay_seconds
            ),
            "poll": _float(env, "SEGMENTS_REPORTING_POLL_SECONDS", defaults.reporting_poll_seconds),
            "lease": _float(
                env, "SEGMENTS_REPORTING_LEASE_SECONDS", defaults.reporting_lease_seconds
            ),
            "retry": _float(
                env, "SEGMENTS_REPORTING_RETRY_SECONDS", defaults.reporting_retry_seconds
            ),
            "retry_max": _float(
                env, "SEGMENTS_REPORTING_RETRY_MAX_SECONDS", defaults.reporting_retry_max_seconds
            ),
        }
        attempts = _int(env, "SEGMENTS_REPORTING_ATTEMPTS", defaults.reporting_attempts)
        backfill_days = _int(env, "SEGMENTS_BACKFILL_DAYS", defaults.backfill_days)
        if (
            reporting["delay"] < 0
            or reporting["poll"] <= 0
            or reporting["lease"] < 2
            or reporting["retry"] < 0
            or reporting["retry_max"] < reporting["retry"]
            or attempts < 1
            or not 0 <= backfill_days <= 3650
        ):
            raise ConfigError(
                "SEGMENTS_REPORTING_DELAY_SECONDS must be at least 0, "
                "SEGMENTS_REPORTING_POLL_SECONDS above 0, SEGMENTS_REPORTING_LEASE_SECONDS at "
                "least 2, SEGMENTS_REPORTING_RETRY_SECONDS at least 0 and at most "
                "SEGMENTS_REPORTING_RETRY_MAX_SECONDS, SEGMENTS_REPORTING_ATTEMPTS at least 1 "
                f"and SEGMENTS_BACKFILL_DAYS 0 to 3650, got {reporting}, {attempts} and "
                f"{backfill_days}"
            )
        scheduler_raw = env.get("SEGMENTS_REPORTING_SCHEDULER", "")
        scheduler = (
            True if scheduler_raw.strip() == "" else _bool(env, "SEGMENTS_REPORTING_SCHEDULER")
        )
        return cls(
            host=env.get("SEGMENTS_HOST", defaults.host),
            port=_int(env, "SEGMENTS_PORT", defaults.port),
            service_ports=ports,
            data_dir=Path(env.get("SEGMENTS_DATA_DIR", str(defaults.data_dir))),
            database_url=env.get("SEGMENTS_DATABASE_URL") or None,
            service_database_urls={
                name: url
                for name in (*SERVICE_NAMES, "audit")
                if name != "definition"
                and (url := env.get(f"SEGMENTS_{name.upper()}_DATABASE_URL", ""))
            },
            clickhouse_url=env.get("SEGMENTS_CLICKHOUSE_URL") or None,
            clickhouse_database=env.get(
                "SEGMENTS_CLICKHOUSE_DATABASE", defaults.clickhouse_database
            ),
            export_dir_override=Path(export_dir) if export_dir else None,
            definition_address=env.get("SEGMENTS_DEFINITION_ADDRESS") or None,
            evaluator_address=env.get("SEGMENTS_EVALUATOR_ADDRESS") or None,
            log_level=level,
            shutdown_grace_seconds=_float(
                env, "SEGMENTS_SHUTDOWN_GRACE_SECONDS", defaults.shutdown_grace_seconds
            ),
            query_max_memory_bytes=_int(
                env, "SEGMENTS_QUERY_MAX_MEMORY_BYTES", defaults.query_max_memory_bytes
            ),
            chdb_thread_nice=nice,
            snapshots_kept=kept,
            membership_cache_members=cached,
            snapshot_check_seconds=check,
            bootstrap_admin_key=_secret(env, "SEGMENTS_BOOTSTRAP_ADMIN_KEY"),
            service_key=_secret(env, "SEGMENTS_SERVICE_KEY"),
            auth_cache_seconds=auth_cache,
            auth_disabled=_bool(env, "SEGMENTS_AUTH_DISABLED"),
            auth_failures_per_minute=failures,
            max_concurrent_expensive_calls=expensive,
            tls_cert_file=tls["cert"],
            tls_key_file=tls["key"],
            tls_client_ca_file=tls["client_ca"],
            tls_ca_file=tls["ca"],
            metrics_port=metrics_port,
            otlp_endpoint=env.get("SEGMENTS_OTLP_ENDPOINT") or None,
            trace_sample_ratio=ratio,
            live_retention_days=retention,
            live_max_event_age_seconds=max_age,
            export_workers=workers,
            export_max_running_per_project=per_project,
            export_max_unfinished_per_principal=per_principal,
            export_lease_seconds=lease,
            export_file_ttl_seconds=ttl,
            export_stream_wait_seconds=stream_wait,
            reporting_scheduler=scheduler,
            reporting_delay_seconds=reporting["delay"],
            reporting_poll_seconds=reporting["poll"],
            backfill_days=backfill_days,
            reporting_lease_seconds=reporting["lease"],
            reporting_attempts=attempts,
            reporting_retry_seconds=reporting["retry"],
            reporting_retry_max_seconds=reporting["retry_max"],
        )


DEFAULT_CLIENT_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class ClientSettings:
    """Settings of the `segments` command-line client (`libs/cli`), each overridden by its
    command-line option. Build it with `ClientSettings.from_env()`."""

    # host:port of the server (`segments serve all`, or one service's port).
    address: str = DEFAULT_CLIENT_ADDRESS
    # API key sent as "authorization: Bearer <key>"; or read from `api_key_file`.
    api_key: str | None = field(default=None, repr=False)
    api_key_file: Path | None = None
    # Project of commands given a bare id instead of a resource name.
    project: str | None = None
    # TLS: the CA that signed the server's certificate (implies TLS), and the client's own
    # certificate and key for servers that ask for one.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if env is None else env

        def path(key: str) -> Path | None:
            raw = env.get(key)
            return Path(raw) if raw else None

        return cls(
            address=env.get("SEGMENTS_ADDRESS") or DEFAULT_CLIENT_ADDRESS,
            api_key=env.get("SEGMENTS_API_KEY") or None,
            api_key_file=path("SEGMENTS_API_KEY_FILE"),
            project=env.get("SEGMENTS_PROJECT") or None,
            tls_ca_file=path("SEGMENTS_TLS_CA_FILE"),
            tls_cert_file=path("SEGMENTS_TLS_CERT_FILE"),
            tls_key_file=path("SEGMENTS_TLS_KEY_FILE"),
        )
