"""The facts behind "why this many replicas", read from the database (scaling/services/why.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from fleet.backends.base import DeploymentMetrics
from fleet.models import EventKind, ScalingEvent
from scaling.models import ScaleAction
from scaling.services.why import deployment_scaling_why
from tests.factories import (
    AutoscalerFactory,
    ClusterFactory,
    GpuNodeFactory,
    ModelDeploymentFactory,
    NamespaceQuotaFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 3, 2, tzinfo=UTC)


def world(*, desired=2, ready=2, **scaler):
    cluster = ClusterFactory(name="prod")
    deployment = ModelDeploymentFactory(cluster=cluster, name="llama", replicas_desired=desired, replicas_ready=ready)
    AutoscalerFactory(deployment=deployment, **{"min_replicas": 1, "max_replicas": 4, **scaler})
    node = GpuNodeFactory(cluster=cluster)  # 8 GPUs
    for i in range(ready):
        PodFactory(deployment=deployment, node=node, name=f"llama-{i}")
    return deployment


def why(deployment, **metrics):
    from fleet.selectors import deployment_queryset

    d = deployment_queryset().get(id=deployment.id)
    return deployment_scaling_why(deployment=d, metrics=DeploymentMetrics(**metrics), now=NOW)


def test_it_lets_the_autoscaler_bind_when_nothing_else_does():
    result, overrides = why(world(), queue_depth=8.0)
    assert (result.binding, result.implied_replicas, result.blockers, overrides) == ("autoscaler", 2, [], [])


def test_it_names_the_namespace_quota_that_blocks_a_pending_replica():
    deployment = world(desired=3, ready=2)
    NamespaceQuotaFactory(
        cluster=deployment.cluster,
        name="team-gpus",
        hard={"requests.nvidia.com/gpu": 2},
        used={"requests.nvidia.com/gpu": 2},
    )
    result, _ = why(deployment, queue_depth=14.0)
    assert result.binding == "quota"
    assert result.blockers == ["Namespace quota team-gpus has 0 nvidia.com/gpu left; one more replica needs 1."]


def test_it_counts_an_active_floor_override_and_returns_it_for_the_panel():
    deployment = world(desired=3, ready=3)
    action = ScaleAction.objects.create(
        actor_label="alice",
        actor_key="u:1",
        source="ui",
        cluster=deployment.cluster,
        namespace="llm",
        deployment=deployment,
        request={"replicas": 3, "mode": "floor"},
        mode="floor",
        reason="launch",
        status=ScaleAction.Status.SUCCEEDED,
        expires_at=NOW + timedelta(hours=1),
    )
    result, overrides = why(deployment, queue_depth=2.0)
    assert (result.binding, result.floor) == ("floor", 3)
    assert [o.action.id for o in overrides] == [action.id]


def test_it_says_a_paused_scaledobject_is_pinned():
    result, _ = why(world(paused=True, paused_replicas=2), queue_depth=30.0)
    assert (result.binding, result.pinned) == ("pin", 2)
    assert result.blockers == ["Autoscaling is paused at 2 replicas."]


def test_it_says_the_max_is_reached():
    result, _ = why(world(desired=4, ready=4), queue_depth=40.0)
    assert result.binding == "max"
    assert "Maximum reached: 4 of at most 4 replicas." in result.blockers


def test_it_holds_replicas_in_the_stabilization_window_after_a_rescale():
    deployment = world(desired=3, ready=3)
    ScalingEvent.objects.create(
        cluster=deployment.cluster,
        uid="e1",
        at=NOW - timedelta(minutes=1),
        kind=EventKind.DESIRED_CHANGED,
        object_kind="HorizontalPodAutoscaler",
        object_name="keda-hpa-llama",
        source="k8s",
        deployment=deployment,
    )
    result, _ = why(deployment, queue_depth=1.0)
    assert result.blockers == ["Stabilization window: the autoscaler keeps 3 replicas until 03:06 UTC."]
