"""The simulated metrics backend gives what the Prometheus one gives: ITL and E2E latency,
request errors and the error rate, preemptions, generated tokens, with plausible values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.backends.base import DeploymentRef
from fleet.backends.prometheus.backend import SERIES_UNITS as PROMETHEUS_SERIES
from fleet.backends.simulated.cluster import SimulatedClusterBackend
from fleet.backends.simulated.metrics import SimulatedMetricsBackend
from fleet.backends.simulated.store import InMemoryWorldStore
from simulator import demo_world

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
LLAMA = DeploymentRef("llm-prod", "llama-3-8b", ())
EMBED = DeploymentRef("team-search", "bge-embed", ())


@pytest.fixture(scope="module")
def store():
    return InMemoryWorldStore(demo_world(now=NOW - timedelta(hours=2), warmup_hours=1))


@pytest.fixture
def simulated(store):
    return SimulatedMetricsBackend(store, clock=lambda: NOW)


def test_it_gives_latencies_errors_and_preemptions_now(simulated):
    now = simulated.deployment_metrics([LLAMA, EMBED])
    llama, embed = now[("llm-prod", "llama-3-8b")], now[("team-search", "bge-embed")]

    assert llama.unavailable_reason is None
    assert 0.005 < llama.itl_p95_seconds < 0.2  # tens of milliseconds per token
    assert llama.e2e_p95_seconds > llama.ttft_p95_seconds  # a request ends after its first token
    assert 0 < llama.error_rate < 0.02  # a healthy deployment: a few client cancels
    assert llama.requests_per_second > 0 and llama.running > 0
    assert llama.generation_tokens_per_second > 0 and llama.preemptions_per_second is not None
    # An embedding model generates nothing and has no inter-token latency, but finishes requests.
    assert embed.itl_p95_seconds is None and embed.generation_tokens_per_second is None
    assert embed.error_rate is not None


def test_it_charts_the_same_quantities_as_prometheus(simulated):
    series = simulated.deployment_series(LLAMA, start=NOW - timedelta(hours=1), end=NOW, step_seconds=300)

    shared = set(PROMETHEUS_SERIES) - {"replicas"}  # pods reporting metrics: a Prometheus notion
    assert shared <= set(series)
    for name in ("itl_p50", "itl_p95", "e2e_p50", "e2e_p95", "error_rate", "requests_per_second",
                 "preemptions_per_second"):  # fmt: skip
        assert any(v is not None for v in series[name].values), name
    assert series["error_rate"].unit == "fraction"
    for p50, p95 in zip(series["e2e_p50"].values, series["e2e_p95"].values, strict=True):
        assert p50 is None or p50 < p95


def test_it_counts_no_requests_while_no_replica_serves():
    # vLLM's counters live in its pods: paused at zero replicas, nothing is finished by vLLM.
    store = InMemoryWorldStore(demo_world(now=NOW - timedelta(hours=2), warmup_hours=1))
    cluster = SimulatedClusterBackend(store, clock=lambda: NOW)
    state = cluster.read_object("scaledobject", "llm-prod", "llama-3-8b")
    cluster.patch_scaledobject("llm-prod", "llama-3-8b", resource_version=state.resource_version, paused_replicas=0)
    later = NOW + timedelta(minutes=20)

    now = SimulatedMetricsBackend(store, clock=lambda: later).deployment_metrics([LLAMA])[("llm-prod", "llama-3-8b")]

    assert now.requests_per_second is None and now.error_rate is None
