"""ScaleDeck's own alerts pass `promtool check rules`, fire when they should (`promtool test
rules`), and query only series ScaleDeck exposes; the dashboard is valid JSON over them too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.services import missing_service

MONITORING = ROOT / "deploy" / "components" / "monitoring"
EXPOSED = {
    "scaledeck_cluster_sync_age_seconds",
    "scaledeck_cluster_sync_last_duration_seconds",
    "scaledeck_cluster_sync_up",
    "scaledeck_cluster_sync_duration_seconds_bucket",
    "scaledeck_cluster_sync_errors_total",
    "scaledeck_scale_actions_total",
    "scaledeck_scale_actions_in_flight",
    "scaledeck_scale_action_latency_seconds_bucket",
    "scaledeck_prometheus_query_errors_total",
    "scaledeck_prometheus_query_duration_seconds_bucket",
    "scaledeck_prometheus_query_duration_seconds_count",
    "scaledeck_prescale_firings_total",
    "scaledeck_celery_tasks_total",
    "scaledeck_database_up",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        missing_service("promtool is not installed (Debian package prometheus)")
    return found


@pytest.fixture
def rule_file(tmp_path) -> Path:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    path = tmp_path / "scaledeck-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_the_rules_pass_promtool_check(promtool, rule_file):
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_the_alerts_fire_on_a_stale_sync_and_a_beat_that_stopped(promtool, rule_file, tmp_path):
    rules = yaml.safe_load(rule_file.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")  # their wording is not under test here, when they fire is
    rule_file.write_text(yaml.safe_dump(rules))
    tests = {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # two web pods report the same database state
                    {"series": 'scaledeck_cluster_sync_age_seconds{cluster="prod",pod="web-a"}', "values": "30+60x10"},
                    {"series": 'scaledeck_cluster_sync_age_seconds{cluster="prod",pod="web-b"}', "values": "30+60x10"},
                    {"series": 'scaledeck_cluster_sync_age_seconds{cluster="lab",pod="web-a"}', "values": "15x10"},
                    {
                        "series": 'scaledeck_celery_tasks_total{task="scaling.tasks.scaling_tick",state="succeeded"}',
                        "values": "0+4x3 12x20",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "ScaleDeckClusterSyncStale", "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": "ScaleDeckClusterSyncStale",
                        "exp_alerts": [{"exp_labels": {"severity": "warning", "cluster": "prod"}}],
                    },
                    {"eval_time": "4m", "alertname": "ScaleDeckBeatNotTicking", "exp_alerts": []},
                    {"eval_time": "12m", "alertname": "ScaleDeckBeatNotTicking", "exp_alerts": []},
                    {
                        "eval_time": "16m",
                        "alertname": "ScaleDeckBeatNotTicking",
                        "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def series_in(expr: str) -> set[str]:
    return set(re.findall(r"\bscaledeck_[a-z_]+", expr))


def test_the_rules_and_the_dashboard_query_only_series_scaledeck_exposes():
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    used = set().union(*(series_in(r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]))
    dashboard = json.loads((MONITORING / "scaledeck-dashboard.json").read_text())
    used |= set().union(*(series_in(t["expr"]) for p in dashboard["panels"] for t in p["targets"]))
    assert used <= EXPOSED, used - EXPOSED
    assert all(p["fieldConfig"]["defaults"]["unit"] for p in dashboard["panels"])
