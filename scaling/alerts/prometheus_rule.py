"""The PrometheusRule in deploy/ (for teams routing alerts through Alertmanager), built from the
same catalogue queries (fleet/backends/prometheus/alert_promql.py) and thresholds (rules.py)
ScaleDeck evaluates itself.

`python -m scaling.alerts.prometheus_rule > deploy/components/monitoring/prometheusrule-vllm-slo.yaml`
writes it; a test fails when the committed file and this module disagree.

What only ScaleDeck knows comes from its own /metrics (scaling/alerts/slo_metrics.py, scraped by
the monitoring component's ServiceMonitor): each deployment's TTFT objective and attainment
target, and its autoscaler's queue target, max and desired replicas. So the SLO is each
deployment's own -- "p95 TTFT within its objective in 99 % of minutes": a recording rule judges
every minute (the p95 of the minute's requests against the deployment's objective) and the burn
rates are the share of slow minutes over each window. A deployment ScaleDeck does not know gets
the default objective and target. "Queue above target at max replicas" needs ScaleDeck's series
(no target, no alert). Temperature uses the A100 limit for every model, and power only fires
where dcgm-exporter exports the power limit.
"""

from __future__ import annotations

import sys

import yaml
from django.conf import settings

from fleet.backends.prometheus import alert_promql
from fleet.backends.signals import (
    ERROR_RATE_WINDOW_SECONDS,
    GPU_UTIL_WINDOW_SECONDS,
    QUEUE_WINDOW_SECONDS,
)
from scaling.alerts import rules

NS = 'namespace!=""'
WINDOWS = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600}
ON = f"on (namespace, {alert_promql.ALERT_DEPLOYMENT_LABEL})"
P95 = "scaledeck:vllm_ttft_p95:rate1m"
OBJECTIVE = "scaledeck:slo_ttft_objective_seconds"
BUDGET = "scaledeck:slo_error_budget:ratio"
SLOW_MINUTE = "scaledeck:vllm_ttft_slow_minute"


def _slow_minutes(window: str) -> str:
    return f"scaledeck:vllm_ttft_slow_minutes:ratio{window}"


def _name(rule: str) -> str:
    return "ScaleDeck" + "".join(p.title() for p in rule.split("_"))


def _subject() -> str:
    return f"{{{{ $labels.namespace }}}}/{{{{ $labels.{alert_promql.ALERT_DEPLOYMENT_LABEL} }}}}"


def rule_groups() -> list[dict]:
    measured = f"({P95} >= 0)"  # minutes with requests (a minute without has a NaN p95)
    default_objective = settings.SCALEDECK_DEFAULT_TTFT_SLO_SECONDS
    recording = [
        {"record": P95, "expr": alert_promql.ttft_p95_last_minute_by_deployment(NS, "namespace", "pod")},
        {"record": OBJECTIVE,
         "expr": f"{alert_promql.scaledeck_gauge_by_deployment('scaledeck_slo_ttft_objective_seconds', 'min')}"
                 f" or {ON} ({measured} * 0 + {default_objective!r})"},
        {"record": BUDGET,
         "expr": f"(1 - {alert_promql.scaledeck_gauge_by_deployment('scaledeck_slo_attainment_target')})"
                 f" or {ON} ({measured} * 0 + {round(1 - rules.DEFAULT_ATTAINMENT, 6)!r})"},
        {"record": SLOW_MINUTE, "expr": f"{measured} > bool {ON} group_left () {OBJECTIVE}"},
    ] + [
        {"record": _slow_minutes(name), "expr": f"avg_over_time({SLOW_MINUTE}[{name}])"} for name in WINDOWS
    ]  # fmt: skip
    burn = []
    for alert in rules.BURN_ALERTS:
        long = next(k for k, v in WINDOWS.items() if v == alert.long_seconds)
        short = next(k for k, v in WINDOWS.items() if v == alert.short_seconds)
        over = f"{ON} group_left () ({alert.factor:g} * {BUDGET})"
        burn.append({
            "alert": _name(alert.rule),
            "expr": f"{_slow_minutes(long)} > {over} and {_slow_minutes(short)} > {over}",
            "labels": {"severity": str(alert.severity), "scaledeck_rule": alert.rule},
            "annotations": {
                "summary": f"{rules.RULE_TITLES[alert.rule]}: {_subject()}",
                "description": (f"p95 TTFT over the deployment's objective in more than {alert.factor:g}x the "
                                f"error budget's share of minutes over {long} and {short}."),
            },
        })  # fmt: skip
    queue_target = alert_promql.scaledeck_gauge_by_deployment("scaledeck_autoscaler_queue_target", "min")
    desired = alert_promql.scaledeck_gauge_by_deployment("scaledeck_deployment_replicas_desired")
    most = alert_promql.scaledeck_gauge_by_deployment("scaledeck_autoscaler_max_replicas")
    queue_floor = alert_promql.queue_floor_by_deployment(NS, "namespace", "pod", QUEUE_WINDOW_SECONDS)
    queue_at_max = {
        "alert": _name("queue_at_max"),
        "expr": f"{queue_floor} > {ON} group_left () {queue_target} and {ON} ({desired} >= {ON} {most})",
        "labels": {"severity": str(rules.Severity.PAGE), "scaledeck_rule": "queue_at_max"},
        "annotations": {"summary": f"{rules.RULE_TITLES['queue_at_max']}: {_subject()}"},
    }

    def threshold_alert(rule: str, severity: str, expr: str, for_: str | None = None) -> dict:
        alert = {"alert": _name(rule), "expr": expr,
                 "labels": {"severity": str(severity), "scaledeck_rule": rule},
                 "annotations": {"summary": rules.RULE_TITLES[rule]}}  # fmt: skip
        if for_:
            alert["for"] = for_
        return alert

    thresholds = [
        queue_at_max,
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


HEADER = (
    "# Generated by `python -m scaling.alerts.prometheus_rule` from\n"
    "# fleet/backends/prometheus/alert_promql.py and scaling/alerts/rules.py: the SLO burn-rate and\n"
    "# GPU/vLLM threshold alerts ScaleDeck evaluates, for Alertmanager. Each deployment's objective,\n"
    "# attainment target and autoscaler limits come from ScaleDeck's /metrics (the ServiceMonitor of\n"
    "# this component). Do not edit by hand.\n"
)


def render() -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=10_000)


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    sys.stdout.write(render())
