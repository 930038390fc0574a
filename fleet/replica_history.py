"""A deployment's desired and ready replicas over time, from ScaleDeck's own records.

Charts read replicas over time from kube-state-metrics when the cluster's Prometheus has it; a
cluster without it still gets a true replicas line from what the sync saw: one `ReplicaChange`
row each time a deployment's desired or ready count changed. The value at any moment is that
of the latest change at or before it; before the first change it is unknown (a gap).

Written after each successful sync by comparing every deployment with its last stored change,
so it needs no hook inside the sync and serves any way the rows are kept up to date. Bounded:
rows older than REPLICA_HISTORY_KEEP are pruned when new ones are written, except each
deployment's last change before that horizon (it still holds the value at the horizon). A
sync where nothing changed writes nothing; a flapping deployment costs at most one row per
sync for the kept period.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, Subquery

from fleet.backends.base import Series
from fleet.models import Cluster, ModelDeployment, ReplicaChange

REPLICA_HISTORY_KEEP = timedelta(days=2)  # the longest chart range (24 h), and a day to spare


def replica_changes_record(*, cluster: Cluster, at: datetime) -> int:
    """Store the desired/ready counts of the cluster's deployments that differ from their last
    stored change (or have none yet), as changes at `at`; prune what is past the horizon.

    Run after every successful sync (or watch batch): one SELECT when nothing changed, plus one
    INSERT and one DELETE when something did, whatever the number of deployments.
    """
    latest = ReplicaChange.objects.filter(deployment_id=OuterRef("pk")).order_by("-at", "-id")
    current = (
        ModelDeployment.objects.alive()
        .filter(cluster=cluster)
        .annotate(last_desired=Subquery(latest.values("desired")[:1]), last_ready=Subquery(latest.values("ready")[:1]))
        .values_list("pk", "replicas_desired", "replicas_ready", "last_desired", "last_ready")
    )
    rows = [
        ReplicaChange(deployment_id=pk, at=at, desired=desired, ready=ready)
        for pk, desired, ready, last_desired, last_ready in current
        if (desired, ready) != (last_desired, last_ready)
    ]
    if not rows:
        return 0
    ReplicaChange.objects.bulk_create(rows, batch_size=1000)
    horizon = at - REPLICA_HISTORY_KEEP
    later_before_horizon = ReplicaChange.objects.filter(
        deployment_id=OuterRef("deployment_id"), at__gt=OuterRef("at"), at__lte=horizon
    )
    ReplicaChange.objects.filter(deployment__cluster=cluster, at__lt=horizon).filter(
        Exists(later_before_horizon)
    ).delete()
    return len(rows)


def replica_series(deployment: ModelDeployment, timestamps: Sequence[datetime]) -> tuple[Series, Series]:
    """(desired, ready) at each timestamp, from the stored changes; None before the first one.

    One query: the changes inside the range plus the last one before it.
    """
    if not timestamps:
        return Series("replicas_desired", "replicas", (), ()), Series("replicas_ready", "replicas", (), ())
    first, last = timestamps[0], timestamps[-1]
    last_before = (
        ReplicaChange.objects.filter(deployment_id=deployment.pk, at__lt=first).order_by("-at", "-id").values("at")[:1]
    )
    changes = list(
        ReplicaChange.objects.filter(deployment_id=deployment.pk, at__lte=last)
        .filter(Q(at__gte=first) | Q(at=Subquery(last_before)))
        .order_by("at", "id")
        .values_list("at", "desired", "ready")
    )
    times = [at for at, _, _ in changes]
    desired, ready = [], []
    for t in timestamps:
        i = bisect.bisect_right(times, t) - 1
        desired.append(float(changes[i][1]) if i >= 0 else None)
        ready.append(float(changes[i][2]) if i >= 0 else None)
    stamps = tuple(timestamps)
    return (
        Series("replicas_desired", "replicas", stamps, tuple(desired)),
        Series("replicas_ready", "replicas", stamps, tuple(ready)),
    )
