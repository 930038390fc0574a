"""PrometheusMetricsBackend and the PromQL catalogue, against a real Prometheus.

The fake exporter (exporter.py) describes a small fleet whose gauges are constant and whose
counters and histogram buckets grow at known rates; Prometheus (started once per session,
prometheus_server.py) scrapes it every second. Expected values are computed from that spec.
Tests that only need a dead port or a tiny fake HTTP server are in test_prometheus_unreachable.py.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from fleet.backends.base import DeploymentRef, MetricsBackend
from fleet.backends.prometheus import promql
from fleet.backends.prometheus.backend import (
    NO_PODS_REASON,
    NO_SERIES_REASON,
    SERIES_UNITS,
    PrometheusMetricsBackend,
)
from tests.metrics.deployment_refs import (
    GAPPY,
    GHOST,
    LLAMA,
    MIG_SVC,
    QWEN_MIX,
    QWEN_NEW,
    QWEN_OLD,
    RELABELLED,
    WEIRD,
)
from tests.metrics.exporter import VllmPod, cumulative_fraction
from tests.metrics.fake_http import counting_proxy

# `exporter` and `prometheus_server` come from tests/metrics/fixtures.py via tests/conftest.py.

WINDOW = 6  # rate window (s) used against the test Prometheus, which scrapes every second
HISTORY = WINDOW + 3  # seconds of scraped data before rates over WINDOW are exact


def spec(exporter, ref: DeploymentRef) -> list[VllmPod]:
    pods = [p for p in exporter.world.vllm if p.namespace == ref.namespace and p.pod in ref.pods]
    assert len(pods) == len(ref.pods)
    return pods


def expected_quantile(q: float, pods: list[VllmPod], latencies: str, buckets: str) -> float:
    """The quantile PromQL interpolates from the pods' merged bucket rates (no shared code)."""
    rates: dict[float, float] = {}
    for p in pods:
        for le in (*getattr(p, buckets), math.inf):
            rates[le] = rates.get(le, 0.0) + p.requests_per_second * cumulative_fraction(getattr(p, latencies), le)
    bounds = sorted(rates)
    rank = q * rates[math.inf]
    lower_bound, lower_count = 0.0, 0.0
    for le in bounds:
        if rates[le] >= rank:
            assert le != math.inf, "test data should keep quantiles in finite buckets"
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (rates[le] - lower_count)
        lower_bound, lower_count = le, rates[le]
    raise AssertionError("unreachable")


@pytest.fixture
def backend(prometheus_server) -> PrometheusMetricsBackend:
    prometheus_server.wait_for_history(HISTORY)
    return PrometheusMetricsBackend(url=prometheus_server.url, rate_window_seconds=WINDOW)


# --------------------------------------------------------------------------- tiny HTTP helpers


@pytest.mark.prometheus
def test_it_is_a_metrics_backend(backend):
    assert isinstance(backend, MetricsBackend)


@pytest.mark.prometheus
def test_it_queue_depth_and_ttft_quantiles_match_the_exposition(backend, exporter, prometheus_server):
    pods = spec(exporter, LLAMA)
    m = backend.deployment_metrics([LLAMA])[("team-a", "llama")]
    assert m.unavailable_reason is None
    assert m.queue_depth == sum(p.waiting for p in pods) == 8
    assert m.running == sum(p.running for p in pods)
    # The two pods' histograms are merged before interpolating, not averaged.
    for q, value in ((0.50, m.ttft_p50_seconds), (0.95, m.ttft_p95_seconds), (0.99, m.ttft_p99_seconds)):
        assert value == pytest.approx(expected_quantile(q, pods, "ttft", "ttft_buckets"), rel=0.10)
    assert m.ttft_p95_seconds == pytest.approx(1.75, rel=0.10)
    assert m.itl_p95_seconds == pytest.approx(expected_quantile(0.95, pods, "itl", "itl_buckets"), rel=0.10)
    assert m.e2e_p95_seconds == pytest.approx(expected_quantile(0.95, pods, "e2e", "e2e_buckets"), rel=0.10)
    assert m.e2e_p99_seconds == pytest.approx(expected_quantile(0.99, pods, "e2e", "e2e_buckets"), rel=0.10)
    # And it is the number Prometheus's own histogram_quantile gives for the same pods.
    sel = promql.pod_selector([(LLAMA.namespace, p) for p in LLAMA.pods])
    (own,) = prometheus_server.query(f"histogram_quantile(0.95, {promql.ttft_buckets_for_deployment(sel, WINDOW)})")
    assert m.ttft_p95_seconds == pytest.approx(float(own["value"][1]), rel=0.02)
    assert abs((m.as_of - datetime.now(UTC)).total_seconds()) < 5


