"""The PrometheusRule in deploy/: generated from the catalogue, valid for promtool; in Prometheus's
own rule engine (promtool test rules) its page alert judges each deployment's minutes against
that deployment's own objective (from ScaleDeck's /metrics) and the queue alert fires only at max
replicas; its per-minute p95 reads a burning vLLM pod right in a real Prometheus."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from fleet.backends.prometheus import alert_promql
from scaling.alerts.prometheus_rule import NS, P95, render, rule_groups
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
        RULE_FILE.relative_to(ROOT)
    )


def test_it_passes_promtool_check_rules(tmp_path):
    groups = yaml.safe_load(RULE_FILE.read_text())["spec"]["groups"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run([_promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 18 rules found" in result.stdout


def _scaledeck(metric: str, deployment: str, value: float) -> dict:
    labels = f'cluster="prod", deployment_namespace="llm", deployment="{deployment}"'
    return {"series": f"{metric}{{{labels}}}", "values": f"{value!r}x90"}


def _pod(deployment: str) -> str:
    return f"{deployment}-7d9f8c6b5-abcde"


def _expected(rule: str, severity: str, deployment: str, summary: str, description: str | None = None) -> dict:
    annotations = {"summary": f"{summary}: llm/{deployment}"}
    if description:
        annotations["description"] = description
    return {"exp_labels": {"severity": severity, "scaledeck_rule": rule, "namespace": "llm",
                           alert_promql.ALERT_DEPLOYMENT_LABEL: deployment},
            "exp_annotations": annotations}  # fmt: skip


def test_each_deployment_is_judged_against_its_own_objective_and_queue_target(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    bucket = "vllm:time_to_first_token_seconds_bucket"
    # Every minute, 10 requests between 1 and 2.5 s: p95 2.43 s. Over llama's 1 s objective, within
    # qwen's 5 s one; mistral is unknown to ScaleDeck and gets the default 2 s objective.
    series = [
        {"series": f'{bucket}{{namespace="llm", pod="{_pod(d)}", le="{le}"}}', "values": values}
        for d in ("llama", "qwen", "mistral") for le, values in (("1.0", "0x90"), ("2.5", "0+10x90"),
                                                                  ("+Inf", "0+10x90"))
    ]  # fmt: skip
    series += [_scaledeck("scaledeck_slo_ttft_objective_seconds", "llama", 1.0),
               _scaledeck("scaledeck_slo_ttft_objective_seconds", "qwen", 5.0),
               _scaledeck("scaledeck_slo_attainment_target", "llama", 0.99),
               _scaledeck("scaledeck_slo_attainment_target", "qwen", 0.99)]  # fmt: skip
    # Both queues stay at 12 per pod over a target of 5; only llama is at its max (4 of 4).
    series += [{"series": f'vllm:num_requests_waiting{{namespace="llm", pod="{_pod(d)}"}}', "values": "12x90"}
               for d in ("llama", "qwen")]  # fmt: skip
    for deployment, most in (("llama", 4), ("qwen", 8)):
        series += [_scaledeck("scaledeck_autoscaler_queue_target", deployment, 5.0),
                   _scaledeck("scaledeck_autoscaler_max_replicas", deployment, most),
                   _scaledeck("scaledeck_deployment_replicas_desired", deployment, 4)]  # fmt: skip
    burn = (
        "p95 TTFT over the deployment's objective in more than 14.4x the error budget's share of minutes "
        "over 1h and 5m."
    )
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "ScaleDeckSloBurnPage",
                 "exp_alerts": [_expected("slo_burn_page", "page", d, "TTFT error budget burning fast", burn)
                                for d in ("llama", "mistral")]},
                {"eval_time": "70m", "alertname": "ScaleDeckQueueAtMax",
                 "exp_alerts": [_expected("queue_at_max", "page", "llama",
                                          "queue above target at max replicas for 10 min")]},
            ],
        }],
    }  # fmt: skip
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([_promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_recorded_minute_p95_reads_a_burning_pod_in_a_real_prometheus(prometheus_server, pod_targets):
    pod = "rule-burn-6d5c4b3a2-zzzzz"
    pod_targets.add_pods(VllmPodTarget("rulecheck", pod, requests_per_second=10.0, ttft=((0.5, 0.8), (5.0, 0.2))))
    prometheus_server.scrape_more(pod_targets.scrape_configs("prometheus-rule", pods=[pod]))
    [recording] = [r for r in rule_groups()[0]["rules"] if r["record"] == P95]
    assert NS in recording["expr"]
    deadline = time.monotonic() + 30
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = [r for r in prometheus_server.query(recording["expr"]) if r["metric"].get("namespace") == "rulecheck"]
        if rows:
            break
        time.sleep(0.5)
    assert [r["metric"][alert_promql.ALERT_DEPLOYMENT_LABEL] for r in rows] == ["rule-burn"]
    # 80 % at or under 2.5 s, 20 % in the 2.5-5 s bucket: the 95th percentile is 3/4 into it.
    assert float(rows[0]["value"][1]) == pytest.approx(4.375, abs=0.05)
