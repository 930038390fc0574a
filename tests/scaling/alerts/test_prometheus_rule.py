"""The PrometheusRule in deploy/: generated from the catalogue, valid for promtool, and its page
alert fires in Prometheus's own rule engine (promtool test rules) and reads 20 % slow requests
from a real Prometheus scraping a burning vLLM pod."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from fleet.backends.prometheus import alert_promql
from scaling.alerts.prometheus_rule import NS, render, rule_groups
from tests.metrics.pod_targets import VllmPodTarget
from tests.services import missing_service

ROOT = Path(__file__).resolve().parents[3]
RULE_FILE = ROOT / "deploy" / "components" / "monitoring" / "prometheusrule-vllm-slo.yaml"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing_service("promtool not found: apt-get install prometheus")
    return found


def test_it_is_the_committed_file():
    assert RULE_FILE.read_text() == render(), "regenerate: python -m scaling.alerts.prometheus_rule > " + str(
        RULE_FILE.relative_to(ROOT))


def test_it_passes_promtool_check_rules(tmp_path):
    groups = yaml.safe_load(RULE_FILE.read_text())["spec"]["groups"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run([_promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_the_page_alert_fires_in_prometheus_rule_engine_for_a_20x_burn(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    bucket = "vllm:time_to_first_token_seconds_bucket"
    labels = 'namespace="llm", pod="{pod}", le="{le}"'
    # llama: 10 requests a minute, 2 of them over 2.5 s (20 % = 20x a 1 % budget); qwen: none slow.
    series = [
        {"series": f"{bucket}{{{labels.format(pod='llama-7d9f8c6b5-abcde', le='2.5')}}}", "values": "0+8x90"},
        {"series": f"{bucket}{{{labels.format(pod='llama-7d9f8c6b5-abcde', le='+Inf')}}}", "values": "0+10x90"},
        {"series": f"{bucket}{{{labels.format(pod='qwen-5c4b3a291-fghij', le='2.5')}}}", "values": "0+10x90"},
        {"series": f"{bucket}{{{labels.format(pod='qwen-5c4b3a291-fghij', le='+Inf')}}}", "values": "0+10x90"},
    ]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{
                "eval_time": "70m",
                "alertname": "ScaleDeckSloBurnPage",
                "exp_alerts": [{
                    "exp_labels": {"severity": "page", "scaledeck_rule": "slo_burn_page", "namespace": "llm",
                                   alert_promql.ALERT_DEPLOYMENT_LABEL: "llama"},
                    "exp_annotations": {
                        "summary": "TTFT error budget burning fast: llm/llama",
                        "description": "TTFT over 2.5 s burns the error budget at 14.4x or more over 1h and 5m "
                                       "(target 0.99).",
                    },
                }],
            }],
        }],
    }  # fmt: skip
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([_promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_recorded_slow_ratio_reads_a_burning_pod_in_a_real_prometheus(prometheus_server, pod_targets):
    pod = "rule-burn-6d5c4b3a2-zzzzz"
    pod_targets.add_pods(VllmPodTarget("rulecheck", pod, requests_per_second=10.0, ttft=((0.5, 0.8), (5.0, 0.2))))
    prometheus_server.scrape_more(pod_targets.scrape_configs("prometheus-rule", pods=[pod]))
    [recording] = [r for r in rule_groups()[0]["rules"] if r["record"].endswith("rate5m")]
    assert NS in recording["expr"]
    deadline = time.monotonic() + 30
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = [r for r in prometheus_server.query(recording["expr"]) if r["metric"].get("namespace") == "rulecheck"]
        if rows:
            break
        time.sleep(0.5)
    assert [r["metric"][alert_promql.ALERT_DEPLOYMENT_LABEL] for r in rows] == ["rule-burn"]
    assert float(rows[0]["value"][1]) == pytest.approx(0.2, abs=0.01)
