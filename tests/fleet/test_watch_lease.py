"""One watcher per cluster: the lease on the cluster row, takeover, and the beat standing aside."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import Cluster, Pod
from fleet.tasks import sync_cluster
from fleet.watch import lease, watcher
from fleet.watch.lease import cluster_is_watched, watch_lease_hold, watch_lease_release
from tests.factories import ClusterFactory
from tests.fakekube import objects as o


@pytest.mark.django_db
def test_it_gives_the_lease_to_one_watcher_at_a_time():
    cluster = ClusterFactory(watch_holder="", watch_lease_until=None)
    now = timezone.now()
    assert watch_lease_hold(cluster_id=cluster.id, holder="a", now=now)
    assert not watch_lease_hold(cluster_id=cluster.id, holder="b", now=now + timedelta(seconds=5))
    assert watch_lease_hold(cluster_id=cluster.id, holder="a", now=now + timedelta(seconds=5))
    cluster.refresh_from_db()
    assert cluster.watch_holder == "a"
    assert cluster_is_watched(cluster, now + timedelta(seconds=10))


@pytest.mark.django_db
def test_it_lets_a_standby_take_an_expired_lease_within_30_seconds():
    cluster = ClusterFactory(watch_holder="", watch_lease_until=None)
    now = timezone.now()
    assert watch_lease_hold(cluster_id=cluster.id, holder="dead", now=now)
    # The holder dies right after renewing: a standby polling at its pace gets the lease in time.
    takeover_at = now + timedelta(seconds=lease.LEASE_SECONDS + 0.001)
    assert watch_lease_hold(cluster_id=cluster.id, holder="standby", now=takeover_at)
    assert lease.LEASE_SECONDS + lease.STANDBY_POLL_SECONDS <= 30
    assert lease.RENEW_SECONDS * 3 <= lease.LEASE_SECONDS  # two missed renewals do not lose it


@pytest.mark.django_db
def test_it_releases_only_its_own_lease():
    cluster = ClusterFactory(watch_holder="", watch_lease_until=None)
    watch_lease_hold(cluster_id=cluster.id, holder="a", now=timezone.now())
    watch_lease_release(cluster_id=cluster.id, holder="b")
    assert Cluster.objects.get(id=cluster.id).watch_holder == "a"
    watch_lease_release(cluster_id=cluster.id, holder="a")
    assert not cluster_is_watched(Cluster.objects.get(id=cluster.id), timezone.now())


@pytest.mark.django_db
def test_it_marks_the_cluster_fresh_or_failing_when_renewing():
    cluster = ClusterFactory(watch_holder="", watch_lease_until=None, last_sync_status=Cluster.SyncStatus.NEVER)
    now = timezone.now()
    watch_lease_hold(cluster_id=cluster.id, holder="a", now=now)
    assert Cluster.objects.get(id=cluster.id).last_sync_status == Cluster.SyncStatus.NEVER  # still listing
    watch_lease_hold(cluster_id=cluster.id, holder="a", now=now, synced=True)
    assert Cluster.objects.get(id=cluster.id).last_sync_ok_at == now
    watch_lease_hold(cluster_id=cluster.id, holder="a", now=now, synced=True, error="cannot reach the API")
    cluster.refresh_from_db()
    assert (cluster.last_sync_status, cluster.last_sync_error) == (Cluster.SyncStatus.FAILED, "cannot reach the API")


@pytest.mark.django_db
def test_the_beat_leaves_a_watched_cluster_to_its_watcher(tmp_path):
    # Its kubeconfig does not exist: a full sync would fail and say so on the row.
    cluster = ClusterFactory(kubeconfig_path=str(tmp_path / "missing"), watch_holder="", watch_lease_until=None)
    watch_lease_hold(cluster_id=cluster.id, holder="watcher-1", now=timezone.now(), synced=True)
    assert "kept current by its watcher (watcher-1)" in sync_cluster(cluster.id)
    assert Cluster.objects.get(id=cluster.id).last_sync_status == Cluster.SyncStatus.OK

    Cluster.objects.filter(id=cluster.id).update(watch_lease_until=timezone.now() - timedelta(seconds=1))
    assert "sync failed" in sync_cluster(cluster.id)
    assert Cluster.objects.get(id=cluster.id).last_sync_status == Cluster.SyncStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_standby_watcher_takes_over_when_the_holder_dies(fake_kube, fake_kubeconfig, monkeypatch):
    fake_kube.load(o.realistic_cluster())
    cluster = ClusterFactory(kubeconfig_path=str(fake_kubeconfig), namespaces=[], watch_holder="")
    # A watcher held the lease and died: it renewed last a lease that runs out in a second.
    Cluster.objects.filter(id=cluster.id).update(
        watch_holder="dead:1", watch_lease_until=timezone.now() + timedelta(seconds=1)
    )
    monkeypatch.setattr(watcher, "STANDBY_POLL_SECONDS", 0.1)
    with standby_watching(cluster, "standby:2") as said:
        assert Cluster.objects.get(id=cluster.id).watch_holder == "standby:2"
        assert said[0] == f"{cluster.name}: watching (lease held by standby:2)"
    # Stopping gives the lease back: the beat syncs the cluster again.
    assert not cluster_is_watched(Cluster.objects.get(id=cluster.id), timezone.now())


@contextlib.contextmanager
def standby_watching(cluster: Cluster, holder: str):
    """A standby `cluster_watch_run` in a thread, once it has taken over (the cluster's pods are
    written); yields what it said, and stops it on leaving."""
    stop = threading.Event()
    said: list[str] = []
    standby = threading.Thread(
        target=watcher.cluster_watch_run,
        kwargs={"cluster": cluster, "holder": holder, "stop": stop, "say": said.append},
    )
    standby.start()
    try:
        deadline = time.monotonic() + 60  # generous for a loaded machine; a passing run is quick
        while not Pod.objects.filter(cluster=cluster).exists():
            assert time.monotonic() < deadline, f"the standby did not take over: {said}"
            time.sleep(0.1)
        yield said
    finally:
        stop.set()
        standby.join(timeout=15)