@pytest.mark.prometheus
def test_it_rates_kv_cache_and_gpu_utilization(backend, exporter):
    pods = spec(exporter, LLAMA)
    m = backend.deployment_metrics([LLAMA])[("team-a", "llama")]
    assert m.prompt_tokens_per_second == pytest.approx(sum(p.prompt_tokens_per_second for p in pods), rel=0.10)
    assert m.generation_tokens_per_second == pytest.approx(sum(p.generation_tokens_per_second for p in pods), rel=0.10)
    assert m.preemptions_per_second == pytest.approx(0.5, rel=0.10)
    assert m.kv_cache_usage == pytest.approx(0.4)  # mean of 0.5 and 0.3
    assert m.gpu_utilization == pytest.approx(0.7)  # GPU_UTIL 80 and 60, not GR_ENGINE_ACTIVE


@pytest.mark.prometheus
def test_it_old_and_new_vllm_names_give_the_same_shape(backend):
    result = backend.deployment_metrics([QWEN_NEW, QWEN_OLD, QWEN_MIX])
    new, old, mixed = (result[("team-a", n)] for n in ("qwen-new", "qwen-old", "qwen-mix"))
    fields = ("queue_depth", "running", "ttft_p50_seconds", "ttft_p95_seconds", "ttft_p99_seconds",
              "itl_p95_seconds", "e2e_p95_seconds", "kv_cache_usage", "prompt_tokens_per_second",
              "generation_tokens_per_second", "preemptions_per_second")  # fmt: skip
    for name in fields:
        assert getattr(new, name) is not None, name
        assert getattr(old, name) == pytest.approx(getattr(new, name), rel=0.05), name
        # vLLM 0.10 exports both names; the new one wins (here the old one says otherwise).
        assert getattr(mixed, name) == pytest.approx(getattr(new, name), rel=0.05), name
    assert new.kv_cache_usage == pytest.approx(0.4)
    assert new.itl_p95_seconds == pytest.approx(0.0625, rel=0.10)


@pytest.mark.prometheus
def test_it_reads_relabelled_pod_labels(prometheus_server):
    prometheus_server.wait_for_history(HISTORY)
    relabelled = PrometheusMetricsBackend(
        url=prometheus_server.url,
        namespace_label="exported_namespace",
        pod_label="exported_pod",
        rate_window_seconds=WINDOW,
    )
    m = relabelled.deployment_metrics([RELABELLED])[("team-b", "relab")]
    assert m.unavailable_reason is None
    assert m.queue_depth == 10 and m.running == 8
    assert m.kv_cache_usage == pytest.approx(0.4)
    assert m.ttft_p95_seconds == pytest.approx(0.625, rel=0.10)
    assert m.generation_tokens_per_second == pytest.approx(200, rel=0.10)
    # With the default label names those series belong to the scraper's own pod.
    plain = PrometheusMetricsBackend(url=prometheus_server.url)
    assert plain.deployment_metrics([RELABELLED])[("team-b", "relab")].unavailable_reason == NO_SERIES_REASON


@pytest.mark.prometheus
def test_it_mig_slices_use_gr_engine_active(backend):
    m = backend.deployment_metrics([MIG_SVC])[("team-a", "mig-svc")]
    assert m.gpu_utilization == pytest.approx(0.4)  # slices at 0.3 and 0.5; GPU_UTIL reads 0 there


