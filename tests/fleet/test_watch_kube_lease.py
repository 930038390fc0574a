"""The coordination.k8s.io Lease of an in-cluster watcher, against the fake Kubernetes API over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.models import Cluster
from fleet.watch import lease, watcher
from fleet.watch.lease import cluster_is_watched, cluster_lease_hold, kube_lease_name, kube_lease_namespace
from tests.factories import ClusterFactory
from tests.fakekube import objects as o
from tests.fleet.test_watch_lease import standby_watching

NOW = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
NAME, NAMESPACE = "scaledeck-watch-prod", "scaledeck"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{NAME}"


@pytest.fixture
def holders(fake_kubeconfig):
    """Two watchers' connections to the same cluster."""
    first = KubernetesClusterBackend(kubeconfig_path=str(fake_kubeconfig), timeout_seconds=5)
    second = KubernetesClusterBackend(kubeconfig_path=str(fake_kubeconfig), timeout_seconds=5)
    yield first, second
    first.close()
    second.close()


def hold(backend, holder: str, at: datetime) -> bool:
    return backend.lease_hold(name=NAME, namespace=NAMESPACE, holder=holder, duration_seconds=20, now=at)


def test_one_holder_at_a_time_and_a_standby_takes_over_once_renewals_stop(holders, fake_kube):
    first, second = holders
    assert hold(first, "a", NOW)
    created = fake_kube.get("Lease", NAMESPACE, NAME)
    assert created["spec"] == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 20,
        "renewTime": "2026-12-02T13:00:00.000000Z",
        "acquireTime": "2026-12-02T13:00:00.000000Z",
        "leaseTransitions": 0,
    }
    # While "a" renews, "b" is refused, and the Lease stays as "a" wrote it.
    for seconds in (6, 12, 18):
        assert not hold(second, "b", NOW + timedelta(seconds=seconds))
        assert hold(first, "a", NOW + timedelta(seconds=seconds))
    renewed = fake_kube.get("Lease", NAMESPACE, NAME)["spec"]
    assert (renewed["holderIdentity"], renewed["renewTime"]) == ("a", "2026-12-02T13:00:18.000000Z")
    assert renewed["acquireTime"] == "2026-12-02T13:00:00.000000Z"
    # "a" dies after its renewal at 18 s: "b" is refused until 20 s have passed, then takes it.
    assert not hold(second, "b", NOW + timedelta(seconds=37))
    assert hold(second, "b", NOW + timedelta(seconds=38.5))
    taken = fake_kube.get("Lease", NAMESPACE, NAME)["spec"]
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("b", 1)
    assert not hold(first, "a", NOW + timedelta(seconds=39))  # a late renewal does not take it back
    methods = [r.method for r in fake_kube.requests if r.path.startswith(LEASE_PATH.rsplit("/", 1)[0])]
    assert methods[:2] == ["GET", "POST"] and "PUT" in methods and "PATCH" not in methods


def test_a_409_on_the_replace_counts_as_lost(holders, fake_kube):
    first, second = holders
    assert hold(first, "a", NOW)

    def another_writer_first(api, method, path):  # someone replaces it between our read and our write
        if method == "GET" and path == LEASE_PATH:
            api.reactors.remove(another_writer_first)
            api.touch("Lease", NAMESPACE, NAME)

    fake_kube.reactors.append(another_writer_first)
    assert not hold(second, "b", NOW + timedelta(seconds=30))
    assert fake_kube.get("Lease", NAMESPACE, NAME)["spec"]["holderIdentity"] == "a"
    assert [r.method for r in fake_kube.requests if r.path == LEASE_PATH][-1] == "PUT"


def test_a_409_on_the_create_counts_as_lost(holders, fake_kube):
    first, second = holders

    def another_watcher_creates(api, method, path):
        if method == "GET" and path == LEASE_PATH:
            api.reactors.remove(another_watcher_creates)
            assert hold(second, "b", NOW)

    fake_kube.reactors.append(another_watcher_creates)
    assert not hold(first, "a", NOW)
    assert fake_kube.get("Lease", NAMESPACE, NAME)["spec"]["holderIdentity"] == "b"


