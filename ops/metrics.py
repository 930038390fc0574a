"""/metrics: every process's counters (`core.metrics`) and, on the web, the database's state (`ops.state`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import REGISTRY

from core.metrics import PROCESS_METRICS, multiprocess_mode
from ops.state import DatabaseState
from scaling.alerts.slo_metrics import SloObjectives


def registry(*, with_state: bool) -> CollectorRegistry:
    """What one scrape reads: every process's counters, and (on the web) the database's state."""
    if multiprocess_mode():
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
    else:  # one process (no folder configured): its own counters
        reg = REGISTRY if not with_state else _single_process_registry()
    if with_state:
        reg.register(DatabaseState())
        reg.register(SloObjectives())  # what deploy/'s PrometheusRule joins vLLM's series with
    return reg


def _single_process_registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    for collector in PROCESS_METRICS:
        reg.register(collector)
    return reg


def exposition(*, with_state: bool = True) -> bytes:
    return generate_latest(registry(with_state=with_state))
