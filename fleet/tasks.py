"""Celery front doors for the sync. Tasks take ids and own only the retry policy."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from fleet.events import scaling_events_prune
from fleet.models import Cluster
from fleet.services import cluster_refresh, cluster_watched_refresh
from fleet.watch.lease import cluster_is_watched

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=90, time_limit=120, ignore_result=True)
def sync_cluster(cluster_id: int) -> str:
    cluster = Cluster.objects.filter(id=cluster_id).first()
    if cluster is None:
        return f"cluster {cluster_id} no longer exists"
    if cluster_is_watched(cluster, timezone.now()):
        return cluster_watched_refresh(cluster=cluster)
    # A failed sync is recorded on the Cluster row; the next beat tick is the retry.
    return cluster_refresh(cluster=cluster).summary()


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def sync_all_clusters() -> int:
    """Beat's entry point: fan out one sync task per cluster, so one slow cluster delays no other.
    (`sync_cluster` leaves a cluster whose watcher holds a fresh lease to that watcher.)"""
    ids = list(Cluster.objects.values_list("id", flat=True))
    for cluster_id in ids:
        sync_cluster.delay(cluster_id)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=300, time_limit=360)
def prune_scaling_events() -> int:
    """Beat, hourly: scaling events past their retention (one DELETE; safe to run twice)."""
    return scaling_events_prune(now=timezone.now())
