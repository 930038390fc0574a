"""The watcher against the fake Kubernetes API over HTTP: lists once, then watches; small batches."""

from __future__ import annotations

import copy
import time

import pytest
from django.db import DatabaseError

from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.models import Gpu, GpuNode, ModelDeployment, Pod, ReplicaChange
from fleet.sync import cluster_sync
from fleet.watch import watcher as watcher_module
from fleet.watch.watcher import ClusterWatcher
from tests.factories import ClusterFactory
from tests.fakekube import objects as o

pytestmark = pytest.mark.django_db(transaction=True)

# Kinds the realistic cluster serves; all eight are watched.
WATCHED_KINDS = 8


def list_calls(api) -> list:
    """The list requests (not watches) the fake API served."""
    return [r for r in api.requests if r.method == "GET" and "watch" not in r.query and not r.query.get("continue")]


def change(api, kind: str, namespace: str, name: str, edit) -> None:
    """Change an object as a controller would: edited, with a new resourceVersion."""
    obj = api.get(kind, namespace, name)
    edit(obj)
    del obj["metadata"]["resourceVersion"]
    api.load(obj)


def make_ready(pod: dict) -> None:
    pod["status"]["conditions"] = [c for c in pod["status"].get("conditions", []) if c["type"] != "Ready"]
    pod["status"]["conditions"].append({"type": "Ready", "status": "True"})


