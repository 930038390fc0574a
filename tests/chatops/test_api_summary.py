from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.services import api_token_create
from fleet.backends.base import DeploymentMetrics
from fleet.models import Cluster
from scaling.models import PrescaleRule, ScaleAction
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/summary/"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _override(deployment, *, replicas: int, minutes: int) -> ScaleAction:
    return ScaleAction.objects.create(
        actor_label="alice",
        actor_key="user:1",
        source="api",
        cluster=deployment.cluster,
        namespace=deployment.namespace,
        deployment=deployment,
        request={"replicas": replicas},
        mode="floor",
        reason="launch",
        status=ScaleAction.Status.SUCCEEDED,
        expires_at=NOW + timedelta(minutes=minutes),
    )


def _cluster_with_everything(name: str, fake_metrics) -> None:
    cluster = ClusterFactory(name=name)
    slow = ModelDeploymentFactory(cluster=cluster, name="slow", ttft_slo_seconds=2.0)
    fast = ModelDeploymentFactory(cluster=cluster, name="fast", ttft_slo_seconds=2.0)
    ModelDeploymentFactory(cluster=cluster, name="dark")
    node = GpuNodeFactory(cluster=cluster)
    PodFactory(deployment=slow, node=node, phase="Running")
    PodFactory(deployment=slow, node=None, phase="Pending", ready=False)
    _override(fast, replicas=4, minutes=90)
    PrescaleRule.objects.create(
        deployment=slow, cron="0 9 * * 1-5", timezone="UTC", min_replicas=3, duration_minutes=60
    )
    PrescaleRule.objects.create(
        deployment=fast, cron="30 12 * * *", timezone="UTC", min_replicas=2, duration_minutes=30
    )
    PrescaleRule.objects.create(
        deployment=fast, cron="0 13 * * *", timezone="UTC", min_replicas=2, duration_minutes=30, enabled=False
    )
    fake_metrics.metrics.update(
        {
            ("llm", "slow"): DeploymentMetrics(ttft_p95_seconds=3.5),
            ("llm", "fast"): DeploymentMetrics(ttft_p95_seconds=0.4),
        }
    )


def test_it_answers_401_without_credentials(db):
    assert APIClient().get(URL).status_code == 401


@time_machine.travel(NOW, tick=False)
def test_it_summarises_each_cluster_for_a_bot(api, fake_metrics):
    InstancePriceFactory()
    _cluster_with_everything("prod", fake_metrics)
    ClusterFactory(name="empty")

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["generated_at"] == "2026-11-27T12:00:00Z"
    empty, prod = body["clusters"]
    assert empty == {
        "cluster": "empty",
        "deployments": 0,
        "in_breach": [],
        "ttft_unknown": 0,
        "metrics_unavailable": "",
        "pending_pods": 0,
        "overrides": [],
        "next_firings": [],
        "spend_usd_per_hour": 0.0,
        "unpriced_nodes": 0,
    }
    assert prod["deployments"] == 3
    assert [(b["deployment"], b["ttft_p95_seconds"], b["objective_seconds"]) for b in prod["in_breach"]] == [
        ("llm/slow", 3.5, 2.0)
    ]
    assert prod["ttft_unknown"] == 1
    assert prod["metrics_unavailable"] == "no metrics reported for this deployment"  # llm/dark
    assert prod["pending_pods"] == 1
    assert [(o["deployment"], o["override"], o["by"], o["seconds_left"]) for o in prod["overrides"]] == [
        ("llm/fast", "floor 4", "alice", 5400)
    ]
    # the disabled rule is not listed; the weekday 09:00 firing is Monday's (27 Nov 2026 is a Friday)
    assert [(f["at"], f["deployment"]) for f in prod["next_firings"]] == [
        ("2026-11-27T12:30:00Z", "llm/fast"),
        ("2026-11-30T09:00:00Z", "llm/slow"),
    ]
    assert prod["spend_usd_per_hour"] == 27.447  # one p4de.24xlarge, whole instance
    assert prod["unpriced_nodes"] == 0


@time_machine.travel(NOW, tick=False)
def test_it_counts_unpriced_nodes_apart_from_the_spend(api):
    GpuNodeFactory(cluster=ClusterFactory(name="prod"), instance_type="x9.unknown")

    (prod,) = api.get(URL).json()["clusters"]

    assert prod["spend_usd_per_hour"] == 0.0 and prod["unpriced_nodes"] == 1


def test_it_narrows_to_one_cluster_by_name(api):
    ClusterFactory(name="prod")
    ClusterFactory(name="edge")

    assert [c["cluster"] for c in api.get(URL, {"name": "edge"}).json()["clusters"]] == ["edge"]


@time_machine.travel(NOW, tick=False)
def test_it_uses_the_same_number_of_queries_for_one_cluster_or_four(api, fake_metrics):
    InstancePriceFactory()
    _cluster_with_everything("c0", fake_metrics)
    api.get(URL)  # warm the session-independent caches (token lookup is per request anyway)
    with CaptureQueriesContext(connection) as one:
        assert api.get(URL).status_code == 200
    for i in range(1, 4):
        _cluster_with_everything(f"c{i}", fake_metrics)
    with CaptureQueriesContext(connection) as four:
        body = api.get(URL).json()

    assert len(body["clusters"]) == 4 and all(c["deployments"] == 3 for c in body["clusters"])
    assert len(four) == len(one)


@time_machine.travel(NOW, tick=False)
def test_a_token_scoped_to_namespaces_sees_only_their_deployments_clusters_and_spend(fake_metrics):
    InstancePriceFactory()
    _cluster_with_everything("prod", fake_metrics)
    team = ModelDeploymentFactory(cluster=Cluster.objects.get(name="prod"), namespace="team-search", name="search")
    PodFactory(deployment=team, node=None, phase="Pending", ready=False)
    ClusterFactory(name="edge")
    _, secret = api_token_create(
        user=UserFactory(role="viewer"), name="bot", role="viewer", namespaces=["team-search"], clusters=["prod"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    (prod,) = client.get(URL).json()["clusters"]

    assert prod["cluster"] == "prod" and prod["deployments"] == 1
    assert prod["pending_pods"] == 1 and prod["in_breach"] == [] and prod["overrides"] == []
    assert prod["next_firings"] == []
    assert prod["spend_usd_per_hour"] == 0.0  # its pod holds no GPU; the other teams' nodes are not its spend
