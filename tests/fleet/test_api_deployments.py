from datetime import UTC, date, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from fleet.autoscalers import ReplicaOwnerKind
from fleet.backends.base import DeploymentMetrics
from tests.factories import (
    AutoscalerFactory,
    ClusterFactory,
    GpuNodeFactory,
    ModelDeploymentFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/deployments/"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def detail(deployment) -> str:
    return f"{URL}{deployment.id}/"


def test_it_answers_401_without_credentials(db):
    assert APIClient().get(URL).status_code == 401


def test_it_describes_a_deployment_with_metrics_and_cost(api, fake_metrics):
    from costing.models import InstancePrice

    InstancePrice.objects.create(
        instance_type="p4de.24xlarge",
        region="us-east-1",
        capacity_type="on-demand",
        usd_per_hour="40.96",
        gpu_count=8,
        source="test",
        effective_from=date(2025, 1, 1),
    )
    with time_machine.travel(NOW, tick=False):
        cluster = ClusterFactory(name="prod", last_sync_ok_at=NOW)
        deployment = ModelDeploymentFactory(
            cluster=cluster,
            namespace="llm",
            name="llama-70b",
            model="meta-llama/Llama-3.1-70B-Instruct",
            replicas_desired=3,
            replicas_ready=2,
            gpu_per_replica=4,
            ttft_slo_seconds=1.5,
        )
        AutoscalerFactory(deployment=deployment, min_replicas=2, max_replicas=6)
        node = GpuNodeFactory(cluster=cluster, instance_type="p4de.24xlarge")
        PodFactory(deployment=deployment, node=node, name="llama-70b-a")
        PodFactory(deployment=deployment, node=node, name="llama-70b-b")
        fake_metrics.metrics = {
            ("llm", "llama-70b"): DeploymentMetrics(
                queue_depth=14.0,
                running=40.0,
                ttft_p50_seconds=0.4,
                ttft_p95_seconds=1.8,
                ttft_p99_seconds=3.1,
                itl_p95_seconds=0.045,
                e2e_p95_seconds=12.5,
                error_rate=0.012,
                preemptions_per_second=0.5,
                generation_tokens_per_second=2400.0,
                gpu_utilization=0.91,
                kv_cache_usage=0.77,
                as_of=NOW,
            )
        }

        response = api.get(detail(deployment))

    assert response.status_code == 200
    assert response.json() == {
        "id": deployment.id,
        "cluster": "prod",
        "namespace": "llm",
        "name": "llama-70b",
        "model": "meta-llama/Llama-3.1-70B-Instruct",
        "replicas": {"desired": 3, "ready": 2},
        "autoscaler": {
            "kind": "keda",
            "name": "llama-70b",
            "min_replicas": 2,
            "max_replicas": 6,
            "metric": "vllm:num_requests_waiting > 5 per replica",
            "paused_replicas": None,
            "conflicts": [],
        },
        "gpu": {"resource": "nvidia.com/gpu", "per_replica": 4},
        "metrics": {
            "queue_depth": 14.0,
            "requests_running": 40.0,
            "ttft_p50_seconds": 0.4,
            "ttft_p95_seconds": 1.8,
            "ttft_p99_seconds": 3.1,
            "itl_p95_seconds": 0.045,
            "e2e_p95_seconds": 12.5,
            "error_rate": 0.012,
            "preemptions_per_second": 0.5,
            "generation_tokens_per_second": 2400.0,
            "gpu_utilization": 0.91,
            "kv_cache_usage": 0.77,
            "as_of": "2026-11-27T12:00:00Z",
            "unavailable_reason": None,
        },
        "cost_per_hour_usd": "40.9600",  # 2 running pods x 4 GPUs x $5.12 per GPU-hour
        "slo_ttft_seconds": 1.5,
        "as_of": "2026-11-27T12:00:00Z",
        "cold_start": {
            "samples": 0,
            "p50_seconds": None,
            "p95_seconds": None,
            "max_seconds": None,
            "scheduling_p95_seconds": None,
            "pull_p95_seconds": None,
            "load_p95_seconds": None,
        },
        # 14 waiting at 5 per replica asks for 3; 1 of them waits: the node's 8 GPUs are taken.
        "scaling": {
            "metric": "vllm:num_requests_waiting > 5 per replica",
            "metric_value": 14.0,
            "target_value": 5.0,
            "implied_replicas": 3,
            "min_replicas": 2,
            "max_replicas": 6,
            "floor": None,
            "pinned": None,
            "binding": "capacity",
            "blockers": ["No free GPU now: one more replica waits for a new node from pool a100."],
        },
    }
    refs = fake_metrics.calls[0][1]
    assert refs[0].pods == ("llama-70b-a", "llama-70b-b")


def test_it_reports_unknown_metrics_as_null_with_the_reason(api):
    deployment = ModelDeploymentFactory(cluster=ClusterFactory(prometheus_url=""))

    metrics = api.get(detail(deployment)).json()["metrics"]

    assert metrics == {
        "queue_depth": None,
        "requests_running": None,
        "ttft_p50_seconds": None,
        "ttft_p95_seconds": None,
        "ttft_p99_seconds": None,
        "itl_p95_seconds": None,
        "e2e_p95_seconds": None,
        "error_rate": None,
        "preemptions_per_second": None,
        "generation_tokens_per_second": None,
        "gpu_utilization": None,
        "kv_cache_usage": None,
        "as_of": None,
        "unavailable_reason": "no Prometheus URL configured for this cluster",
    }


def test_it_reports_a_null_cost_when_the_nodes_have_no_price(api, fake_metrics):
    deployment = ModelDeploymentFactory()
    PodFactory(deployment=deployment, node=GpuNodeFactory(cluster=deployment.cluster, instance_type="x9.mystery"))

    assert api.get(detail(deployment)).json()["cost_per_hour_usd"] is None


@pytest.mark.parametrize(
    ("scalers", "expected"),
    [
        ([], {"kind": "none", "name": None, "min_replicas": None, "max_replicas": None, "conflicts": []}),
        (
            [("hpa", "gpu-hpa", "")],
            {"kind": "hpa", "name": "gpu-hpa", "min_replicas": 1, "max_replicas": 4, "conflicts": []},
        ),
        # KEDA's own HPA belongs to its ScaledObject: still one autoscaler
        (
            [("scaledobject", "llama", ""), ("hpa", "keda-hpa-llama", "llama")],
            {"kind": "keda", "name": "llama", "min_replicas": 1, "max_replicas": 4, "conflicts": []},
        ),
        (
            [("scaledobject", "llama", ""), ("hpa", "llama-cpu", "")],
            {
                "kind": "conflict",
                "name": None,
                "min_replicas": None,
                "max_replicas": None,
                "conflicts": [
                    {"kind": "keda", "name": "llama", "min_replicas": 1, "max_replicas": 4},
                    {"kind": "hpa", "name": "llama-cpu", "min_replicas": 1, "max_replicas": 4},
                ],
            },
        ),
    ],
)
def test_it_says_who_owns_the_replicas(api, fake_metrics, scalers, expected):
    deployment = ModelDeploymentFactory(name="llama")
    for kind, name, owner in scalers:
        AutoscalerFactory(deployment=deployment, kind=kind, name=name, owned_by_scaledobject=owner)

    autoscaler = api.get(detail(deployment)).json()["autoscaler"]

    assert {k: autoscaler[k] for k in expected} == expected


def test_it_ignores_an_autoscaler_gone_from_the_cluster(api, fake_metrics):
    deployment = ModelDeploymentFactory()
    AutoscalerFactory(deployment=deployment, kind=ReplicaOwnerKind.HPA, name="old", gone_at=NOW)

    assert api.get(detail(deployment)).json()["autoscaler"]["kind"] == "none"


def test_it_filters_by_cluster_namespace_and_name(api, fake_metrics):
    prod, staging = ClusterFactory(name="prod"), ClusterFactory(name="staging")
    ModelDeploymentFactory(cluster=prod, namespace="llm", name="llama")
    ModelDeploymentFactory(cluster=prod, namespace="search", name="embedder")
    ModelDeploymentFactory(cluster=staging, namespace="llm", name="llama")

    def names(**params):
        return [(d["cluster"], d["namespace"], d["name"]) for d in api.get(URL, params).json()["results"]]

    assert names(cluster="prod") == [("prod", "llm", "llama"), ("prod", "search", "embedder")]
    assert names(namespace="llm") == [("prod", "llm", "llama"), ("staging", "llm", "llama")]
    assert names(cluster="staging", name="llama") == [("staging", "llm", "llama")]
    assert names(cluster="nowhere") == []


def test_it_lists_only_live_deployments_unless_asked(api, fake_metrics):
    cluster = ClusterFactory()
    ModelDeploymentFactory(cluster=cluster, name="live")
    gone = ModelDeploymentFactory(cluster=cluster, name="gone", gone_at=NOW)

    assert [d["name"] for d in api.get(URL).json()["results"]] == ["live"]
    assert [d["name"] for d in api.get(URL, {"include_gone": "true"}).json()["results"]] == ["gone", "live"]
    assert api.get(detail(gone)).status_code == 404


def test_it_answers_400_naming_a_malformed_parameter(api):
    for params, name in [({"include_gone": "maybe"}, "include_gone"), ({"limit": "abc"}, "limit")]:
        response = api.get(URL, params)
        assert response.status_code == 400
        assert name in response.json()


def test_it_reads_metrics_once_per_cluster_for_a_whole_page(api, fake_metrics):
    for cluster in (ClusterFactory(name="a"), ClusterFactory(name="b")):
        for i in range(3):
            ModelDeploymentFactory(cluster=cluster, name=f"m{i}")

    api.get(URL)

    assert [len(refs) for call, refs in fake_metrics.calls] == [3, 3]


def test_it_runs_as_many_queries_for_50_deployments_as_for_5(api, fake_metrics, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def world(cluster_name: str, size: int):
        cluster = ClusterFactory(name=cluster_name)
        node = GpuNodeFactory(cluster=cluster)
        for i in range(size):
            deployment = ModelDeploymentFactory(cluster=cluster, name=f"m{i}")
            AutoscalerFactory(deployment=deployment)
            PodFactory(deployment=deployment, node=node)

    world("small", 5)
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(URL, {"cluster": "small"}).status_code == 200
    world("large", 50)

    with django_assert_max_num_queries(len(ctx.captured_queries)):
        body = api.get(URL, {"cluster": "large"}).json()
    assert body["count"] == 50


def test_it_says_why_this_many_replicas_only_on_the_detail(api, fake_metrics):
    deployment = ModelDeploymentFactory(name="llama-8b", replicas_desired=4)
    AutoscalerFactory(deployment=deployment, min_replicas=1, max_replicas=4)
    fake_metrics.metrics = {("llm", "llama-8b"): DeploymentMetrics(queue_depth=40.0)}

    row = api.get(URL).json()["results"][0]
    scaling = api.get(detail(deployment)).json()["scaling"]

    assert "scaling" not in row  # a list would pay the quota and capacity reads per row
    assert (scaling["binding"], scaling["implied_replicas"]) == ("max", 8)
    assert "Maximum reached: 4 of at most 4 replicas." in scaling["blockers"]
