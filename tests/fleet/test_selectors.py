import pytest
from django.utils import timezone

from fleet import selectors
from fleet.autoscalers import ReplicaOwnerKind, replica_owner
from fleet.backends.base import DeploymentMetrics
from tests.factories import (
    AutoscalerFactory,
    ClusterFactory,
    GpuFactory,
    GpuNodeFactory,
    MigDeviceFactory,
    ModelDeploymentFactory,
    NodePoolFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db

MANUAL = replica_owner("llama", [])


@pytest.mark.parametrize(
    ("ttft", "slo", "state"),
    [
        (None, 2.0, "unknown"),
        (0.5, 2.0, "ok"),
        (1.6, 2.0, "ok"),
        (1.61, 2.0, "near"),
        (2.0, 2.0, "near"),
        (2.01, 2.0, "breach"),
    ],
)
def test_it_grades_ttft_against_the_slo(ttft, slo, state):
    assert selectors.slo_state(ttft, slo) == state


def test_it_answers_who_owns_the_replicas_from_the_synced_rows():
    deployment = ModelDeploymentFactory(name="llama")
    keda = AutoscalerFactory(deployment=deployment, min_replicas=2, max_replicas=8, paused_replicas=3)
    AutoscalerFactory(
        deployment=deployment, kind=ReplicaOwnerKind.HPA, name="keda-hpa-llama", owned_by_scaledobject="llama"
    )
    AutoscalerFactory(deployment=deployment, kind=ReplicaOwnerKind.HPA, name="old", gone_at=timezone.now())

    owner = selectors.deployment_owner(selectors.deployment_queryset().get(pk=deployment.pk))

    assert (owner.kind, owner.name, owner.autoscaler) == (ReplicaOwnerKind.SCALEDOBJECT, "llama", keda.facts())
    assert owner.paused and owner.autoscaler.paused_replicas == 3 and owner.autoscaler.metric == keda.metric


def test_it_calls_two_independent_autoscalers_a_conflict():
    deployment = ModelDeploymentFactory(name="llama")
    hpa = AutoscalerFactory(deployment=deployment, kind=ReplicaOwnerKind.HPA, name="llama")
    keda = AutoscalerFactory(deployment=deployment, kind=ReplicaOwnerKind.SCALEDOBJECT, name="llama")

    owner = selectors.deployment_owner(selectors.deployment_queryset().get(pk=deployment.pk))

    assert owner.kind == ReplicaOwnerKind.CONFLICT and owner.conflicts == (keda.facts(), hpa.facts())


def test_it_prefetches_only_live_pods_and_autoscalers():
    deployment = ModelDeploymentFactory()
    PodFactory(deployment=deployment, name="live")
    PodFactory(deployment=deployment, name="gone", gone_at=timezone.now())
    AutoscalerFactory(deployment=deployment, gone_at=timezone.now())

    (row,) = selectors.deployment_queryset()

    assert [p.name for p in row.live_pods] == ["live"]
    assert row.live_autoscalers == []


def test_it_counts_gpus_in_use_with_mig_slices_as_their_share():
    cluster = ClusterFactory()
    deployment = ModelDeploymentFactory(cluster=cluster)
    whole = GpuNodeFactory(cluster=cluster)
    pod = PodFactory(deployment=deployment, node=whole)
    GpuFactory(node=whole, index=0, pod=pod)
    GpuFactory(node=whole, index=1)
    mig_node = GpuNodeFactory(cluster=cluster, mig=True)
    gpu = GpuFactory(node=mig_node, index=0, mig_enabled=True)
    MigDeviceFactory(gpu=gpu, slot=0, pod=PodFactory(deployment=deployment, node=mig_node))  # 3 of 7
    MigDeviceFactory(gpu=gpu, slot=1)
    gone = GpuNodeFactory(cluster=cluster, gone_at=timezone.now())
    GpuFactory(node=gone, index=0, pod=pod)
    elsewhere = GpuNodeFactory(cluster=ClusterFactory())
    GpuFactory(node=elsewhere, index=0)

    in_use, total = selectors.gpu_usage([cluster])

    assert total == 3
    assert in_use == pytest.approx(1 + 3 / 7)
    assert selectors.gpu_usage()[1] == 4


def test_it_totals_the_fleet_for_the_overview():
    cluster = ClusterFactory()
    slow = ModelDeploymentFactory(
        cluster=cluster, name="slow", ttft_slo_seconds=1.0, replicas_desired=3, replicas_ready=1
    )
    fast = ModelDeploymentFactory(cluster=cluster, name="fast", ttft_slo_seconds=4.0)
    quiet = ModelDeploymentFactory(cluster=cluster, name="quiet")
    rows = [
        selectors.DeploymentRow(slow, DeploymentMetrics(queue_depth=5, ttft_p95_seconds=1.5), MANUAL),
        selectors.DeploymentRow(fast, DeploymentMetrics(queue_depth=2, ttft_p95_seconds=3.0), MANUAL),
        selectors.DeploymentRow(quiet, DeploymentMetrics(unavailable_reason="down"), MANUAL),
    ]

    totals = selectors.fleet_totals(rows, [cluster])

    assert (totals.deployments, totals.replicas_ready, totals.replicas_desired) == (3, 3, 5)
    assert (totals.queue_depth, totals.queue_unknown) == (7, 1)
    # 1.5 s against 1 s is worse than 3 s against 4 s
    assert totals.worst_ttft.row.deployment == slow and totals.worst_ttft.ratio == 1.5


def test_it_reports_an_unknown_queue_as_unknown_not_zero():
    deployment = ModelDeploymentFactory()
    row = selectors.DeploymentRow(deployment, DeploymentMetrics(), MANUAL)

    totals = selectors.fleet_totals([row], [deployment.cluster])

    assert totals.queue_depth is None and totals.worst_ttft is None


def test_it_counts_deployments_per_metrics_problem():
    rows = [
        selectors.DeploymentRow(ModelDeploymentFactory(), DeploymentMetrics(unavailable_reason=reason), MANUAL)
        for reason in ["timeout", None, "timeout", "no pods"]
    ]

    assert selectors.unavailable_reasons(rows) == [("timeout", 2), ("no pods", 1)]


def test_it_offers_filter_choices_from_live_rows():
    cluster = ClusterFactory(name="prod")
    GpuNodeFactory(
        cluster=cluster, node_pool=NodePoolFactory(cluster=cluster, name="h100"), gpu_product="NVIDIA-H100-80GB-HBM3"
    )
    GpuNodeFactory(
        cluster=cluster,
        node_pool=NodePoolFactory(cluster=cluster, name="old", gone_at=timezone.now()),
        gpu_product="Tesla-V100",
        gone_at=timezone.now(),
    )

    choices = selectors.node_filter_choices()

    assert choices == {"cluster": ["prod"], "node_pool": ["h100"], "gpu_model": ["NVIDIA-H100-80GB-HBM3"]}
