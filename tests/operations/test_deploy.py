"""The dashboard, Prometheus and compose files agree with the metrics the code exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from libs.common import metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _exposed_names() -> set[str]:
    text = generate_latest(metrics.REGISTRY).decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    } | {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}


def test_dashboard_queries_name_exposed_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "segments.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    referenced = {
        name
        for expr in exprs
        for name in re.findall(r"\b((?:grpc_server|segments|process)_[a-z_]+)\b", expr)
    }
    exposed = _exposed_names()
    # Histograms are queried through their _bucket series.
    missing = {
        n for n in referenced if n not in exposed and n.removesuffix("_bucket") not in exposed
    }
    assert not missing, missing
    wanted = {
        "segments_live_entries_total",
        "segments_export_jobs_total",
        "segments_daily_runs_total",
        "segments_sql_pool_connections",
        "segments_clickhouse_query_seconds_bucket",
        "grpc_server_handling_seconds_bucket",
    }
    assert wanted <= referenced
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_scrapes_every_service_of_the_compose_file() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    ours = {name for name, s in services.items() if s.get("command", [""])[0] == "segments"}
    assert ours == {"definition", "evaluator", "reporting", "export"}
    assert all(services[n]["environment"]["SEGMENTS_METRICS_PORT"] == "9464" for n in ours)
    assert {"prometheus", "grafana"} <= set(services)
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {f"{n}:9464" for n in ours}
    mounted = [v.split(":")[0] for v in services["grafana"]["volumes"]]
    assert all((REPO / m).exists() for m in mounted)
