from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet import metrics
from fleet.backends.base import BackendError, DeploymentMetrics, GpuUtilization
from fleet.selectors import deployment_queryset
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory

NOW = datetime(2026, 11, 27, 12, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "step"), [(3600, 15), (6 * 3600, 120), (24 * 3600, 300), (60, 15), (7 * 86400, 3600)]
)
def test_it_fits_the_chart_step_to_the_range(seconds, step):
    assert metrics.step_for_range(seconds) == step
    assert seconds / step <= 300 or step % 3600 == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ("1h", 3600, None)), ("", ("1h", 3600, None)), ("6h", ("6h", 21600, None)), ("24h", ("24h", 86400, None))],
)
def test_it_parses_the_known_ranges(value, expected):
    assert metrics.parse_range(value) == expected


def test_it_falls_back_to_one_hour_on_an_unknown_range_and_says_so():
    key, seconds, problem = metrics.parse_range("1y")

    assert (key, seconds) == ("1h", 3600)
    assert problem == "unknown range '1y': showing 1h (choose 1h, 6h or 24h)"


@pytest.mark.django_db
def test_it_asks_each_cluster_once_with_the_live_pods_of_each_deployment(fake_metrics):
    a, b = ClusterFactory(name="a"), ClusterFactory(name="b")
    llama = ModelDeploymentFactory(cluster=a, name="llama")
    PodFactory(deployment=llama, name="llama-2")
    PodFactory(deployment=llama, name="llama-1")
    PodFactory(deployment=llama, name="llama-0", gone_at=NOW)
    mistral = ModelDeploymentFactory(cluster=a, name="mistral")
    other = ModelDeploymentFactory(cluster=b, name="llama")
    fake_metrics.metrics = {
        ("llm", "llama"): DeploymentMetrics(queue_depth=3),
        ("llm", "mistral"): DeploymentMetrics(queue_depth=0),
    }

    result = metrics.deployment_metrics([llama, mistral, other])

    assert result[llama.id].queue_depth == 3 and result[mistral.id].queue_depth == 0
    assert result[other.id].queue_depth == 3  # the fake answers by name in every cluster
    assert len(fake_metrics.calls) == 2
    first_call = fake_metrics.calls[0][1]
    assert [(r.name, r.pods) for r in first_call] == [("llama", ("llama-1", "llama-2")), ("mistral", ())]


@pytest.mark.django_db
def test_it_needs_no_query_when_pods_and_clusters_are_prefetched(fake_metrics):
    for i in range(3):
        PodFactory(deployment=ModelDeploymentFactory(name=f"m{i}"))
    rows = list(deployment_queryset())

    with CaptureQueriesContext(connection) as ctx:
        metrics.deployment_metrics(rows)

    assert len(ctx.captured_queries) == 0


@pytest.mark.django_db
def test_it_reads_pods_and_clusters_in_a_fixed_number_of_queries_otherwise(fake_metrics):
    for i in range(10):
        PodFactory(deployment=ModelDeploymentFactory(name=f"m{i}"))
    from fleet.models import ModelDeployment

    rows = list(ModelDeployment.objects.all())

    with CaptureQueriesContext(connection) as ctx:
        metrics.deployment_metrics(rows)

    assert len(ctx.captured_queries) == 2  # pods, clusters


@pytest.mark.django_db
def test_it_caches_answers_for_the_configured_seconds(fake_metrics, settings):
    settings.SCALEDECK_METRICS_CACHE_SECONDS = 10
    deployment = ModelDeploymentFactory(name="llama")
    fake_metrics.metrics = {("llm", "llama"): DeploymentMetrics(queue_depth=1)}

    with time_machine.travel(NOW, tick=False) as clock:
        metrics.deployment_metrics([deployment])
        fake_metrics.metrics = {("llm", "llama"): DeploymentMetrics(queue_depth=2)}
        cached = metrics.deployment_metrics([deployment])
        clock.shift(timedelta(seconds=11))
        fresh = metrics.deployment_metrics([deployment])

    assert cached[deployment.id].queue_depth == 1
    assert fresh[deployment.id].queue_depth == 2
    assert len(fake_metrics.calls) == 2


@pytest.mark.django_db
def test_it_turns_a_failing_backend_into_unknown_values_with_the_reason(fake_metrics):
    deployment = ModelDeploymentFactory()
    fake_metrics.error = BackendError("Prometheus at http://prom:9090 answered 503")

    result = metrics.deployment_metrics([deployment])

    assert result[deployment.id] == DeploymentMetrics(unavailable_reason="Prometheus at http://prom:9090 answered 503")


@pytest.mark.django_db
def test_it_never_raises_even_when_a_backend_has_a_bug(fake_metrics):
    deployment = ModelDeploymentFactory()
    fake_metrics.error = KeyError("le")

    result = metrics.deployment_metrics([deployment])

    assert result[deployment.id].unavailable_reason == "metrics backend error (KeyError)"
    assert result[deployment.id].queue_depth is None


@pytest.mark.django_db
def test_it_says_when_the_backend_has_nothing_for_a_deployment(fake_metrics):
    deployment = ModelDeploymentFactory()

    assert metrics.deployment_metrics([deployment])[deployment.id].unavailable_reason == metrics.NO_METRICS_REASON