def run_until(watcher: ClusterWatcher, done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the watcher did not get there in time"
        watcher.step(timeout=0.1)


@pytest.fixture
def watched(fake_kube, fake_kubeconfig):
    fake_kube.load(o.realistic_cluster())
    fake_kube.watches.bookmark_seconds = 0.2
    cluster = ClusterFactory(name="watched", kubeconfig_path=str(fake_kubeconfig), namespaces=[])
    backend = KubernetesClusterBackend(kubeconfig_path=str(fake_kubeconfig), timeout_seconds=5)
    watcher = ClusterWatcher(
        cluster, backend=backend, quiet_seconds=0.05, max_wait_seconds=0.5, backoff_first_seconds=0.05
    )
    watcher.start()
    try:
        # Generous waits: a loaded CI machine is slow, and a passing run never waits them out.
        run_until(watcher, lambda: watcher.first_sync is not None, timeout=60)
        assert fake_kube.watches.wait_for_watches(WATCHED_KINDS, timeout=60)
        yield cluster, watcher
    finally:
        watcher.stop()
        backend.close()


def test_it_applies_the_first_lists_as_one_full_sync(watched, fake_kube):
    cluster, watcher = watched
    assert watcher.first_sync.ok
    assert len(list_calls(fake_kube)) == WATCHED_KINDS
    assert set(Pod.objects.filter(cluster=cluster).values_list("name", flat=True)) >= {
        "llama-3-70b-dc74b0cab8-46gjq",
        "mistral-7b-c937860dde-g7n95",
    }
    assert GpuNode.objects.filter(cluster=cluster).count() == 6


def test_it_writes_one_pod_turning_ready_in_a_small_transaction(watched, fake_kube):
    cluster, watcher = watched
    change(fake_kube, "Pod", "team-b", "mistral-7b-c937860dde-g7n95", make_ready)
    run_until(watcher, lambda: Pod.objects.get(cluster=cluster, name="mistral-7b-c937860dde-g7n95").ready)
    [batch] = watcher.batches
    assert (batch.changed, batch.result.updated["pods"], batch.writes) == (1, 1, 1)
    assert batch.statements <= 5


def test_it_follows_a_changing_cluster_through_a_dropped_connection_and_a_410(watched, fake_kube):
    cluster, watcher = watched
    listed = len(list_calls(fake_kube))

    # A pod turns Ready, a node goes NotReady, a new pod arrives, one leaves.
    change(fake_kube, "Pod", "team-b", "mistral-7b-c937860dde-g7n95", make_ready)
    change(
        fake_kube,
        "Node",
        "",
        "h100-b",
        lambda n: n["status"].update(conditions=[{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]),
    )
    newcomer = copy.deepcopy(fake_kube.get("Pod", "team-a", "llama-3-70b-dc74b0cab8-46gjq"))
    newcomer["metadata"]["name"] = "llama-3-70b-dc74b0cab8-new01"
    del newcomer["metadata"]["resourceVersion"]
    fake_kube.load(newcomer)
    fake_kube.delete("Pod", "research", "debug-gpu")
    run_until(watcher, lambda: Pod.objects.filter(name="llama-3-70b-dc74b0cab8-new01").exists())

    # The connections break; meanwhile a deployment scales and a pod leaves.
    fake_kube.watches.drop_connections()
    change(fake_kube, "Deployment", "team-a", "llama-3-70b", lambda d: d["spec"].update(replicas=5))
    fake_kube.delete("Pod", "team-a", "llama-3-70b-dc74b0cab8-new01")
    run_until(watcher, lambda: ModelDeployment.objects.get(cluster=cluster, name="llama-3-70b").replicas_desired == 5)
    assert len(list_calls(fake_kube)) == listed, "a broken connection is resumed, not listed again"
    # The replicas chart's history follows the watch as it follows a full sync.
    assert ReplicaChange.objects.filter(deployment__cluster=cluster, deployment__name="llama-3-70b", desired=5).exists()

    # The pods watch is told 410 Gone when it resumes: only pods are listed again.
    fake_kube.fail("/api/v1/pods", 410, query_contains="watch=", times=1)
    fake_kube.watches.drop_connections()
    change(fake_kube, "Pod", "team-b", "mistral-7b-c937860dde-g7n94", make_ready)
    run_until(watcher, lambda: Pod.objects.get(cluster=cluster, name="mistral-7b-c937860dde-g7n94").ready)
    relisted = list_calls(fake_kube)[listed:]
    assert [r.path for r in relisted] == ["/api/v1/pods"]

    watcher.stop()
    # The database matches the cluster: a full sync finds nothing to change.
    check = KubernetesClusterBackend(kubeconfig_path=cluster.kubeconfig_path, timeout_seconds=5)
    result = cluster_sync(cluster=cluster, backend=check)
    check.close()
    assert result.ok and not result.changed, result.summary()
    assert Pod.objects.get(cluster=cluster, name="llama-3-70b-dc74b0cab8-new01").gone_at is not None
    assert Pod.objects.get(cluster=cluster, name="debug-gpu").gone_at is not None
    assert not GpuNode.objects.get(cluster=cluster, name="h100-b").ready
    assert Gpu.objects.filter(node__cluster=cluster, pod__name="debug-gpu").count() == 0


def test_it_lists_again_when_its_history_is_compacted_away(watched, fake_kube):
    cluster, watcher = watched
    listed = len(list_calls(fake_kube))
    # The watches break and cannot come back for a while; meanwhile a deployment changes and
    # the history is compacted: resuming answers an ERROR event with 410 Gone.
    fake_kube.fail("/", 503, query_contains="watch=")
    fake_kube.watches.drop_connections()
    change(fake_kube, "Deployment", "team-b", "qwen", lambda d: d["spec"].update(replicas=3))
    fake_kube.watches.expire_history()
    fake_kube.reset_switches()
    run_until(watcher, lambda: ModelDeployment.objects.get(cluster=cluster, name="qwen").replicas_desired == 3)
    run_until(watcher, lambda: watcher.lists == 2 * WATCHED_KINDS)
    first, again = list_calls(fake_kube)[:listed], list_calls(fake_kube)[listed:]
    assert sorted(r.path for r in again) == sorted(r.path for r in first)


def test_a_batch_that_cannot_be_written_is_followed_by_a_full_apply(watched, fake_kube, monkeypatch):
    cluster, watcher = watched

    def database_gone(**kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(watcher_module, "changes_apply", database_gone)
    change(fake_kube, "Pod", "team-b", "mistral-7b-c937860dde-g7n95", make_ready)
    with pytest.raises(DatabaseError):
        for _ in range(100):
            watcher.step(timeout=0.1)
    monkeypatch.undo()
    # Nothing else happens in the cluster; the change still reaches the database.
    run_until(watcher, lambda: Pod.objects.get(cluster=cluster, name="mistral-7b-c937860dde-g7n95").ready)
    assert watcher.first_sync is not None


def test_it_moves_a_quiet_kinds_resource_version_forward_with_bookmarks(watched, fake_kube):
    _, watcher = watched
    change(fake_kube, "Pod", "team-b", "mistral-7b-c937860dde-g7n95", make_ready)
    latest = fake_kube.get("Pod", "team-b", "mistral-7b-c937860dde-g7n95")["metadata"]["resourceVersion"]
    nodes = next(i for i in watcher.informers if i.kind == "nodes")
    # No node changed, yet a resume after a break would start from here, not from the list's version.
    run_until(watcher, lambda: nodes.resource_version == latest)
