"""Alert signals of a simulated cluster, from its world's per-minute history and GPU readings:
the same values `fleet.backends.prometheus.alert_signals` reads from Prometheus, so the same
rules judge a demo cluster and a real one.

* a minute is slow when its p95 TTFT (the simulator's per-minute p95) is over the deployment's
  objective; minutes without requests count neither way; the history holds 24 hours, so the
  30-day window is the last day;
* request and error rates are the last 5 minutes' means, the queue that stayed is the lowest
  per-replica queue of the last 10 minutes (None before 10 minutes of history), the KV cache is
  the deployment's current one;
* per node: memory used of each GPU's memory, temperature and power now, and the busiest whole
  GPU's lowest utilisation over 15 minutes, from the history of the deployment holding it (the
  simulator keeps no per-GPU history). Memory-copy utilisation is not simulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from fleet.backends.signals import (
    BURN_WINDOWS_SECONDS,
    ERROR_RATE_WINDOW_SECONDS,
    GPU_UTIL_WINDOW_SECONDS,
    QUEUE_WINDOW_SECONDS,
    SLO_WINDOW_SECONDS,
    AlertSignals,
    DeploymentSignals,
    NodeSignals,
)
from simulator import World
from simulator.mig import device_memory_mib


def _within(rows: list[dict], end: float, seconds: int) -> list[dict]:
    return [r for r in rows if end - seconds < r["at"] <= end]


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _deployment_signals(rows: list[dict], objective: float, end: float, kv_cache: float | None) -> DeploymentSignals:
    served = [r for r in rows if (r.get("requests_per_second") or 0) > 0 and r.get("ttft_p95_seconds") is not None]
    shares = {}
    for window in (*BURN_WINDOWS_SECONDS, SLO_WINDOW_SECONDS):
        minutes = _within(served, end, window)
        if minutes:
            shares[window] = sum(r["ttft_p95_seconds"] > objective for r in minutes) / len(minutes)
    recent = _within(rows, end, ERROR_RATE_WINDOW_SECONDS)
    queue_minutes = _within(rows, end, QUEUE_WINDOW_SECONDS)
    queue_floor = None
    if len(queue_minutes) >= QUEUE_WINDOW_SECONDS // 60:
        queue_floor = min((r.get("queue_depth") or 0.0) / max(1, r.get("replicas_ready") or 0) for r in queue_minutes)
    return DeploymentSignals(
        slow_minute_share=shares,
        requests_per_second=_mean([r.get("requests_per_second") for r in recent]),
        errors_per_second=_mean([r.get("errors_per_second") for r in recent]),
        kv_cache_max=kv_cache,
        queue_floor=queue_floor,
    )


def world_alert_signals(world: World, objectives: Mapping[tuple[str, str], float], at: datetime) -> AlertSignals:
    """Signals of the deployments of `objectives` ((namespace, name) -> TTFT objective, seconds)
    and of every Ready node, as of `at` (minutes after it are left out)."""
    end = min(at, world.now).timestamp()
    rows_of: dict[str, list[dict]] = {}
    deployments = {}
    for (namespace, name), objective in objectives.items():
        dep = world.deployments.get(f"{namespace}/{name}")
        if dep is None:
            continue
        rows = rows_of[dep.key] = world.history.rows(dep.key)
        kv_cache = dep.last.get("kv_cache_usage") if dep.ready_replicas > 0 else None
        deployments[(namespace, name)] = _deployment_signals(rows, objective, end, kv_cache)
    nodes: dict[str, dict] = {}
    for reading in world.gpu_readings():
        node = world.nodes[reading.node]
        product = world.pools[node.pool].gpu_product
        values = nodes.setdefault(reading.node, {"model_name": product})
        used = reading.memory_used_mib / max(1, device_memory_mib(product, reading.mig_profile))
        values["fb_used_fraction"] = max(values.get("fb_used_fraction", 0.0), used)
        for attr, value in (("temperature_c", reading.temperature_c), ("power_watts", reading.power_watts)):
            if value is not None:
                values[attr] = max(values.get(attr, value), value)
        if reading.mig_profile is None and reading.deployment is not None:
            if reading.deployment not in rows_of:
                rows_of[reading.deployment] = world.history.rows(reading.deployment)
            minutes = _within(rows_of[reading.deployment], end, GPU_UTIL_WINDOW_SECONDS)
            if len(minutes) >= GPU_UTIL_WINDOW_SECONDS // 60:
                floor = 100 * min(r.get("gpu_utilization") or 0.0 for r in minutes)
                values["gpu_util_floor"] = max(values.get("gpu_util_floor", floor), floor)
    return AlertSignals(deployments=deployments, nodes={k: NodeSignals(**v) for k, v in nodes.items()})
