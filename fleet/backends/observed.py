"""Backends that report to ScaleDeck's own metrics.

The Prometheus backend knows nothing of Cluster rows (it is built from their settings); the
registry builds this subclass instead, so every batch of queries to a cluster's Prometheus
(a page's tiles, a chart, the cost accrual's token counts) is timed and its failures counted
under the cluster's name, in whichever process ran it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from core import metrics
from fleet.backends.prometheus.backend import PrometheusMetricsBackend


class ObservedPrometheusBackend(PrometheusMetricsBackend):
    def __init__(self, *, cluster_name: str, **kwargs):
        super().__init__(**kwargs)
        self.cluster_name = cluster_name

    def _run(self, jobs: Mapping[str, Callable[[float], Any]]) -> dict[str, Any]:
        if not jobs:
            return super()._run(jobs)
        started = time.monotonic()
        ok = False
        try:
            result = super()._run(jobs)
            ok = True
            return result
        finally:
            metrics.prometheus_query_observed(cluster=self.cluster_name, seconds=time.monotonic() - started, ok=ok)
