from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.backends.base import BackendError
from fleet.models import Autoscaler, Cluster, Gpu, GpuNode, MigDevice, ModelDeployment, NamespaceQuota, Pod
from fleet.sync import cluster_sync
from tests.fleet.snapshots import StaticBackend, small_cluster, without_pod

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    return Cluster.objects.create(name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path="/x")


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]


def test_it_stores_nodes_gpus_mig_slices_deployments_and_pods(cluster):
    result = cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))

    assert result.ok, result.error
    assert GpuNode.objects.filter(cluster=cluster).count() == 2
    assert Gpu.objects.filter(node__cluster=cluster).count() == 16
    mig_node = GpuNode.objects.get(name="gpu-b")
    assert mig_node.mig_devices == {"3g.40gb": 16}
    assert MigDevice.objects.filter(gpu__node=mig_node).count() == 16
    assert set(MigDevice.objects.filter(gpu__node=mig_node).values_list("profile", flat=True)) == {"3g.40gb"}
    llama = ModelDeployment.objects.get(name="llama-70b")
    assert llama.gpu_per_replica == 4
    assert Autoscaler.objects.get(name="llama-70b").deployment == llama
    assert NamespaceQuota.objects.get(namespace="llm").hard == {"requests.nvidia.com/gpu": 16}
    cluster.refresh_from_db()
    assert cluster.last_sync_status == Cluster.SyncStatus.OK


def test_it_infers_which_pod_holds_each_gpu_and_slice(cluster):
    cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))

    llama_pod = Pod.objects.get(name="llama-70b-abc")
    job_pod = Pod.objects.get(name="batch-eval-xyz")
    assert Gpu.objects.filter(pod=llama_pod).count() == 4
    assert Gpu.objects.filter(pod=job_pod).count() == 1
    assert job_pod.deployment is None and job_pod.owner_kind == "Job"
    assert MigDevice.objects.filter(pod__deployment__name="mistral").count() == 2
    assert MigDevice.objects.filter(pod__isnull=True, gpu__node__name="gpu-b").count() == 14


def test_it_writes_nothing_when_nothing_changed(cluster):
    backend = StaticBackend(small_cluster())
    cluster_sync(cluster=cluster, backend=backend)

    with CaptureQueriesContext(connection) as ctx:
        result = cluster_sync(cluster=cluster, backend=backend)

    assert result.ok and not result.changed
    inventory_writes = [sql for sql in writes(ctx.captured_queries) if "fleet_cluster" not in sql.split("SET")[0]]
    assert inventory_writes == []
    assert len(writes(ctx.captured_queries)) == 1  # the cluster's sync status


def test_it_uses_a_bounded_number_of_statements(cluster):
    with CaptureQueriesContext(connection) as ctx:
        cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))
    assert len(ctx.captured_queries) < 30


def test_it_marks_gone_pods_gone_and_frees_their_slices(cluster):
    cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))

    result = cluster_sync(cluster=cluster, backend=StaticBackend(without_pod(small_cluster(), "mistral-2")))

    assert result.gone["pods"] == 1
    gone = Pod.objects.get(name="mistral-2")
    assert gone.gone_at is not None
    assert MigDevice.objects.filter(pod=gone).count() == 0
    assert Pod.objects.alive().filter(deployment__name="mistral").count() == 1


def test_it_revives_an_object_that_comes_back(cluster):
    cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))
    cluster_sync(cluster=cluster, backend=StaticBackend(without_pod(small_cluster(), "mistral-2")))

    cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))

    assert Pod.objects.get(name="mistral-2").gone_at is None


def test_it_keeps_the_last_good_state_when_the_backend_fails(cluster):
    cluster_sync(cluster=cluster, backend=StaticBackend(small_cluster()))

    result = cluster_sync(cluster=cluster, backend=StaticBackend(error=BackendError("credentials refused (401)")))

    assert not result.ok
    cluster.refresh_from_db()
    assert cluster.last_sync_status == Cluster.SyncStatus.FAILED
    assert cluster.last_sync_error == "credentials refused (401)"
    assert cluster.last_sync_ok_at is not None
    assert Pod.objects.alive().count() == 4


def test_it_records_a_changed_replica_count(cluster):
    snapshot = small_cluster()
    cluster_sync(cluster=cluster, backend=StaticBackend(snapshot))
    scaled = replace(
        snapshot,
        deployments=tuple(replace(d, replicas_desired=3) if d.name == "mistral" else d for d in snapshot.deployments),
    )

    result = cluster_sync(cluster=cluster, backend=StaticBackend(scaled))

    assert result.updated["deployments"] == 1
    assert ModelDeployment.objects.get(name="mistral").replicas_desired == 3


class WarningBackend(StaticBackend):
    def last_warnings(self):
        return ["pod llm/odd-1 skipped: spec.containers is not a list"]


def test_it_reports_what_the_backend_skipped(cluster):
    result = cluster_sync(cluster=cluster, backend=WarningBackend(small_cluster()))

    assert result.warnings == ["pod llm/odd-1 skipped: spec.containers is not a list"]
    assert result.summary().endswith("; 1 warning(s)")