@pytest.mark.django_db
def test_it_uses_the_cluster_backend_from_the_registry():
    deployment = ModelDeploymentFactory(cluster=ClusterFactory(backend="kubernetes", prometheus_url=""))

    result = metrics.deployment_metrics([deployment])

    assert result[deployment.id].unavailable_reason == "no Prometheus URL configured for this cluster"
    with pytest.raises(BackendError, match="no Prometheus URL configured"):
        metrics.deployment_series(deployment, 3600)


@pytest.mark.django_db
def test_it_asks_for_series_over_the_range_ending_at_a_whole_step(fake_metrics):
    deployment = ModelDeploymentFactory(name="llama")
    PodFactory(deployment=deployment, name="llama-0")

    metrics.deployment_series(deployment, 6 * 3600, now=NOW)
    metrics.deployment_series(deployment, 6 * 3600, now=NOW + timedelta(seconds=30))  # same step: cached

    assert len(fake_metrics.calls) == 1
    ref, start, end, step = fake_metrics.calls[0][1]
    assert (ref.namespace, ref.name) == (deployment.namespace, "llama")
    assert step == 120
    assert end == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=6)


@pytest.mark.django_db
def test_it_raises_only_backend_errors_from_series(fake_metrics):
    deployment = ModelDeploymentFactory()
    fake_metrics.error = ValueError("unexpected")

    with pytest.raises(BackendError, match=r"metrics backend error \(ValueError\)"):
        metrics.deployment_series(deployment, 3600, now=NOW)


@pytest.mark.django_db
def test_it_maps_gpu_readings_to_nodes_and_says_which_clusters_have_none(fake_metrics, monkeypatch):
    from fleet.backends.registry import UnavailableMetricsBackend
    from fleet.models import GpuNode

    up, down = ClusterFactory(name="up"), ClusterFactory(name="down", prometheus_url="")
    node = GpuNodeFactory(cluster=up, name="gpu-1")
    GpuNodeFactory(cluster=down, name="gpu-2")
    fake_metrics.gpus = [
        GpuUtilization("gpu-1", 0, None, None, 0.5),
        GpuUtilization("gpu-1", 1, "1g.10gb", 3, 0.1),
        GpuUtilization("gpu-1", 1, "1g.10gb", 1, 0.2),
    ]
    monkeypatch.setattr(
        "fleet.metrics.metrics_backend",
        lambda cluster: UnavailableMetricsBackend("no Prometheus here") if cluster.name == "down" else fake_metrics,
    )

    readings = metrics.node_gpu_utilization(GpuNode.objects.select_related("cluster"))

    assert readings.whole_gpu(node.id, 0).utilization == 0.5
    assert [r.utilization for r in readings.mig_slices(node.id, 1)] == [0.2, 0.1]
    assert readings.unavailable == {"down": "no Prometheus here"}


@pytest.mark.django_db
def test_it_asks_for_series_by_the_deployment_not_by_todays_pods(fake_metrics):
    # The backend selects every pod the deployment ran over the range; today's pods must not
    # narrow it (they used to), nor make a scale-down miss the cached answer.
    deployment = ModelDeploymentFactory(name="llama", replicas_desired=0, replicas_ready=0)
    old = PodFactory(deployment=deployment, name="llama-7d9f8-aaaaa")

    metrics.deployment_series(deployment, 3600, now=NOW)
    old.gone_at = NOW
    old.save()
    metrics.deployment_series(deployment, 3600, now=NOW)

    series_calls = [args for name, args in fake_metrics.calls if name == "deployment_series"]
    assert len(series_calls) == 1
    assert series_calls[0][0].pods == ()


def _steps(count: int, step: int = 60) -> tuple[datetime, ...]:
    start = NOW.replace(second=0)
    return tuple(start + timedelta(seconds=step * i) for i in range(count))


@pytest.mark.django_db
def test_it_fills_replicas_the_metrics_source_does_not_know_from_recorded_changes(fake_metrics):
    from fleet.backends.base import Series
    from fleet.models import ReplicaChange

    deployment = ModelDeploymentFactory(name="llama")
    stamps = _steps(6)
    # kube-state-metrics knows only the last two points (installed late); no ready series at all.
    fake_metrics.series = {
        "replicas_desired": Series("replicas_desired", "replicas", stamps, (None, None, None, None, 5.0, 5.0))
    }
    ReplicaChange.objects.create(deployment=deployment, at=stamps[1] - timedelta(seconds=1), desired=4, ready=3)
    ReplicaChange.objects.create(deployment=deployment, at=stamps[3], desired=2, ready=2)
    ReplicaChange.objects.create(deployment=ModelDeploymentFactory(), at=stamps[0], desired=9, ready=9)

    series = metrics.deployment_series(deployment, 3600, now=NOW)

    assert series["replicas_desired"].values == (None, 4.0, 4.0, 2.0, 5.0, 5.0)
    assert series["replicas_ready"].values == (None, 3.0, 3.0, 2.0, 2.0, 2.0)
    assert series["replicas_ready"].timestamps == stamps
