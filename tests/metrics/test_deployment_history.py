"""Deployment charts from a real Prometheus holding the history of pods that no longer exist.

A Deployment ran pods A and B (an old ReplicaSet), then a rollout and a scale-down left only C
(a new ReplicaSet): A and B are gone from the cluster and from the database, and Prometheus
keeps only their history. The charts must still draw A and B where they served (queue, the
pods reporting, replicas above today's count), from kube-state-metrics' desired/ready replicas,
and still draw that history once the Deployment is scaled to zero. A neighbour Deployment whose
name starts with the same words (`<name>-8b`) and a same-named Deployment in another namespace
must never leak in.

The page's 1 h range steps every 15 s on the clock; here the step is 1 s (`fine_steps`), so
each phase needs only a few scrapes instead of a 15 s-aligned instant.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from fleet import metrics
from fleet.backends.base import DeploymentRef
from fleet.backends.prometheus.backend import PrometheusMetricsBackend
from fleet.models import Cluster
from tests.factories import ClusterFactory, ModelDeploymentFactory, PodFactory
from tests.fakekube import objects as k
from tests.metrics.pod_targets import LENGTH_SHARE, VllmPodTarget

pytestmark = [pytest.mark.django_db, pytest.mark.prometheus]

NS = "hist-llm"
PHASE_SECONDS = 2.5  # scrapes (every second) of each phase


def pod_names(namespace: str, name: str, revision: int, count: int) -> list[str]:
    dep = k.deployment(namespace, name, containers=[k.vllm_container(model="org/m")], replicas=count, ready=count)
    pods = k.pods_of(dep, k.replicaset(dep, revision=revision), [("ready", "n", "")] * count)
    return [p["metadata"]["name"] for p in pods]


POD_A, POD_B = pod_names(NS, "chat", revision=2, count=2)
(POD_C,) = pod_names(NS, "chat", revision=3, count=1)
(NEIGHBOUR,) = pod_names(NS, "chat-8b", revision=1, count=1)
(OTHER_NS,) = pod_names("hist-other", "chat", revision=2, count=1)


def values(series) -> set[float]:
    return {v for v in series.values if v is not None}


@pytest.fixture(scope="module")
def history(pod_targets, prometheus_server):
    """Scrape A, B (and the neighbours) for a while; then only C. Returns the Prometheus URL."""
    assert len({POD_A, POD_B, POD_C}) == 3 and POD_A.rsplit("-", 1)[0] != POD_C.rsplit("-", 1)[0]
    pod_targets.add_pods(
        VllmPodTarget(NS, POD_A, waiting=3, running=4, requests_per_second=4, abort_share=0.05),
        VllmPodTarget(NS, POD_B, waiting=5, running=6, requests_per_second=4, abort_share=0.05),
        VllmPodTarget(NS, NEIGHBOUR, waiting=100, running=100),
        VllmPodTarget("hist-other", OTHER_NS, waiting=200, running=200),
    )
    pod_targets.set_deployment_replicas(NS, "chat", desired=2, ready=2)
    prometheus_server.scrape_more(
        pod_targets.scrape_configs("hist-ab", pods=[POD_A, POD_B, NEIGHBOUR, OTHER_NS], kube_state=True)
    )
    time.sleep(PHASE_SECONDS)

    pod_targets.remove_pods(POD_A, POD_B)  # replaced: their endpoints vanish, the series go stale
    pod_targets.add_pods(
        VllmPodTarget(NS, POD_C, waiting=1, running=2, requests_per_second=2, abort_share=0.5,
                      e2e=((4.0, 1.0),), preemptions_per_second=3.0),
    )  # fmt: skip
    pod_targets.set_deployment_replicas(NS, "chat", desired=1, ready=1)
    prometheus_server.scrape_more(pod_targets.scrape_configs("hist-c", pods=[POD_C]))
    time.sleep(PHASE_SECONDS)  # A and B stale (their scrapes fail), C scraped a few times
    # The "now" readings take rates over 12 s: C's scrapes must fill that window, however busy the machine.
    prometheus_server.wait_for_samples(f'vllm:request_success_total{{pod="{POD_C}"}}', count=11, within="12s")
    return prometheus_server.url


@pytest.fixture
def fine_steps(monkeypatch):
    """Chart points every second (the 1 h range's own step is 15 s, aligned to the clock)."""
    monkeypatch.setattr(metrics, "step_for_range", lambda seconds, **kw: 1)


@pytest.fixture
def chat(history, fine_steps):
    """The Deployment as the database sees it now: one replica, pod C."""
    cache.clear()
    cluster = ClusterFactory(name="hist", backend=Cluster.Backend.KUBERNETES, prometheus_url=history)
    deployment = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="chat", replicas_desired=1,
                                        replicas_ready=1)  # fmt: skip
    PodFactory(deployment=deployment, name=POD_C)
    return deployment


def test_it_charts_the_pods_a_rollout_replaced(chat):
    series = metrics.deployment_series(chat, metrics.RANGES["1h"], now=datetime.now(UTC))

    # A + B waiting (3 + 5), then C alone (1); never the neighbours' 100 or 200. (Targets are
    # scraped apart, so a second may see only one of A and B.)
    assert {8.0, 1.0} <= values(series["queue_depth"]) and max(values(series["queue_depth"])) == 8.0
    assert {10.0, 2.0} <= values(series["running"]) and max(values(series["running"])) == 10.0
    # Pods reporting, and kube-state-metrics: two replicas before, more than today's one.
    assert max(values(series["replicas"])) == 2 > chat.replicas_desired
    assert values(series["replicas_desired"]) == {2.0, 1.0}
    assert values(series["replicas_ready"]) == {2.0, 1.0}
    # A and B abort 5 % of their requests; C half of its own, blended in over the rate window.
    assert min(values(series["error_rate"])) == pytest.approx(0.05, abs=0.01)
    assert max(values(series["error_rate"])) > 0.1
    assert max(values(series["preemptions_per_second"])) > 0
    assert values(series["e2e_p95"])


def test_it_still_charts_history_at_zero_replicas(chat, pod_targets):
    chat.pods.update(gone_at=datetime.now(UTC))
    chat.replicas_desired = chat.replicas_ready = 0
    chat.save()

    series = metrics.deployment_series(chat, metrics.RANGES["1h"], now=datetime.now(UTC))

    assert {8.0, 1.0} <= values(series["queue_depth"])
    assert max(values(series["replicas"])) == 2


def test_it_reads_errors_latencies_and_preemptions_now(history):
    backend = PrometheusMetricsBackend(url=history, rate_window_seconds=12)
    now = backend.deployment_metrics([
        DeploymentRef(NS, "chat", (POD_C,)),
    ])[(NS, "chat")]  # fmt: skip

    assert now.unavailable_reason is None
    assert now.error_rate == pytest.approx(0.5, abs=0.01)
    assert now.requests_per_second == pytest.approx(2, rel=0.15)
    # Every E2E observation is 4.0 s, in the (2.5, 5] bucket: PromQL interpolates 2.5 + 2.5 x 0.95.
    assert now.e2e_p95_seconds == pytest.approx(4.875, rel=0.01)
    assert now.itl_p95_seconds is not None and now.itl_p95_seconds < 0.05
    assert now.preemptions_per_second == pytest.approx(3.0, rel=0.15)
    assert LENGTH_SHARE < 0.5  # "length" finishes are served requests, not errors
