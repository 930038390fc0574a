"""Alert rules as pure functions: signals in, findings out. No ORM, no clock, no I/O.

SLO. A deployment's objective is "p95 TTFT within `objective` seconds" and its attainment
target (default 0.99) the share of minutes that must meet it over 30 days; the error budget is
the other 1 % of minutes (432 of 43,200). A minute counts when it served requests; it is bad
when its p95 was over the objective (read from vLLM's TTFT histogram in Prometheus, or the
simulated world's per-minute p95: fleet/backends/prometheus/alert_signals.py). Burn rate = share of bad
minutes / budget share: 1x spends the budget in exactly 30 days. Multiwindow alerts as in the
SRE workbook: page when both the 1 h and the 5 min windows burn at 14.4x or more (2 % of the
budget in an hour), ticket when both 6 h and 30 min burn at 6x. The short window makes the
alert stop soon after recovery (a minute is the grain: 5 good minutes in a row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import models

from fleet.backends.signals import SLO_WINDOW_SECONDS, DeploymentSignals, NodeSignals


class Severity(models.TextChoices):
    PAGE = "page", "page"
    TICKET = "ticket", "ticket"
    INFO = "info", "info"


@dataclass(frozen=True)
class BurnAlert:
    rule: str
    severity: str
    long_seconds: int
    short_seconds: int
    factor: float


BURN_ALERTS = (
    BurnAlert("slo_burn_page", Severity.PAGE, 3600, 300, 14.4),
    BurnAlert("slo_burn_ticket", Severity.TICKET, 21600, 1800, 6.0),
)

DEFAULT_ATTAINMENT = 0.99
GPU_UTIL_PERCENT = 90.0
FB_USED_FRACTION = 0.95
MEM_COPY_PERCENT = 85.0
KV_CACHE_FRACTION = 0.90
ERROR_RATE_FRACTION = 0.01
DEFAULT_TEMPERATURE_LIMIT_C = 83.0  # A100's slowdown guidance; other models below
# Sustained-operation temperature and board power limits by GPU model (NVIDIA data sheets).
TEMPERATURE_LIMIT_C = {"A100": 83.0, "H100": 85.0, "H200": 85.0, "L40S": 87.0, "L4": 80.0, "A10G": 83.0}
# DCGM's modelName spells them e.g. "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe".
POWER_LIMIT_W = {"A100-SXM": 400.0, "A100-PCIE": 300.0, "A100": 400.0, "H100 PCIE": 350.0, "H100 NVL": 400.0,
                 "H100": 700.0, "H200": 700.0, "L40S": 350.0, "L4": 72.0, "A10G": 150.0}  # fmt: skip

RULE_TITLES = {
    "slo_burn_page": "TTFT error budget burning fast",
    "slo_burn_ticket": "TTFT error budget burning",
    "kv_cache_full": "KV cache over 90 %",
    "error_rate_high": "request errors over 1 %",
    "queue_at_max": "queue above target at max replicas for 10 min",
    "gpu_util_sustained": "GPU utilisation over 90 % for 15 min",
    "fb_nearly_full": "GPU memory over 95 % used",
    "gpu_too_hot": "GPU temperature over its limit",
    "power_over_limit": "GPU power above its limit",
    "mem_copy_high": "memory-copy utilisation over 85 %",
}


@dataclass(frozen=True)
class Finding:
    """A rule breached now, by one deployment (`deployment_id`) or one node (`node_name`)."""

    rule: str
    severity: str
    summary: str
    deployment_id: int | None = None
    node_name: str = ""


def burn_rate(slow_minute_share: float | None, attainment: float) -> float | None:
    """How fast the budget burns: 1.0 spends it in exactly the 30 days."""
    return None if slow_minute_share is None else slow_minute_share / (1.0 - attainment)


def attained(signals: DeploymentSignals) -> float | None:
    """Share (0-1) of the 30-day window's minutes with requests whose p95 was within the objective."""
    slow = signals.slow_minute_share.get(SLO_WINDOW_SECONDS)
    return None if slow is None else 1.0 - slow


def budget_remaining(signals: DeploymentSignals, attainment: float) -> float | None:
    """Fraction of the 30-day error budget left (negative when overspent); None without traffic."""
    rate = burn_rate(signals.slow_minute_share.get(SLO_WINDOW_SECONDS), attainment)
    return None if rate is None else 1.0 - rate


def queue_target(autoscaler_metric: str) -> float | None:
    """The queue depth an autoscaler scales at, from its metric text (`... num_requests_waiting ... > 5`)."""
    if "num_requests_waiting" not in autoscaler_metric:
        return None
    match = re.search(r">\s*([0-9]+(?:\.[0-9]+)?)", autoscaler_metric)
    return float(match.group(1)) if match else None