def test_a_refusal_is_described_like_any_other_call(holders, fake_kube):
    first, _ = holders
    fake_kube.fail(LEASE_PATH, 403)
    with pytest.raises(Exception, match=r"may not get leases.coordination.k8s.io scaledeck-watch-prod"):
        hold(first, "a", NOW)


def test_the_lease_lives_in_the_pods_namespace_or_the_setting(tmp_path, monkeypatch, settings):
    monkeypatch.setattr(lease, "POD_NAMESPACE_FILE", tmp_path / "namespace")
    settings.SCALEDECK_WATCH_LEASE_NAMESPACE = "ops"
    assert kube_lease_namespace() == "ops"
    (tmp_path / "namespace").write_text("scaledeck-prod\n")
    assert kube_lease_namespace() == "scaledeck-prod"
    assert kube_lease_name(Cluster(name="GPU_east")) == "scaledeck-watch-gpu-east"


@pytest.mark.django_db
def test_both_leases_are_needed(holders, fake_kube, monkeypatch, tmp_path):
    monkeypatch.setattr(lease, "POD_NAMESPACE_FILE", tmp_path / "namespace")
    (tmp_path / "namespace").write_text(NAMESPACE)
    first, second = holders
    cluster = ClusterFactory(name="prod", watch_holder="", watch_lease_until=None)
    now = timezone.now()
    assert cluster_lease_hold(cluster=cluster, kube_lease=first, holder="a", now=now)
    assert not cluster_lease_hold(cluster=cluster, kube_lease=second, holder="b", now=now)
    # The database lease free but the Kubernetes Lease held: still refused.
    lease.watch_lease_release(cluster_id=cluster.id, holder="a")
    assert not cluster_lease_hold(cluster=cluster, kube_lease=second, holder="b", now=now)
    assert not cluster_is_watched(Cluster.objects.get(id=cluster.id), now)


@pytest.mark.django_db(transaction=True)
def test_an_in_cluster_standby_takes_the_kubernetes_lease_of_a_dead_watcher(
    fake_kube, fake_kubeconfig, monkeypatch, tmp_path
):
    fake_kube.load(o.realistic_cluster())
    monkeypatch.setattr(lease, "POD_NAMESPACE_FILE", tmp_path / "namespace")
    (tmp_path / "namespace").write_text(NAMESPACE)
    cluster = ClusterFactory(name="prod", kubeconfig_path=str(fake_kubeconfig), namespaces=[], watch_holder="")
    # A watcher held the Lease and died: its last renewal runs out in a second.
    renewed = timezone.now() - timedelta(seconds=lease.LEASE_SECONDS - 1)
    dead = KubernetesClusterBackend(kubeconfig_path=str(fake_kubeconfig), timeout_seconds=5)
    assert dead.lease_hold(
        name=NAME, namespace=NAMESPACE, holder="dead:1", duration_seconds=int(lease.LEASE_SECONDS), now=renewed
    )
    dead.close()
    # In a pod the registry gives the in-cluster connection; here, the same backend on the fake API.
    monkeypatch.setattr(
        watcher,
        "cluster_watch_lease",
        lambda c: KubernetesClusterBackend(kubeconfig_path=c.kubeconfig_path, timeout_seconds=5),
    )
    monkeypatch.setattr(watcher, "STANDBY_POLL_SECONDS", 0.1)
    started = time.monotonic()
    with standby_watching(cluster, "standby:2"):
        assert time.monotonic() - started >= 0.5  # it waited for the dead watcher's Lease to run out
        assert fake_kube.get("Lease", NAMESPACE, NAME)["spec"]["holderIdentity"] == "standby:2"
        assert Cluster.objects.get(id=cluster.id).watch_holder == "standby:2"
