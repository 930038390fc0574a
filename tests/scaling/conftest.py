"""Fixtures for the scaling tests: a cluster behind the fake Kubernetes API, with matching rows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fleet.autoscalers import ReplicaOwnerKind
from fleet.models import Autoscaler, Cluster, ModelDeployment
from scaling.services import cluster as cluster_access
from tests.factories import (
    AutoscalerFactory,
    ClusterFactory,
    ModelDeploymentFactory,
    NamespaceQuotaFactory,
    UserFactory,
)
from tests.fakekube import objects as k
from tests.scaling.execution_helpers import ClusterCalls, RecordingWriter


@pytest.fixture(autouse=True)
def _eager_tasks(settings):
    """Tasks run inline (the root conftest also sets the Celery app itself)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _no_conflict_pauses(monkeypatch):
    from scaling.services import execution

    monkeypatch.setattr(execution, "CONFLICT_BACKOFF_SECONDS", (0.0, 0.0, 0.0))


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run the on_commit enqueue (and so the eager task) as a committed transaction would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@dataclass
class World:
    """The fake API server and the rows a sync of it would have stored."""

    kube: object
    cluster: Cluster

    def deployment(self, name="llama", *, replicas=2, gpus=1, namespace="llm", **fields) -> ModelDeployment:
        container = k.vllm_container(model=f"meta-llama/{name}", gpus=gpus)
        self.kube.load(k.deployment(namespace, name, containers=[container], replicas=replicas, ready=replicas))
        return ModelDeploymentFactory(
            cluster=self.cluster,
            namespace=namespace,
            name=name,
            replicas_desired=replicas,
            gpu_per_replica=gpus,
            **fields,
        )

    def keda(self, deployment, *, min_replicas=1, max_replicas=8, paused_replicas=None, with_hpa=True) -> Autoscaler:
        so = k.scaled_object(
            deployment.namespace,
            deployment.name,
            target=deployment.name,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            paused_replicas=None if paused_replicas is None else str(paused_replicas),
        )
        self.kube.load(so)
        if with_hpa:
            self.kube.load(k.keda_hpa(so))
            AutoscalerFactory(
                deployment=deployment,
                kind=ReplicaOwnerKind.HPA,
                name=f"keda-hpa-{deployment.name}",
                min_replicas=max(min_replicas, 1),
                max_replicas=max_replicas,
                owned_by_scaledobject=deployment.name,
            )
        return AutoscalerFactory(
            deployment=deployment,
            kind=ReplicaOwnerKind.SCALEDOBJECT,
            name=deployment.name,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            paused_replicas=paused_replicas,
        )

    def hpa(self, deployment, *, name=None, min_replicas=1, max_replicas=4) -> Autoscaler:
        name = name or deployment.name
        self.kube.load(
            k.hpa(
                deployment.namespace, name, target=deployment.name, min_replicas=min_replicas, max_replicas=max_replicas
            )
        )
        return AutoscalerFactory(
            deployment=deployment,
            kind=ReplicaOwnerKind.HPA,
            name=name,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
        )

    def quota(self, namespace="llm", name="gpu-quota", *, hard=16, used=4, key="requests.nvidia.com/gpu"):
        self.kube.load(k.resource_quota(namespace, name, hard={key: str(hard)}, used={key: str(used)}))
        return NamespaceQuotaFactory(
            cluster=self.cluster, namespace=namespace, name=name, hard={key: hard}, used={key: used}
        )

    # what the fake cluster holds now
    def so_spec(self, name="llama", namespace="llm") -> dict:
        return self.kube.get("ScaledObject", namespace, name)

    def patches(self) -> list:
        return [r for r in self.kube.requests if r.method in ("PATCH", "PUT", "POST", "DELETE")]


@pytest.fixture
def world(fake_kube, fake_kubeconfig, db) -> World:
    cluster = ClusterFactory(
        name="prod",
        backend=Cluster.Backend.KUBERNETES,
        kubeconfig_path=str(fake_kubeconfig),
        kube_context="fake",
        namespaces=["llm"],
    )
    return World(kube=fake_kube, cluster=cluster)


@pytest.fixture
def operator():
    return UserFactory(username="alice", role="operator")


@pytest.fixture
def admin():
    return UserFactory(username="root", role="admin")


@pytest.fixture
def viewer():
    return UserFactory(username="vera", role="viewer")


@pytest.fixture
def cluster_calls(monkeypatch) -> ClusterCalls:
    """Every call the scale-action code makes to the cluster, with the transaction depth it was made at."""
    calls = ClusterCalls()
    real = cluster_access.cluster_writer
    monkeypatch.setattr(cluster_access, "cluster_writer", lambda cluster: RecordingWriter(real(cluster), calls))
    return calls
