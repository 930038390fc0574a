"""What ScaleDeck knows about each deployment's SLO and autoscaler, as gauges on its /metrics.

Prometheus knows nothing ScaleDeck stores, so the PrometheusRule in deploy/ (prometheus_rule.py)
joins vLLM's series with these: each deployment's own TTFT objective and attainment target, and
for "queue above target at max replicas" the autoscaler's queue target, its max and the desired
replicas. Labels are `cluster`, `deployment_namespace` and `deployment` (not `namespace`, which
a ServiceMonitor's target label would rename). Two queries per scrape, however many deployments.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily

from fleet.models import ModelDeployment
from scaling.alerts.rules import DEFAULT_ATTAINMENT, autoscaler_limits

logger = logging.getLogger(__name__)

LABELS = ["cluster", "deployment_namespace", "deployment"]


class SloObjectives:
    """A prometheus-client collector (collect() yields metric families), registered beside the
    database state of ops/state.py; a database error there is reported by that collector."""

    def describe(self):
        return []  # computed at scrape time

    def collect(self):
        try:
            families = self._families()
        except DatabaseError as exc:  # scaledeck_database_up (ops/state.py) says so
            logger.warning("metrics: cannot read the SLO objectives: %s", type(exc).__name__)
            families = []
        yield from families

    def _families(self) -> list[GaugeMetricFamily]:
        objective = GaugeMetricFamily("scaledeck_slo_ttft_objective_seconds",
                                      "The deployment's p95 TTFT objective, seconds.", labels=LABELS)  # fmt: skip
        attainment = GaugeMetricFamily(
            "scaledeck_slo_attainment_target",
            "Share (0-1) of minutes whose p95 TTFT must be within the objective over 30 days.",
            labels=LABELS,
        )
        queue = GaugeMetricFamily("scaledeck_autoscaler_queue_target",
                                  "Requests waiting per pod the autoscaler scales at.", labels=LABELS)  # fmt: skip
        most = GaugeMetricFamily("scaledeck_autoscaler_max_replicas", "The autoscaler's maximum replicas.",
                                 labels=LABELS)  # fmt: skip
        desired = GaugeMetricFamily("scaledeck_deployment_replicas_desired",
                                    "Desired replicas as last synced.", labels=LABELS)  # fmt: skip
        deployments = (ModelDeployment.objects.alive().select_related("cluster", "slo_target")
                       .prefetch_related("autoscalers").order_by("cluster__name", "namespace", "name"))  # fmt: skip
        for d in deployments:
            labels = [d.cluster.name, d.namespace, d.name]
            objective.add_metric(labels, d.slo_seconds)
            target = getattr(d, "slo_target", None)
            attainment.add_metric(labels, target.attainment if target else DEFAULT_ATTAINMENT)
            desired.add_metric(labels, d.replicas_desired)
            max_replicas, queue_target = autoscaler_limits(d.autoscalers.all())
            if max_replicas is not None:
                most.add_metric(labels, max_replicas)
            if queue_target is not None:
                queue.add_metric(labels, queue_target)
        return [objective, attainment, queue, most, desired]
