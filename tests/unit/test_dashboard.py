"""``deploy/grafana-dashboard.json`` is a well-formed Grafana dashboard of the app's metrics.

Checked: the JSON model's required fields, unique panel ids, a 24-column grid without
overlaps, one data-source variable used by every query, balanced PromQL, and above all
that every metric a query names is one the app exports (and every exported metric
appears on some panel). The Prometheus example config must point at ``/metrics``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
EXPRS = [t["expr"] for p in PANELS for t in p["targets"]]
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\bapp_[a-z0-9_]+\b", without_strings))


def test_dashboard_model_has_the_required_fields():
    assert isinstance(DASHBOARD["title"], str) and DASHBOARD["title"]
    assert re.fullmatch(r"[a-z0-9-]{1,40}", DASHBOARD["uid"])
    assert isinstance(DASHBOARD["schemaVersion"], int) and DASHBOARD["schemaVersion"] >= 36
    assert DASHBOARD["time"] == {"from": "now-1h", "to": "now"}
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_panels_fit_the_grid_without_overlapping():
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_panel_queries_prometheus_through_the_variable(panel):
    assert panel["type"] in {"timeseries", "stat"}
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ref_ids = [t["refId"] for t in panel["targets"]]
    assert ref_ids and len(ref_ids) == len(set(ref_ids))
    defined = {v["name"] for v in DASHBOARD["templating"]["list"]} | BUILTIN_VARIABLES
    for target in panel["targets"]:
        expr = target["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
        assert expr.count("[") == expr.count("]")
        assert metric_names(expr), expr
        for variable in re.findall(r"\$(\w+)", expr):
            assert variable in defined, expr


def test_queries_name_only_exported_metrics_and_show_them_all():
    exported = Metrics().names()
    used = set().union(*(metric_names(e) for e in EXPRS))
    variables = DASHBOARD["templating"]["list"]
    used_by_variables = set().union(*(metric_names(v.get("definition", "")) for v in variables))
    assert used | used_by_variables <= exported, sorted((used | used_by_variables) - exported)
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in exported}
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert families <= shown, sorted(families - shown)


def test_issue_names_are_exported_exactly():
    exported = Metrics().names()
    for name in (
        "app_http_requests_total", "app_http_request_duration_seconds_bucket",
        "app_sessions_created_total", "app_sessions_ended_total",
        "app_session_cache_lookups_total", "app_redis_commands_total",
        "app_redis_command_duration_seconds_bucket", "app_redis_errors_total",
        "app_logins_total", "app_registrations_total", "app_bcrypt_queue_length",
        "app_mysql_pool_in_use",
    ):  # fmt: skip
        assert name in exported, name


def test_prometheus_example_scrapes_metrics():
    config = (ROOT / "deploy" / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in config and "job_name: tornado-app" in config