@pytest.mark.prometheus
def test_it_reports_every_gpu_and_mig_slice_of_the_nodes(backend):
    gpus = backend.gpu_utilization(["node-a", "node-b"])
    got = {(g.node_name, g.gpu_index, g.mig_profile, g.mig_instance_id): g for g in gpus}
    assert set(got) == {
        ("node-a", 0, "3g.40gb", 2),
        ("node-a", 0, "1g.10gb", 7),
        ("node-a", 0, "1g.10gb", 8),
        ("node-a", 1, None, None),
        ("node-b", 0, None, None),
        ("node-b", 1, None, None),
        ("node-b", 2, None, None),
    }  # node-c not asked for; node-a GPU 0 is MIG-enabled so it shows as its slices only
    slice7 = got[("node-a", 0, "1g.10gb", 7)]
    assert slice7.utilization == pytest.approx(0.3)
    assert slice7.memory_used_mib == 9000
    assert (slice7.power_watts, slice7.temperature_c) == (123.0, 44.0)  # the parent GPU's readings
    whole = got[("node-b", 0, None, None)]  # `hostname` label (newer exporter)
    assert whole.utilization == pytest.approx(0.8)
    assert (whole.memory_used_mib, whole.power_watts, whole.temperature_c) == (70000, 350, 65)
    assert got[("node-a", 1, None, None)].utilization == pytest.approx(0.7)  # `Hostname` label
    # Each reading names the pod holding it (the nodes page puts a slice's value on that pod's slice).
    assert (slice7.namespace, slice7.pod) == ("team-a", "mig-svc-55f4c-fffff")
    assert (whole.namespace, whole.pod) == ("team-a", "llama-7d9f8-aaaaa")
    assert (got[("node-a", 0, "3g.40gb", 2)].namespace, got[("node-a", 0, "3g.40gb", 2)].pod) == (None, None)
    assert backend.gpu_utilization([]) == []


@pytest.mark.prometheus
def test_it_batches_queries_whatever_the_number_of_deployments(prometheus_server):
    prometheus_server.wait_for_history(HISTORY)
    proxy = counting_proxy(prometheus_server.url)
    try:
        backend = PrometheusMetricsBackend(url=proxy.url, rate_window_seconds=WINDOW)
        one = backend.deployment_metrics([LLAMA])
        queries_for_one = len(proxy.requests)
        proxy.requests.clear()
        three = backend.deployment_metrics([LLAMA, QWEN_OLD, MIG_SVC])
        queries_for_three = len(proxy.requests)
    finally:
        proxy.close()
    assert queries_for_one == queries_for_three == 11
    assert all(path.startswith("/api/v1/query?") for path, _ in proxy.requests)
    assert three[("team-a", "llama")].queue_depth == one[("team-a", "llama")].queue_depth == 8
    assert three[("team-a", "qwen-old")].queue_depth == 2
    assert three[("team-a", "mig-svc")].queue_depth == 1


@pytest.mark.prometheus
def test_it_says_which_deployments_have_no_series(backend):
    result = backend.deployment_metrics([LLAMA, GHOST, DeploymentRef("team-a", "scaled-to-zero", ())])
    assert result[("team-a", "llama")].unavailable_reason is None
    ghost = result[("team-a", "ghost")]
    assert ghost.unavailable_reason == NO_SERIES_REASON
    assert ghost.queue_depth is None and ghost.ttft_p95_seconds is None and ghost.kv_cache_usage is None
    assert result[("team-a", "scaled-to-zero")].unavailable_reason == NO_PODS_REASON
    assert backend.deployment_metrics([]) == {}


@pytest.mark.prometheus
def test_it_escapes_untrusted_pod_names_against_prometheus(backend):
    # `we"ird.*` unescaped would break the query or also match `we"ird-other` (queue 100).
    m = backend.deployment_metrics([WEIRD])[("edge", "weird")]
    assert m.unavailable_reason is None
    assert m.queue_depth == 3
    both = DeploymentRef("edge", "both", ('we"ird.*', 'we"ird-other'))
    assert backend.deployment_metrics([both])[("edge", "both")].queue_depth == 103


