"""Exactly one watcher per cluster: a lease on the cluster's row.

A watcher holds the lease by writing its name and an expiry on the Cluster row, with one
conditional UPDATE that succeeds only if the lease is its own, free, or expired (the loser of
a race updates nothing and walks away). The holder renews every `RENEW_SECONDS`; a watcher that
dies stops renewing, and a standby, which tries every `STANDBY_POLL_SECONDS`, takes over once
`LEASE_SECONDS` have passed: within 30 s of the death. A watcher that stops cleanly releases the
lease, and the beat's full sync takes the cluster back at its next tick.

The renewal also says how fresh the cluster's data is (the same UPDATE, so a quiet watched
cluster costs one write per renewal and nothing else): while every informer is watching, the
data is as fresh as the renewal; while one fails, the cluster shows that failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from fleet.models import Cluster

LEASE_SECONDS = 20.0
RENEW_SECONDS = 6.0
STANDBY_POLL_SECONDS = 5.0


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
