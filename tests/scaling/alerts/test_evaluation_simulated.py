"""Alert evaluation on a simulated cluster: the world's per-minute history is judged by the same
rules as Prometheus's series, so the demo pages, resolves and shows budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fleet.models import Cluster, ModelDeployment
from fleet.sync import cluster_sync
from fleet.world_store import DbWorldStore
from scaling.alerts.evaluation import alerts_evaluate
from scaling.alerts.models import Alert, ClusterEvaluation, SloTarget
from simulator import demo_world

NOON = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim(db):
    cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED,
                                     namespaces=["llm-prod", "team-search"])  # fmt: skip
    with time_machine.travel(NOON, tick=False):
        DbWorldStore(cluster).replace(demo_world(seed=3, now=NOON, warmup_hours=1.5), seed=3)
        assert cluster_sync(cluster=cluster).ok
    return cluster


def test_a_simulated_cluster_pages_on_its_slow_minutes_and_resolves(sim):
    # A 1 ms objective no minute meets, and a 600 s one every minute meets.
    strict = ModelDeployment.objects.get(cluster=sim, name="llama-3-8b")
    loose = ModelDeployment.objects.get(cluster=sim, name="mistral-7b")
    ModelDeployment.objects.filter(id=strict.id).update(ttft_slo_seconds=0.001)
    ModelDeployment.objects.filter(id=loose.id).update(ttft_slo_seconds=600.0)

    with time_machine.travel(NOON + timedelta(seconds=30), tick=False):
        result = alerts_evaluate()

    evaluation = ClusterEvaluation.objects.get(cluster=sim)
    assert (evaluation.status, result.unknown_clusters) == ("ok", [])
    assert set(Alert.objects.filter(rule="slo_burn_page").values_list("deployment__name", flat=True)) == {"llama-3-8b"}
    budgets = {t.deployment_id: t for t in SloTarget.objects.all()}
    assert (budgets[strict.id].attained, budgets[strict.id].burn_rate_1h) == (0.0, pytest.approx(100.0))
    assert (budgets[loose.id].attained, budgets[loose.id].burn_rate_1h) == (1.0, 0.0)

    ModelDeployment.objects.filter(id=strict.id).update(ttft_slo_seconds=600.0)
    with time_machine.travel(NOON + timedelta(seconds=90), tick=False):
        alerts_evaluate()
    assert Alert.objects.get(rule="slo_burn_page").state == "resolved"


def test_a_simulated_cluster_without_a_world_is_unknown_not_resolved(db):
    cluster = Cluster.objects.create(name="empty", backend=Cluster.Backend.SIMULATED)
    alerts_evaluate()
    evaluation = ClusterEvaluation.objects.get(cluster=cluster)
    assert evaluation.status == "unknown"
    assert "has no world" in evaluation.reason
