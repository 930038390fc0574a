"""ScaleDeck's /metrics carries what the PrometheusRule joins vLLM's series with: each
deployment's objective and attainment target, its autoscaler's queue target and max, and its
desired replicas."""

from __future__ import annotations

import pytest

from scaling.alerts.models import SloTarget
from tests.factories import AutoscalerFactory, ClusterFactory, ModelDeploymentFactory
from tests.ops.test_metrics import scrape, value


@pytest.mark.django_db
def test_it_exposes_each_deployments_own_objective_and_autoscaler_limits(client, settings):
    settings.SCALEDECK_DEFAULT_TTFT_SLO_SECONDS = 2.0
    cluster = ClusterFactory(name="prod")
    llama = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama", ttft_slo_seconds=1.0,
                                   replicas_desired=4)  # fmt: skip
    qwen = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="qwen", ttft_slo_seconds=None)
    SloTarget.objects.create(deployment=llama, attainment=0.995)
    AutoscalerFactory(deployment=llama, max_replicas=4, metric="vllm:num_requests_waiting > 5 per replica")
    AutoscalerFactory(deployment=qwen, max_replicas=8, metric="cpu > 80%")

    families = scrape(client)

    def gauge(name: str, deployment: str) -> float | None:
        labels = (("cluster", "prod"), ("deployment", deployment), ("deployment_namespace", "llm"))
        return families.get(name, {}).get((name, labels))

    assert gauge("scaledeck_slo_ttft_objective_seconds", "llama") == 1.0
    assert gauge("scaledeck_slo_ttft_objective_seconds", "qwen") == 2.0  # the default objective
    assert gauge("scaledeck_slo_attainment_target", "llama") == 0.995
    assert gauge("scaledeck_slo_attainment_target", "qwen") == 0.99
    assert gauge("scaledeck_autoscaler_queue_target", "llama") == 5.0
    assert gauge("scaledeck_autoscaler_queue_target", "qwen") is None  # not scaled on the queue
    assert (
        gauge("scaledeck_autoscaler_max_replicas", "llama"),
        gauge("scaledeck_autoscaler_max_replicas", "qwen"),
    ) == (4.0, 8.0)
    assert gauge("scaledeck_deployment_replicas_desired", "llama") == 4.0
    assert value(families, "scaledeck_database_up", "scaledeck_database_up") == 1
