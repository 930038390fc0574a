"""The layouts a plan offers come from the cluster's own mig-parted ConfigMap, read by a worker
through the Kubernetes API (the fake one, over HTTP); without it, from mig-parted's default config,
and the plan says which and why."""

from __future__ import annotations

import pytest

from accounts.models import Role
from fleet.backends.registry import cluster_backend
from fleet.mig import layout_names
from fleet.models import Cluster
from mig.layouts import mig_config_refresh
from mig.models import ClusterMigConfig
from mig.tasks import refresh_mig_configs
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, NodePoolFactory, PodFactory

pytestmark = pytest.mark.django_db
OWN_LAYOUTS = """version: v1
mig-configs:
  all-disabled:
    - devices: all
      mig-enabled: false
  team-halves:
    - devices: all
      mig-enabled: true
      mig-devices:
        "3g.40gb": 2
"""


def config_map(text: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "default-mig-parted-config", "namespace": "gpu-operator"},
        "data": {"config.yaml": text},
    }


@pytest.fixture
def cluster(fake_kube, fake_kubeconfig):
    """A Kubernetes cluster with a pool of two 8 x A100 80GB nodes serving four small replicas."""
    InstancePriceFactory()
    cluster = ClusterFactory(name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(fake_kubeconfig))
    pool = NodePoolFactory(cluster=cluster, name="a100")
    nodes = [GpuNodeFactory(cluster=cluster, node_pool=pool, name=f"a100-{i}") for i in range(2)]
    small = ModelDeploymentFactory(
        cluster=cluster, name="llama-8b", model="meta-llama/Llama-3.1-8B-Instruct", replicas_desired=4
    )
    for i in range(4):
        PodFactory(deployment=small, node=nodes[i % 2])
    return cluster


def plan(api_as):
    response = api_as(Role.OPERATOR).post("/api/v1/mig-plans/", {"cluster": "prod", "node_pool": "a100"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_plan_offers_the_layouts_the_cluster_s_operator_has(api_as, cluster, fake_kube, fake_metrics):
    fake_kube.load(config_map(OWN_LAYOUTS))

    record = mig_config_refresh(cluster=cluster, backend=cluster_backend(cluster))

    assert (record.problem, record.config_text) == ("", OWN_LAYOUTS) and record.read_at is not None
    body = plan(api_as)
    assert body["layouts_from"].startswith("ConfigMap gpu-operator/default-mig-parted-config, read ")
    targets = {n["to_config"] for n in body["nodes"] if not n["freed"]}
    assert targets == {"team-halves"}  # mig-parted's all-3g.40gb would do as well, but this cluster lacks it
    assert "all-3g.40gb" in layout_names()


def test_without_the_config_map_a_plan_says_it_offers_the_defaults(api_as, cluster, fake_metrics):
    record = mig_config_refresh(cluster=cluster, backend=cluster_backend(cluster))

    assert record.problem == "gpu-operator/default-mig-parted-config was not found" and not record.config_text
    body = plan(api_as)
    assert body["layouts_from"] == (
        "mig-parted's default config (bundled with ScaleDeck): the cluster's ConfigMap "
        "gpu-operator/default-mig-parted-config was not found"
    )
    assert {n["to_config"] for n in body["nodes"] if not n["freed"]} == {"all-3g.40gb"}


def test_a_broken_config_map_keeps_the_last_good_copy_and_says_what_is_wrong(cluster, fake_kube):
    fake_kube.load(config_map(OWN_LAYOUTS))
    mig_config_refresh(cluster=cluster, backend=cluster_backend(cluster))
    fake_kube.load(config_map("version: v1\nmig-configs:\n  bad: [{devices: all}]\n"))

    record = mig_config_refresh(cluster=cluster, backend=cluster_backend(cluster))

    assert record.problem == (
        "gpu-operator/default-mig-parted-config: mig-configs.bad[0].mig-enabled must be true or false"
    )
    assert record.config_text == OWN_LAYOUTS


def test_the_beat_task_reads_every_kubernetes_cluster_and_says_which_failed(cluster, fake_kube):
    ClusterFactory(name="demo", backend=Cluster.Backend.SIMULATED)  # nothing to read
    fake_kube.load(config_map(OWN_LAYOUTS))

    assert refresh_mig_configs() == "MIG layouts read for 1 of 1 clusters"
    assert ClusterMigConfig.objects.get().cluster == cluster
