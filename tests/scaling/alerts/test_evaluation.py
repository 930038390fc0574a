"""Evaluation without data: Prometheus down means unknown, never resolved."""

import socket

import pytest

from fleet.backends.prometheus.alert_signals import alert_queries
from scaling.alerts.evaluation import alerts_evaluate
from scaling.alerts.models import Alert, ClusterEvaluation
from tests.factories import ClusterFactory, ModelDeploymentFactory


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_it_turns_unknown_and_keeps_firing_alerts_when_prometheus_is_down():
    cluster = ClusterFactory(prometheus_url=f"http://127.0.0.1:{_closed_port()}", prometheus_timeout_seconds=1.0)
    deployment = ModelDeploymentFactory(cluster=cluster)
    alert = Alert.objects.create(cluster=cluster, rule="slo_burn_page", severity="page", deployment=deployment,
                                 fingerprint=f"slo_burn_page:d{deployment.id}", summary="burning")  # fmt: skip
    result = alerts_evaluate()
    assert result.unknown_clusters == [cluster.name]
    alert.refresh_from_db()
    assert alert.state == "firing"
    evaluation = ClusterEvaluation.objects.get(cluster=cluster)
    assert evaluation.status == "unknown"
    assert "refused the connection" in evaluation.reason
    first_unknown = evaluation.unknown_since
    alerts_evaluate()
    evaluation.refresh_from_db()
    assert evaluation.unknown_since == first_unknown  # unknown since the first failure, not the latest


@pytest.mark.django_db
def test_it_says_why_a_cluster_without_prometheus_is_not_evaluated():
    cluster = ClusterFactory(prometheus_url="")
    alerts_evaluate()
    evaluation = ClusterEvaluation.objects.get(cluster=cluster)
    assert (evaluation.status, evaluation.reason) == (
        "off",
        "no Prometheus configured for this cluster: alert rules are not evaluated",
    )


def test_it_asks_one_batch_of_queries_whatever_the_fleet_size():
    one = alert_queries(["llm"], namespace_label="namespace", pod_label="pod", objectives=[2.0])
    many = alert_queries([f"team-{i}" for i in range(500)], namespace_label="namespace", pod_label="pod",
                         objectives=[2.0] * 500)  # fmt: skip
    assert len(one) == len(many) == 13
    assert sorted(one) == sorted(many)
    # Four more (one per burn window) for each further distinct objective, not per deployment.
    two = alert_queries(["llm"], namespace_label="namespace", pod_label="pod", objectives=[2.0, 0.5, 2.0])
    assert len(two) == 17
    # Once the clock hour has a whole minute, its slow and counted minutes too (the 30-day budget).
    later = alert_queries(["llm"], namespace_label="namespace", pod_label="pod", objectives=[2.0],
                          hour_so_far_seconds=600)  # fmt: skip
    assert len(later) == 15