@pytest.mark.prometheus
def test_it_charts_a_deployment(backend):
    end = datetime.now(UTC)
    start = end - timedelta(seconds=4)
    series = backend.deployment_series(LLAMA, start=start, end=end, step_seconds=1)
    assert list(series) == list(SERIES_UNITS)
    assert {name: s.unit for name, s in series.items()} == SERIES_UNITS
    assert series["ttft_p95"].unit == "s" and series["replicas"].unit == "replicas"
    for s in series.values():
        assert len(s.timestamps) == len(s.values) == 5
        assert all(t.tzinfo is not None for t in s.timestamps)
    last = {name: s.values[-2] for name, s in series.items()}  # -2: the newest scrape may be in flight
    assert last["queue_depth"] == 8 and last["running"] == 14 and last["replicas"] == 2
    assert last["kv_cache_usage"] == pytest.approx(0.4)
    assert last["gpu_utilization"] == pytest.approx(0.7)
    assert last["ttft_p95"] == pytest.approx(1.75, rel=0.10)
    assert last["ttft_p50"] < last["ttft_p95"] < last["ttft_p99"]
    assert last["prompt_tokens_per_second"] == pytest.approx(800, rel=0.10)
    assert last["generation_tokens_per_second"] == pytest.approx(200, rel=0.10)


@pytest.mark.prometheus
def test_it_keeps_gaps_in_series(backend, exporter, prometheus_server):
    gap_start, gap_end = exporter.gap_window(spec(exporter, GAPPY)[0])
    assert time.time() > gap_end + 1, "the gap should be over once HISTORY has elapsed"
    start = datetime.fromtimestamp(prometheus_server.first_scrape_at - 3, UTC)
    end = datetime.now(UTC)
    queue = backend.deployment_series(GAPPY, start=start, end=end, step_seconds=1)["queue_depth"]
    points = list(zip(queue.timestamps, queue.values, strict=True))
    assert {v for _, v in points if v is not None} == {7.0}
    in_gap = [v for t, v in points if gap_start + 1 < t.timestamp() < gap_end - 0.5]
    assert in_gap and all(v is None for v in in_gap)
    assert any(v is not None for t, v in points if t.timestamp() < gap_start)
    assert any(v is not None for t, v in points if t.timestamp() > gap_end + 1)


@pytest.mark.prometheus
def test_it_counts_tokens_over_a_window(backend, exporter):
    now = datetime.now(UTC)
    totals = backend.token_counters([LLAMA, QWEN_NEW, GHOST])
    uptime = exporter.uptime(now.timestamp())
    prompt, generation = totals[("team-a", "llama")]
    assert prompt == pytest.approx(800 * uptime, rel=0.01)
    assert generation == pytest.approx(200 * uptime, rel=0.01)
    assert totals[("team-a", "ghost")] == (None, None)

    window = backend.token_increase([LLAMA, QWEN_NEW], now - timedelta(seconds=WINDOW), now)
    assert window[("team-a", "llama")] == pytest.approx((800 * WINDOW, 200 * WINDOW), rel=0.10)
    assert window[("team-a", "qwen-new")] == pytest.approx((400 * WINDOW, 100 * WINDOW), rel=0.10)


@pytest.mark.prometheus
def test_it_counts_tokens_over_a_window_to_the_millisecond(backend):
    # Accruals run at sync times, not on whole seconds: a 2.5 s window rounded to 2 s (or 3 s)
    # would miss (or double count) a fifth of the tokens.
    end = datetime.now(UTC) - timedelta(seconds=1)
    window = backend.token_increase([LLAMA], end - timedelta(seconds=2.5), end)
    assert window[("team-a", "llama")] == pytest.approx((800 * 2.5, 200 * 2.5), rel=0.08)


@pytest.mark.prometheus
def test_it_handles_hundreds_of_pods_in_one_batch(backend):
    # Past MAX_POD_REGEX_CHARS the pod alternation is dropped from the URL and pods are picked
    # out of the namespace's series in Python: same answers, same number of queries.
    many = [DeploymentRef("team-a", f"filler-{i}", (f"filler-{i}-5f6d7c8b9a-{i:05d}",)) for i in range(400)]
    assert not promql.pod_selector([(r.namespace, r.pods[0]) for r in many]).exact
    result = backend.deployment_metrics([LLAMA, QWEN_OLD, *many])
    assert result[("team-a", "llama")].queue_depth == 8
    assert result[("team-a", "llama")].gpu_utilization == pytest.approx(0.7)
    assert result[("team-a", "qwen-old")].queue_depth == 2
    assert result[("team-a", "filler-7")].unavailable_reason == NO_SERIES_REASON
