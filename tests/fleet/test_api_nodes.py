from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import ClusterFactory, GpuNodeFactory, NodePoolFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/nodes/"


def test_it_answers_401_without_credentials(db):
    assert APIClient().get(URL).status_code == 401


def test_it_describes_a_whole_gpu_node_with_its_price(api):
    from costing.models import InstancePrice

    InstancePrice.objects.create(
        instance_type="p5.48xlarge",
        region="us-east-1",
        capacity_type="spot",
        usd_per_hour="39.20",
        gpu_count=8,
        source="test",
        effective_from=date(2025, 1, 1),
    )
    cluster = ClusterFactory(name="prod")
    node = GpuNodeFactory(
        cluster=cluster,
        name="gpu-h100-1",
        node_pool=NodePoolFactory(cluster=cluster, name="h100"),
        instance_type="p5.48xlarge",
        capacity_type="spot",
        gpu_product="NVIDIA-H100-80GB-HBM3",
    )

    response = api.get(f"{URL}{node.id}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": node.id,
        "name": "gpu-h100-1",
        "cluster": "prod",
        "node_pool": "h100",
        "instance_type": "p5.48xlarge",
        "capacity_type": "spot",
        "zone": "us-east-1a",
        "gpu_model": "NVIDIA-H100-80GB-HBM3",
        "gpu_count": 8,
        "mig": {"config": None, "devices": {}},
        "ready": True,
        "cordoned": False,
        "hourly_cost_usd": "39.2000",
    }


def test_it_counts_physical_gpus_on_a_mig_node_and_lists_its_slices(api):
    node = GpuNodeFactory(mig=True, node_pool=None)

    body = api.get(f"{URL}{node.id}/").json()

    assert node.capacity["nvidia.com/gpu"] == 0
    assert body["gpu_count"] == 8
    assert body["mig"] == {"config": "all-3g.40gb", "devices": {"3g.40gb": 16}}
    assert body["node_pool"] is None


def test_it_reports_a_null_price_for_an_unknown_instance_type(api):
    node = GpuNodeFactory(instance_type="x9.mystery")

    assert api.get(f"{URL}{node.id}/").json()["hourly_cost_usd"] is None


def test_it_filters_nodes_like_the_nodes_page(api):
    prod = ClusterFactory(name="prod")
    GpuNodeFactory(cluster=prod, name="a", capacity_type="spot", node_pool=NodePoolFactory(cluster=prod, name="x"))
    GpuNodeFactory(cluster=prod, name="b", ready=False, gpu_product="NVIDIA-L4")
    GpuNodeFactory(cluster=prod, name="c", mig=True)
    GpuNodeFactory(cluster=ClusterFactory(name="staging"), name="d")

    def names(**params):
        return [n["name"] for n in api.get(URL, params).json()["results"]]

    assert names(cluster="prod", capacity_type="spot") == ["a"]
    assert names(ready="false") == ["b"]
    assert names(gpu_model="NVIDIA-L4") == ["b"]
    assert names(node_pool="x") == ["a"]
    assert names(mig="yes") == ["c"]
    assert names(cluster="nowhere") == []


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"ready": "maybe"}, "ready"),
        ({"capacity_type": "cheap"}, "capacity_type"),
        ({"mig": "perhaps"}, "mig"),
        ({"limit": "abc"}, "limit"),
    ],
)
def test_it_answers_400_naming_a_malformed_filter(api, params, name):
    response = api.get(URL, params)

    assert response.status_code == 400
    assert list(response.json()) == [name]


def test_it_hides_nodes_gone_from_the_cluster(api):
    from django.utils import timezone

    GpuNodeFactory(name="gone", gone_at=timezone.now())

    assert api.get(URL).json()["count"] == 0


def test_it_runs_as_many_queries_for_50_nodes_as_for_5(api, django_assert_max_num_queries):
    def nodes(cluster_name: str, count: int):
        cluster = ClusterFactory(name=cluster_name)
        for i in range(count):
            GpuNodeFactory(cluster=cluster, node_pool=NodePoolFactory(cluster=cluster, name=f"p{i % 4}"))

    nodes("small", 5)
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(URL, {"cluster": "small"}).status_code == 200
    nodes("large", 50)

    with django_assert_max_num_queries(len(ctx.captured_queries)):
        assert api.get(URL, {"cluster": "large"}).json()["count"] == 50
