"""GET /api/v1/findings/: the doctor over the inventory, every planted mistake and nothing on a
clean deployment; ?kind=; dismissing with a reason hides a finding and is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from fleet.models import Pod, ScalingEvent
from mig.doctor import KINDS
from mig.models import FindingDismissal
from tests.factories import (
    AutoscalerFactory,
    ClusterFactory,
    GpuNodeFactory,
    ModelDeploymentFactory,
    NodePoolFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(fake_metrics):
    """A clean deployment, and one deployment per mistake, on two A100 nodes with room to spare."""
    cluster = ClusterFactory(name="prod")
    pool = NodePoolFactory(cluster=cluster, name="a100")
    busy = NodePoolFactory(cluster=cluster, name="a100-karpenter", consolidation_policy="WhenEmptyOrUnderutilized")
    full = NodePoolFactory(cluster=cluster, name="a100-full")
    nodes = [GpuNodeFactory(cluster=cluster, node_pool=pool, name=f"a100-{i}") for i in range(2)]
    karpenter_node = GpuNodeFactory(cluster=cluster, node_pool=busy, name="a100-k")
    full_node = GpuNodeFactory(
        cluster=cluster,
        node_pool=full,
        name="a100-full-0",
        allocatable={"nvidia.com/gpu": 1},
        capacity={"nvidia.com/gpu": 1},
        gpu_count=1,
    )

    def make(name, *, node=nodes[0], **fields):
        deployment = ModelDeploymentFactory(cluster=cluster, name=name, **fields)
        PodFactory(deployment=deployment, node=node)
        return deployment

    made = {"clean": make("clean")}
    made["cpu_hpa_target"] = make("cpu-hpa")
    AutoscalerFactory(deployment=made["cpu_hpa_target"], kind="hpa", metric="cpu utilization 80%")
    made["liveness_delay_short"] = make("liveness", liveness_initial_delay_seconds=60)
    made["termination_grace_short"] = make("grace", termination_grace_seconds=30)
    made["max_unavailable"] = make("rollout", max_unavailable="1", replicas_desired=6)
    made["no_surge_headroom"] = make("surge", node=full_node)
    made["gpu_memory_overrequest"] = make("small", model="Qwen/Qwen2.5-1.5B-Instruct", gpu_memory_utilization=0.95)
    made["hpa_and_scaledobject"] = make("two-scalers")
    AutoscalerFactory(deployment=made["hpa_and_scaledobject"], kind="scaledobject", name="two-scalers")
    AutoscalerFactory(deployment=made["hpa_and_scaledobject"], kind="hpa", name="two-scalers-hpa")
    made["missing_gpu_toleration"] = make("untolerated")
    PodFactory(
        deployment=made["missing_gpu_toleration"],
        node=None,
        phase="Pending",
        ready=False,
        started_at=None,
        waiting_reason="waiting for a node",
    )
    made["consolidation_on_serving_pool"] = make("consolidated", node=karpenter_node)
    made["tp_without_anti_affinity"] = make("llama-70b", gpu_per_replica=2, tensor_parallel=2, replicas_desired=2)
    PodFactory(deployment=made["tp_without_anti_affinity"], node=nodes[0])
    assert Pod.objects.count() == 13
    return made


def kinds_by_deployment(body) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in body["results"]:
        found.setdefault(row["deployment_name"], set()).add(row["kind"])
    return found


def test_it_finds_every_planted_mistake_and_nothing_on_the_clean_one(api_as, fleet):
    response = api_as(Role.VIEWER).get("/api/v1/findings/")

    assert response.status_code == 200
    found = kinds_by_deployment(response.json())
    assert "clean" not in found
    for kind in KINDS:
        assert found.get(fleet[kind].name) == {kind}, (kind, found)
    row = response.json()["results"][0]
    assert set(row) == {
        "id",
        "cluster",
        "namespace",
        "deployment",
        "deployment_name",
        "kind",
        "severity",
        "message",
        "evidence",
    }


def test_it_filters_by_kind_and_refuses_an_unknown_kind(api_as, fleet):
    viewer = api_as(Role.VIEWER)
    rows = viewer.get("/api/v1/findings/?kind=max_unavailable").json()["results"]
    assert [(r["deployment_name"], r["kind"]) for r in rows] == [("rollout", "max_unavailable")]
    refused = viewer.get("/api/v1/findings/?kind=cpu")
    assert refused.status_code == 400 and "cpu is not one of" in str(refused.json())


def test_a_dismissed_finding_is_hidden_and_audited(api_as, fleet):
    deployment = fleet["max_unavailable"]
    url = f"/api/v1/findings/{deployment.id}:max_unavailable/dismiss/"
    assert api_as(Role.VIEWER).post(url, {"reason": "batch job"}, format="json").status_code == 403
    assert api_as(Role.OPERATOR).post(url, {"reason": "  "}, format="json").status_code == 400

    response = api_as(Role.OPERATOR).post(url, {"reason": "a batch model, rollouts may drop it"}, format="json")

    assert response.status_code == 201
    dismissal = FindingDismissal.objects.get()
    assert (dismissal.kind, dismissal.reason) == ("max_unavailable", "a batch model, rollouts may drop it")
    assert dismissal.actor_label.startswith("bot:")
    assert "rollout" not in kinds_by_deployment(api_as(Role.VIEWER).get("/api/v1/findings/").json())
    hidden = api_as(Role.VIEWER).get("/api/v1/findings/?dismissed=true").json()["results"]
    assert [(r["deployment_name"], r["dismissed"]["reason"]) for r in hidden] == [
        ("rollout", "a batch model, rollouts may drop it")
    ]
    again = api_as(Role.OPERATOR).post(url, {"reason": "twice"}, format="json")
    assert again.status_code == 409
    audited = api_as(Role.ADMIN).get("/api/v1/audit/?kind=finding").json()["results"]
    assert [(r["kind"], r["reason"], r["after"]) for r in audited] == [
        ("finding", "a batch model, rollouts may drop it", {"dismissed": True, "kind": "max_unavailable"})
    ]
    assert audited[0]["object"].endswith(f"/{deployment.namespace}/rollout max_unavailable")


def test_the_query_count_does_not_grow_with_the_fleet(api_as, fleet):
    viewer = api_as(Role.VIEWER)
    with CaptureQueriesContext(connection) as few:
        viewer.get("/api/v1/findings/")
    for i in range(5):
        ModelDeploymentFactory(cluster=fleet["clean"].cluster, name=f"more-{i}", termination_grace_seconds=30)
    with CaptureQueriesContext(connection) as more:
        viewer.get("/api/v1/findings/")
    assert len(more) <= len(few)


def test_the_liveness_check_uses_the_measured_load_time(api_as, fake_metrics):
    deployment = ModelDeploymentFactory(name="slow-loader", liveness_initial_delay_seconds=300)
    PodFactory(deployment=deployment)
    start = timezone.now() - timedelta(hours=1)
    for i, (kind, seconds) in enumerate(
        [("pod_created", 0), ("pod_scheduled", 5), ("container_started", 20), ("pod_ready", 270)]
    ):
        ScalingEvent.objects.create(
            cluster=deployment.cluster,
            uid=f"e{i}",
            at=start + timedelta(seconds=seconds),
            kind=kind,
            namespace="llm",
            object_kind="Pod",
            object_name="slow-loader-1",
            source="pod",
            deployment=deployment,
        )

    rows = api_as(Role.VIEWER).get("/api/v1/findings/?kind=liveness_delay_short").json()["results"]

    assert [r["deployment_name"] for r in rows] == ["slow-loader"]
    assert rows[0]["evidence"] == {
        "liveness_initial_delay_seconds": 300,
        "cold_start_seconds": 250,
        "cold_start_measured": True,
    }
    assert "under twice the measured cold start of 250 s" in rows[0]["message"]