def autoscaler_limits(autoscalers) -> tuple[int | None, float | None]:
    """(max replicas, queue target) of a deployment's autoscalers (HPA/KEDA objects): the highest
    max, and the first queue-depth target found; None where there is none."""
    max_replicas = max((a.max_replicas for a in autoscalers), default=None)
    target = next((t for a in autoscalers if (t := queue_target(a.metric)) is not None), None)
    return max_replicas, target


def deployment_findings(
    *, deployment_id: int, signals: DeploymentSignals, objective: float, attainment: float,
    at_max_replicas: bool = False, queue_target_value: float | None = None,
) -> list[Finding]:  # fmt: skip
    found = []
    for alert in BURN_ALERTS:
        long = burn_rate(signals.slow_minute_share.get(alert.long_seconds), attainment)
        short = burn_rate(signals.slow_minute_share.get(alert.short_seconds), attainment)
        if long is not None and short is not None and long >= alert.factor and short >= alert.factor:
            found.append(Finding(
                alert.rule, alert.severity, deployment_id=deployment_id,
                summary=(f"p95 TTFT over {objective:g} s burns the error budget at {long:.1f}x over "
                         f"{alert.long_seconds // 60} min and {short:.1f}x over {alert.short_seconds // 60} min "
                         f"(alert at {alert.factor:g}x)"),
            ))  # fmt: skip
            break  # a page covers the ticket
    if signals.kv_cache_max is not None and signals.kv_cache_max > KV_CACHE_FRACTION:
        found.append(Finding("kv_cache_full", Severity.TICKET, deployment_id=deployment_id,
                             summary=f"KV cache {signals.kv_cache_max:.0%} full (over 90 %)"))  # fmt: skip
    if signals.requests_per_second and signals.errors_per_second is not None:
        share = signals.errors_per_second / signals.requests_per_second
        if share > ERROR_RATE_FRACTION:
            found.append(Finding("error_rate_high", Severity.PAGE, deployment_id=deployment_id,
                                 summary=f"{share:.1%} of requests failed over 5 min (over 1 %)"))  # fmt: skip
    if (at_max_replicas and queue_target_value is not None and signals.queue_floor is not None
            and signals.queue_floor > queue_target_value):  # fmt: skip
        found.append(Finding("queue_at_max", Severity.PAGE, deployment_id=deployment_id,
                             summary=(f"queue stayed over {signals.queue_floor:.1f} requests per pod for 10 min "
                                      f"(target {queue_target_value:g}) at max replicas")))  # fmt: skip
    return found


def _limit_for(model_name: str, table: dict[str, float]) -> float | None:
    name = model_name.upper()
    for key in sorted(table, key=len, reverse=True):  # "A100-SXM" before "A100"
        if key.upper() in name:
            return table[key]
    return None


def node_findings(*, node_name: str, signals: NodeSignals) -> list[Finding]:
    found = []

    def add(rule: str, severity: str, summary: str) -> None:
        found.append(Finding(rule, severity, summary=summary, node_name=node_name))

    if signals.gpu_util_floor is not None and signals.gpu_util_floor > GPU_UTIL_PERCENT:
        add("gpu_util_sustained", Severity.INFO, f"a GPU stayed over {signals.gpu_util_floor:.0f} % busy for 15 min")
    if signals.fb_used_fraction is not None and signals.fb_used_fraction > FB_USED_FRACTION:
        add("fb_nearly_full", Severity.TICKET, f"GPU memory {signals.fb_used_fraction:.0%} used (over 95 %)")
    temp_limit = _limit_for(signals.model_name, TEMPERATURE_LIMIT_C) or DEFAULT_TEMPERATURE_LIMIT_C
    if signals.temperature_c is not None and signals.temperature_c > temp_limit:
        add("gpu_too_hot", Severity.PAGE, f"GPU at {signals.temperature_c:.0f} C (limit {temp_limit:g} C)")
    over = signals.power_over_limit_watts
    if over is None and signals.power_watts is not None:
        limit = _limit_for(signals.model_name, POWER_LIMIT_W)
        over = None if limit is None else signals.power_watts - limit
    if over is not None and over > 0:
        add("power_over_limit", Severity.TICKET, f"GPU power {over:.0f} W above its limit")
    if signals.mem_copy_util is not None and signals.mem_copy_util > MEM_COPY_PERCENT:
        add("mem_copy_high", Severity.INFO, f"memory-copy utilisation {signals.mem_copy_util:.0f} % (over 85 %)")
    return found
