"""Celery front doors for cost accrual. Tasks take ids and own only the retry policy.

Accrual is costing's own periodic job, not a step of the sync: each cluster is billed up to its
last good sync (`services.cost_accrue_observed`), so the sync never waits for the Prometheus
queries that accrual makes (token counters, GPU utilization), and a slow Prometheus delays only
the bill of its own cluster.
"""

from __future__ import annotations

from celery import shared_task

from costing.services import cost_accrue_observed
from fleet.models import Cluster


@shared_task(acks_late=True, soft_time_limit=90, time_limit=120, ignore_result=True)
def accrue_cluster_cost(cluster_id: int) -> str:
    cluster = Cluster.objects.filter(id=cluster_id).first()
    if cluster is None:
        return f"cluster {cluster_id} no longer exists"
    # Safe to run twice or after a crash: each span is claimed once (services.cost_accrue).
    return f"{cluster.name}: {cost_accrue_observed(cluster=cluster)} cost samples written or extended"


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def accrue_all_clusters() -> int:
    """Beat's entry point: one accrual task per cluster, so one slow Prometheus delays no other cluster."""
    ids = list(Cluster.objects.values_list("id", flat=True))
    for cluster_id in ids:
        accrue_cluster_cost.delay(cluster_id)
    return len(ids)
