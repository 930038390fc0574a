"""The PrometheusRule in deploy/ (for teams routing alerts through Alertmanager), built from the
same catalogue queries (fleet/backends/prometheus/alert_promql.py) and thresholds (rules.py)
ScaleDeck evaluates itself.

`python -m scaling.alerts.prometheus_rule > deploy/components/monitoring/prometheusrule-vllm-slo.yaml`
writes it; a test fails when the committed file and this module disagree. Two differences
from ScaleDeck's own evaluation, because Prometheus knows nothing ScaleDeck stores: one
objective for every deployment (a TTFT bucket boundary, `OBJECTIVE_LE`, exact there) and the
default attainment target; and no "queue above target at max replicas" alert, whose target and
max come from the autoscaler objects. Temperature uses the A100 limit for every model, and power
only fires where dcgm-exporter exports the power limit.
"""

from __future__ import annotations

import sys

import yaml

from fleet.backends.prometheus import alert_promql
from fleet.backends.prometheus.alert_signals import ERROR_RATE_WINDOW_SECONDS, GPU_UTIL_WINDOW_SECONDS
from scaling.alerts import rules

OBJECTIVE_LE = "2.5"  # seconds: the vLLM TTFT bucket nearest above ScaleDeck's default objective of 2 s
NS = 'namespace!=""'
WINDOWS = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600}


def _ratio(window: str) -> str:
    return f"scaledeck:vllm_ttft_slow_ratio:rate{window}"


def rule_groups(*, attainment: float = rules.DEFAULT_ATTAINMENT, objective_le: str = OBJECTIVE_LE) -> list[dict]:
    budget = round(1.0 - attainment, 6)
    recording = [
        {"record": _ratio(name), "expr": alert_promql.ttft_slow_ratio_by_deployment(NS, "namespace", "pod", seconds,
                                                                              objective_le=objective_le)}
        for name, seconds in WINDOWS.items()
    ]  # fmt: skip
    burn = []
    for alert in rules.BURN_ALERTS:
        long = next(k for k, v in WINDOWS.items() if v == alert.long_seconds)
        short = next(k for k, v in WINDOWS.items() if v == alert.short_seconds)
        threshold = round(alert.factor * budget, 6)
        burn.append({
            "alert": "ScaleDeck" + "".join(p.title() for p in alert.rule.split("_")),
            "expr": f"{_ratio(long)} > {threshold:g} and {_ratio(short)} > {threshold:g}",
            "labels": {"severity": str(alert.severity), "scaledeck_rule": alert.rule},
            "annotations": {
                "summary": f"{rules.RULE_TITLES[alert.rule]}: {{{{ $labels.namespace }}}}/"
                           f"{{{{ $labels.{alert_promql.ALERT_DEPLOYMENT_LABEL} }}}}",
                "description": (f"TTFT over {objective_le} s burns the error budget at {alert.factor:g}x or more "
                                f"over {long} and {short} (target {attainment:g})."),
            },
        })  # fmt: skip

    def threshold_alert(rule: str, severity: str, expr: str, for_: str | None = None) -> dict:
        alert = {"alert": "ScaleDeck" + "".join(p.title() for p in rule.split("_")), "expr": expr,
                 "labels": {"severity": str(severity), "scaledeck_rule": rule},
                 "annotations": {"summary": rules.RULE_TITLES[rule]}}  # fmt: skip
        if for_:
            alert["for"] = for_
        return alert

    thresholds = [
        threshold_alert("kv_cache_full", rules.Severity.TICKET,
                        f"{alert_promql.kv_cache_max_by_deployment(NS, 'namespace', 'pod')}"
                        f" > {rules.KV_CACHE_FRACTION:g}"),
        threshold_alert("error_rate_high", rules.Severity.PAGE,
                        f"{alert_promql.error_ratio_by_deployment(NS, 'namespace', 'pod', ERROR_RATE_WINDOW_SECONDS)}"
                        f" > {rules.ERROR_RATE_FRACTION:g}"),
        threshold_alert("gpu_util_sustained", rules.Severity.INFO,
                        f"{alert_promql.gpu_util_floor_by_node(GPU_UTIL_WINDOW_SECONDS)} > {rules.GPU_UTIL_PERCENT:g}"),
        threshold_alert("fb_nearly_full", rules.Severity.TICKET,
                        f"{alert_promql.fb_used_fraction_by_node()} > {rules.FB_USED_FRACTION:g}"),
        threshold_alert("gpu_too_hot", rules.Severity.PAGE,
                        f"{alert_promql.temperature_max_by_node()} > {rules.DEFAULT_TEMPERATURE_LIMIT_C:g}"),
        threshold_alert("power_over_limit", rules.Severity.TICKET, f"{alert_promql.power_over_limit_by_node()} > 0"),
        threshold_alert("mem_copy_high", rules.Severity.INFO,
                        f"{alert_promql.mem_copy_util_max_by_node()} > {rules.MEM_COPY_PERCENT:g}"),
    ]  # fmt: skip
    return [
        {"name": "scaledeck-vllm-slo.recording", "interval": "1m", "rules": recording},
        {"name": "scaledeck-vllm-slo.alerts", "interval": "1m", "rules": burn + thresholds},
    ]


def prometheus_rule() -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "scaledeck-vllm-slo", "namespace": "scaledeck",
                     "labels": {"app.kubernetes.io/name": "scaledeck", "app.kubernetes.io/component": "alerts"}},
        "spec": {"groups": rule_groups()},
    }  # fmt: skip


HEADER = ("# Generated by `python -m scaling.alerts.prometheus_rule` from\n"
          "# fleet/backends/prometheus/alert_promql.py and scaling/alerts/rules.py: the SLO burn-rate and\n"
          "# GPU/vLLM threshold alerts ScaleDeck evaluates, for Alertmanager. Do not edit by hand.\n")


def render() -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=10_000)


if __name__ == "__main__":
    sys.stdout.write(render())
