"""What alert evaluation judges, whichever backend read it: plain values per deployment and per
node over fixed windows (`MetricsBackend.alert_signals`). Prometheus reads them with one batch
of queries (prometheus/alert_signals.py), a simulated cluster from its world's per-minute history
(simulated/alert_signals.py); the rules that judge them live in scaling/alerts/rules.py."""

from __future__ import annotations

from dataclasses import dataclass, field

# Burn-rate windows (seconds) and the SLO window: the SRE workbook's multiwindow pairs.
BURN_WINDOWS_SECONDS = (300, 1800, 3600, 21600)
SLO_WINDOW_SECONDS = 30 * 86400
QUEUE_WINDOW_SECONDS = 600
GPU_UTIL_WINDOW_SECONDS = 900
ERROR_RATE_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class DeploymentSignals:
    """Per window (seconds), the share (0-1) of its minutes with requests whose p95 TTFT was over
    the deployment's objective (no entry: no minute with requests); request and error rates, the
    fullest KV cache (0-1) and the queue that stayed for 10 minutes (requests per pod)."""

    slow_minute_share: dict[int, float] = field(default_factory=dict)
    # The clock hour so far (Prometheus only): minutes with requests, and the slow ones.
    hour_minutes: float | None = None
    hour_slow_minutes: float | None = None
    requests_per_second: float | None = None
    errors_per_second: float | None = None
    kv_cache_max: float | None = None
    queue_floor: float | None = None


@dataclass(frozen=True)
class NodeSignals:
    model_name: str = ""
    gpu_util_floor: float | None = None  # 0-100, lowest over 15 min of the busiest whole GPU
    fb_used_fraction: float | None = None  # 0-1
    temperature_c: float | None = None
    power_watts: float | None = None
    power_over_limit_watts: float | None = None  # only where the limit is exported
    mem_copy_util: float | None = None  # 0-100


@dataclass(frozen=True)
class AlertSignals:
    deployments: dict[tuple[str, str], DeploymentSignals]
    nodes: dict[str, NodeSignals]
    queries: int = 0
