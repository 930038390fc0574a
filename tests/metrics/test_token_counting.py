"""Counting tokens over a window: `token_increase` of every metrics backend, and accrual billing
what was counted rather than a current rate times the interval."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from costing.models import CostSample
from costing.services import cost_accrue
from fleet.backends.base import BackendError, DeploymentMetrics, DeploymentRef, MetricsBackend
from fleet.backends.prometheus import promql
from fleet.backends.registry import UnavailableMetricsBackend
from fleet.backends.simulated.metrics import SimulatedMetricsBackend
from fleet.backends.simulated.store import InMemoryWorldStore
from simulator import demo_world
from tests.costing.conftest import FakeMetrics, busy
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
LLAMA = DeploymentRef("llm-prod", "llama-3-8b", ())


# --------------------------------------------------------------------------- the catalogue


def test_it_writes_sub_second_ranges_in_milliseconds():
    sel = promql.pod_selector([("ns", "p")])
    assert "[4500ms]" in promql.generation_tokens_increase_by_pod(sel, 4.5)
    assert "[60s]" in promql.prompt_tokens_increase_by_pod(sel, 60.0)
    assert "[300s]" in promql.ttft_buckets_by_pod(sel, 300)
    with pytest.raises(ValueError):
        promql.generation_tokens_increase_by_pod(sel, 0.0004)


# --------------------------------------------------------------------------- the simulated backend


@pytest.fixture
def simulated():
    store = InMemoryWorldStore(demo_world(now=NOW - timedelta(hours=2), warmup_hours=1))
    return SimulatedMetricsBackend(store, clock=lambda: NOW)


def test_it_counts_simulated_tokens_from_the_minute_history(simulated):
    assert isinstance(simulated, MetricsBackend)
    rows = simulated.deployment_minutes("llm-prod", "llama-3-8b")
    a, b = rows[-40], rows[-10]
    counted = simulated.token_increase([LLAMA], a["at"], b["at"])[("llm-prod", "llama-3-8b")]
    assert counted == (b["prompt_tokens_total"] - a["prompt_tokens_total"],
                       b["generation_tokens_total"] - a["generation_tokens_total"])  # fmt: skip
    assert counted[1] > 0


def test_it_interpolates_inside_a_minute_and_up_to_now(simulated):
    rows = simulated.deployment_minutes("llm-prod", "llama-3-8b")
    before, after = rows[-3], rows[-2]
    half = simulated.token_increase([LLAMA], before["at"], before["at"] + timedelta(seconds=30))
    whole = after["generation_tokens_total"] - before["generation_tokens_total"]
    assert half[("llm-prod", "llama-3-8b")][1] == pytest.approx(whole / 2)
    # Past the last closed minute, up to the world's now, from the live counters.
    _, generated_total = simulated.deployment_token_counters("llm-prod", "llama-3-8b")
    tail = simulated.token_increase([LLAMA], rows[-1]["at"], NOW)[("llm-prod", "llama-3-8b")]
    assert tail[1] == pytest.approx(generated_total - rows[-1]["generation_tokens_total"], abs=1)


def test_it_counts_nothing_for_unknown_deployments_and_embeddings(simulated):
    start, end = NOW - timedelta(minutes=30), NOW
    counted = simulated.token_increase([DeploymentRef("x", "ghost", ()), DeploymentRef("team-search", "bge-embed", ())],
                                       start, end)  # fmt: skip
    assert counted[("x", "ghost")] == (None, None)
    prompt, generated = counted[("team-search", "bge-embed")]
    assert generated == 0 and prompt > 0


def test_it_says_why_when_there_is_no_metrics_source():
    backend = UnavailableMetricsBackend("no Prometheus URL configured for this cluster")
    assert isinstance(backend, MetricsBackend)
    with pytest.raises(BackendError, match="no Prometheus URL"):
        backend.token_increase([LLAMA], NOW - timedelta(minutes=1), NOW)


# --------------------------------------------------------------------------- accrual


class CountingMetrics(FakeMetrics):
    """FakeMetrics whose counters say exactly how many tokens each deployment produced."""

    def __init__(self, rates: dict[str, DeploymentMetrics], counted: dict[str, tuple[float, float]] | None,
                 error: Exception | None = None):  # fmt: skip
        super().__init__(rates)
        self.counted, self.count_error = counted or {}, error
        self.windows: list[tuple[datetime, datetime]] = []

    def token_increase(self, refs: Sequence[DeploymentRef], start: datetime, end: datetime):
        self.windows.append((start, end))
        if self.count_error is not None:
            raise self.count_error
        return {(r.namespace, r.name): self.counted.get(r.name, (None, None)) for r in refs}


@pytest.fixture
def llama(db):
    InstancePriceFactory()  # p4de.24xlarge $27.44705/h
    cluster = ClusterFactory(name="prod", region="us-east-1")
    node = GpuNodeFactory(cluster=cluster, name="a100-a")
    deployment = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama", gpu_per_replica=4)
    PodFactory(deployment=deployment, node=node, name="llama-0", gpu_requests={"nvidia.com/gpu": 3})
    PodFactory(deployment=deployment, node=node, name="llama-1", gpu_requests={"nvidia.com/gpu": 1})
    return cluster


def _tokens():
    return CostSample.objects.filter(kind="pod").aggregate(p=Sum("prompt_tokens"), g=Sum("generation_tokens"))


def test_it_bills_the_tokens_the_counters_counted_over_the_span(llama):
    # The current rate (a 5-minute window, say) says 100/s; the counters counted 12,345 in 10 min.
    metrics = CountingMetrics({"llama": busy(generation=100.0, prompt=50.0)}, {"llama": (6000.0, 12345.0)})
    start = datetime(2026, 3, 2, 9, 55, tzinfo=UTC)
    cost_accrue(cluster=llama, now=start, metrics=metrics)
    cost_accrue(cluster=llama, now=start + timedelta(minutes=10), metrics=metrics)  # crosses 10:00

    assert metrics.windows == [(start, start + timedelta(minutes=10))]
    tokens = _tokens()  # each sample rounds its share to a whole token
    assert tokens["p"] == pytest.approx(6000, abs=2) and tokens["g"] == pytest.approx(12345, abs=2)
    # Shared among the pods by GPU share (3:1), across the two hour buckets.
    by_pod = dict(CostSample.objects.values_list("pod_name").annotate(g=Sum("generation_tokens")))
    assert by_pod["llama-0"] == pytest.approx(12345 * 3 / 4, abs=2)
    assert CostSample.objects.filter(pod_name="llama-0").count() == 2


def test_it_falls_back_to_rates_when_the_counters_cannot_be_read(llama):
    refused = BackendError("Prometheus at http://p refused the connection", transient=True)
    metrics = CountingMetrics({"llama": busy(generation=100.0, prompt=50.0)}, None, error=refused)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cost_accrue(cluster=llama, now=start, metrics=metrics)
    cost_accrue(cluster=llama, now=start + timedelta(minutes=10), metrics=metrics)

    assert _tokens() == {"p": 50 * 600, "g": 100 * 600}
    assert CostSample.objects.aggregate(u=Sum("usd"))["u"].quantize(Decimal("0.01")) == Decimal("4.57")  # 27.44705/6


def test_it_counts_no_tokens_for_a_deployment_without_series(llama):
    metrics = CountingMetrics({"llama": busy(generation=100.0)}, {})  # counted, found nothing
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cost_accrue(cluster=llama, now=start, metrics=metrics)
    cost_accrue(cluster=llama, now=start + timedelta(minutes=10), metrics=metrics)

    assert _tokens() == {"p": 0, "g": 0}


def test_it_does_not_wait_twice_for_a_source_that_just_failed(llama):
    metrics = CountingMetrics({"llama": busy(generation=100.0)}, {"llama": (0.0, 999.0)})
    metrics.last_error = BackendError("Prometheus at http://p did not answer within 3.0 s", transient=True)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cost_accrue(cluster=llama, now=start, metrics=metrics)
    cost_accrue(cluster=llama, now=start + timedelta(minutes=10), metrics=metrics)

    assert metrics.windows == []  # the counters were not asked after the metrics queries timed out
