"""Exactly one watcher per cluster: a lease on the cluster's row.

A watcher holds the lease by writing its name and an expiry on the Cluster row, with one
conditional UPDATE that succeeds only if the lease is its own, free, or expired (the loser of
a race updates nothing and walks away). The holder renews every `RENEW_SECONDS`; a watcher that
dies stops renewing, and a standby, which tries every `STANDBY_POLL_SECONDS`, takes over once
`LEASE_SECONDS` have passed: within 30 s of the death. A watcher that stops cleanly releases the
lease, and the beat's full sync takes the cluster back at its next tick.

Where the watcher reaches its cluster in-cluster, it also holds a coordination.k8s.io Lease
(`scaledeck-watch-<cluster name>` in its pod's namespace), the way Kubernetes controllers elect
their leader, so `kubectl get lease` shows who watches; it must hold both, the Kubernetes one
first. The database lease stays the one the pages and the beat read (`cluster_is_watched`).

The renewal also says how fresh the cluster's data is (the same UPDATE, so a quiet watched
cluster costs one write per renewal and nothing else): while every informer is watching, the
data is as fresh as the renewal; while one fails, the cluster shows that failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from fleet.backends.base import WatchLease
from fleet.models import Cluster

LEASE_SECONDS = 20.0
RENEW_SECONDS = 6.0
STANDBY_POLL_SECONDS = 5.0
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def kube_lease_namespace() -> str:
    """The namespace of the Kubernetes Lease: the pod's own (from its ServiceAccount mount), else
    the SCALEDECK_WATCH_LEASE_NAMESPACE setting."""
    try:
        namespace = POD_NAMESPACE_FILE.read_text().strip()
    except OSError:
        namespace = ""
    return namespace or settings.SCALEDECK_WATCH_LEASE_NAMESPACE


def kube_lease_name(cluster: Cluster) -> str:
    """`scaledeck-watch-<cluster name>`, lowercased with "_" as "-" (an object name allows neither)."""
    return f"scaledeck-watch-{cluster.name.lower().replace('_', '-')}"


def cluster_lease_hold(
    *,
    cluster: Cluster,
    kube_lease: WatchLease | None,
    holder: str,
    now: datetime,
    synced: bool = False,
    error: str = "",
) -> bool:
    """Take or renew both leases a watcher of `cluster` needs: the Kubernetes Lease where it runs
    in-cluster (`kube_lease`, None elsewhere), then the database lease (`watch_lease_hold`).
    False when another watcher holds either. A failing Kubernetes API raises BackendError."""
    if kube_lease is not None and not kube_lease.lease_hold(
        name=kube_lease_name(cluster),
        namespace=kube_lease_namespace(),
        holder=holder,
        duration_seconds=int(LEASE_SECONDS),
        now=now,
    ):
        return False
    return watch_lease_hold(cluster_id=cluster.id, holder=holder, now=now, synced=synced, error=error)


def watch_lease_hold(*, cluster_id: int, holder: str, now: datetime, synced: bool = False, error: str = "") -> bool:
    """Take or renew the lease; False when another live watcher holds it. `synced`: the watcher
    has applied its first list and watches; `error`: why one of its informers fails, if one does."""
    fields: dict = {"watch_holder": holder, "watch_lease_until": now + timedelta(seconds=LEASE_SECONDS)}
    if error:
        fields.update(last_sync_at=now, last_sync_status=Cluster.SyncStatus.FAILED, last_sync_error=error[:500])
    elif synced:
        fields.update(last_sync_at=now, last_sync_ok_at=now, last_sync_status=Cluster.SyncStatus.OK, last_sync_error="")
    expired = Q(watch_lease_until__isnull=True) | Q(watch_lease_until__lt=now)
    free = Q(watch_holder=holder) | Q(watch_holder="") | expired
    return Cluster.objects.filter(free, id=cluster_id).update(**fields) == 1


def watch_lease_release(*, cluster_id: int, holder: str) -> None:
    """Give the lease up (only if it is still ours): the beat syncs the cluster again."""
    Cluster.objects.filter(id=cluster_id, watch_holder=holder).update(watch_holder="", watch_lease_until=None)


def cluster_is_watched(cluster: Cluster, now: datetime) -> bool:
    """A watcher holds this cluster's lease and renewed it in time."""
    return bool(cluster.watch_holder) and cluster.watch_lease_until is not None and cluster.watch_lease_until > now
