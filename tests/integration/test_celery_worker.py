"""A real Celery worker on a real Redis broker runs the sync end to end."""

import time

import pytest
from django.utils import timezone

from fleet.models import Cluster, GpuNode, ModelDeployment
from fleet.tasks import sync_all_clusters, sync_cluster
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world

pytestmark = pytest.mark.redis


def wait_for(predicate, timeout: float, what: str, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout} s; worker log:\n{log_path.read_text()[-4000:]}")


@pytest.fixture
def simulated_cluster(transactional_db):
    cluster = Cluster.objects.create(name="sim", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod"])
    DbWorldStore(cluster).replace(demo_world(seed=3, now=timezone.now(), warmup_hours=0.5), seed=3)
    return cluster


def test_it_syncs_a_cluster_through_a_real_worker(celery_worker_process, simulated_cluster, tmp_path):
    sync_cluster.delay(simulated_cluster.id)

    def synced():
        simulated_cluster.refresh_from_db()
        return simulated_cluster.last_sync_status != Cluster.SyncStatus.NEVER

    wait_for(synced, 60, "the sync", tmp_path / "worker.log")
    assert simulated_cluster.last_sync_status == Cluster.SyncStatus.OK, simulated_cluster.last_sync_error
    assert GpuNode.objects.filter(cluster=simulated_cluster).count() >= 10
    assert ModelDeployment.objects.filter(cluster=simulated_cluster).count() >= 4


def test_it_fans_out_one_sync_per_cluster_from_the_beat_task(celery_worker_process, simulated_cluster, tmp_path):
    broken = Cluster.objects.create(
        name="broken", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(tmp_path / "missing-kubeconfig")
    )

    sync_all_clusters.delay()

    def both_tried():
        return Cluster.objects.filter(last_sync_at__isnull=False).count() == 2

    wait_for(both_tried, 60, "both syncs", tmp_path / "worker.log")
    broken.refresh_from_db()
    simulated_cluster.refresh_from_db()
    assert simulated_cluster.last_sync_status == Cluster.SyncStatus.OK
    assert broken.last_sync_status == Cluster.SyncStatus.FAILED
    assert "kubeconfig" in broken.last_sync_error
