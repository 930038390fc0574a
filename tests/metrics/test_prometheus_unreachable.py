"""PrometheusMetricsBackend without a real Prometheus: PromQL building, bad settings, and a
Prometheus that is down, slow, failing or asking for credentials (a dead port or fake_http.py).
"""

from __future__ import annotations

import base64
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from fleet.backends.base import BackendError
from fleet.backends.prometheus import promql
from fleet.backends.prometheus.backend import PrometheusMetricsBackend
from fleet.backends.prometheus.histograms import histogram_quantile
from tests.metrics.deployment_refs import GHOST, LLAMA, MIG_SVC, QWEN_NEW
from tests.metrics.fake_http import EMPTY_VECTOR, FakeHTTP
from tests.metrics.prometheus_server import free_port


@pytest.fixture
def fake_http():
    made: list[FakeHTTP] = []

    def make(respond, delay: float = 0.0) -> FakeHTTP:
        made.append(FakeHTTP(respond, delay))
        return made[-1]

    yield make
    for server in made:
        server.close()


# --------------------------------------------------------------------------- pure functions


def test_it_escapes_label_values_for_promql():
    assert promql.escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert promql.equal_matcher("pod", 'we"ird') == 'pod="we\\"ird"'
    # A regex alternation quotes RE2 metacharacters, then escapes the string.
    assert promql.quote_regex("x.*(y)|z") == "x\\.\\*\\(y\\)\\|z"
    assert promql.any_of_matcher("pod", ['we"ird.*', "b-1"]) == 'pod=~"b-1|we\\"ird\\\\.\\\\*"'
    assert promql.any_of_matcher("pod", ["only"]) == 'pod="only"'


def test_it_refuses_unsafe_label_names_and_empty_sets():
    with pytest.raises(ValueError):
        promql.check_label_name('pod"}or vector(1)#')
    with pytest.raises(ValueError):
        promql.any_of_matcher("pod", [])  # pod=~"" would match series without the label


def test_it_reports_bad_cluster_settings_instead_of_raising():
    backend = PrometheusMetricsBackend(url="ftp://p:9090", pod_label="exported pod", timeout_seconds=0)
    reason = backend.deployment_metrics([LLAMA])[("team-a", "llama")].unavailable_reason
    assert reason.startswith("Prometheus is misconfigured: the Prometheus URL must be http")
    assert "not a Prometheus label name: 'exported pod'" in reason
    assert "timeout" in reason
    with pytest.raises(BackendError, match="misconfigured"):
        backend.gpu_utilization(["node-a"])
    both = PrometheusMetricsBackend(url="http://p:9090", bearer_token="t", basic_auth=("u", "p"))
    assert "not both" in both.deployment_metrics([LLAMA])[("team-a", "llama")].unavailable_reason


def test_it_selector_drops_a_huge_pod_alternation_but_keeps_namespaces():
    pairs = [("ns", f"pod-{i:05d}-abcdefghij") for i in range(1000)]
    sel = promql.pod_selector(pairs, max_pod_regex_chars=2000)
    assert not sel.exact
    assert sel.braces() == '{namespace="ns"}'


def test_it_histogram_quantile_edge_cases_match_promql():
    inf = math.inf
    assert histogram_quantile(0.5, {}) is None
    assert histogram_quantile(0.5, {1.0: 5.0}) is None  # no +Inf bucket
    assert histogram_quantile(0.5, {1.0: 0.0, inf: 0.0}) is None  # no observations
    assert histogram_quantile(0.99, {1.0: 1.0, 2.0: 1.0, inf: 10.0}) == 2.0  # rank in +Inf bucket
    assert histogram_quantile(0.5, {1.0: 2.0, 2.0: 1.0, inf: 4.0}) == 1.0  # non-monotonic fixed up
    assert histogram_quantile(0.25, {1.0: 1.0, 2.0: 3.0, inf: 4.0}) == 1.0
    assert histogram_quantile(0.5, {1.0: 1.0, 2.0: 3.0, inf: 4.0}) == 1.5
    assert histogram_quantile(-1, {1.0: 1.0, inf: 1.0}) == -inf


# --------------------------------------------------------------------------- unavailable sources


def test_it_prometheus_down_gives_none_values_and_a_reason_fast():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    backend = PrometheusMetricsBackend(url=url, timeout_seconds=3.0)
    started = time.monotonic()
    result = backend.deployment_metrics([LLAMA, QWEN_NEW, GHOST])
    assert time.monotonic() - started < 1.0
    assert set(result) == {("team-a", "llama"), ("team-a", "qwen-new"), ("team-a", "ghost")}
    for metrics in result.values():
        assert metrics.unavailable_reason == f"Prometheus at {url} refused the connection"
        assert metrics.queue_depth is None and metrics.ttft_p95_seconds is None
        assert metrics.gpu_utilization is None and metrics.as_of is None
    now = datetime.now(UTC)
    for call in (
        lambda: backend.deployment_series(LLAMA, start=now - timedelta(hours=1), end=now, step_seconds=15),
        lambda: backend.gpu_utilization(["node-a"]),
        lambda: backend.token_counters([LLAMA]),
        lambda: backend.token_increase([LLAMA], now - timedelta(hours=1), now),
    ):
        with pytest.raises(BackendError, match="refused the connection") as info:
            call()
        assert info.value.transient


def test_it_a_query_that_times_out_says_so_within_the_timeout(fake_http):
    slow = fake_http(lambda path, headers: (200, EMPTY_VECTOR), delay=3.0)
    backend = PrometheusMetricsBackend(url=slow.url, timeout_seconds=1.0)
    started = time.monotonic()
    result = backend.deployment_metrics([LLAMA, QWEN_NEW, MIG_SVC])
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed  # one shared deadline, not one per query
    assert {m.unavailable_reason for m in result.values()} == {f"Prometheus at {slow.url} did not answer within 1.0 s"}
    started = time.monotonic()
    now = datetime.now(UTC)
    with pytest.raises(BackendError, match=r"did not answer within 1\.0 s"):
        backend.deployment_series(LLAMA, start=now - timedelta(hours=1), end=now, step_seconds=15)
    assert time.monotonic() - started < 2.0


def test_it_http_errors_and_garbage_become_one_line_reasons(fake_http):
    unavailable = fake_http(lambda path, headers: (503, b"overloaded"))
    backend = PrometheusMetricsBackend(url=unavailable.url)
    started = time.monotonic()
    (metrics,) = backend.deployment_metrics([LLAMA]).values()
    assert metrics.unavailable_reason == f"Prometheus at {unavailable.url} answered HTTP 503"
    assert time.monotonic() - started < 1.0  # no retries with backoff
    with pytest.raises(BackendError) as info:
        backend.gpu_utilization(["node-a"])
    assert info.value.status == 503 and info.value.transient

    login_page = fake_http(lambda path, headers: (200, b"<html>Sign in</html>"))
    (metrics,) = PrometheusMetricsBackend(url=login_page.url).deployment_metrics([LLAMA]).values()
    assert metrics.unavailable_reason == (
        f"Prometheus at {login_page.url} answered with something that is not a Prometheus API response"
    )

    forbidden = fake_http(lambda path, headers: (403, b"forbidden"))
    with pytest.raises(BackendError, match="answered HTTP 403") as info:
        PrometheusMetricsBackend(url=forbidden.url).token_counters([LLAMA])
    assert not info.value.transient


def test_it_sends_credentials_and_never_shows_them(fake_http):
    echo = fake_http(lambda path, headers: (200, EMPTY_VECTOR))
    PrometheusMetricsBackend(url=echo.url, bearer_token="tok-secret-1").token_counters([LLAMA])
    assert {h.get("Authorization") for _, h in echo.requests} == {"Bearer tok-secret-1"}

    echo.requests.clear()
    PrometheusMetricsBackend(url=echo.url, basic_auth=("alice", "pw-secret-2")).token_counters([LLAMA])
    expected = "Basic " + base64.b64encode(b"alice:pw-secret-2").decode()
    assert {h.get("Authorization") for _, h in echo.requests} == {expected}

    port = free_port()
    backend = PrometheusMetricsBackend(url=f"http://bob:url-secret-3@127.0.0.1:{port}/", bearer_token="tok-secret-4")
    (metrics,) = backend.deployment_metrics([LLAMA]).values()
    assert metrics.unavailable_reason == f"Prometheus at http://127.0.0.1:{port} refused the connection"
    assert "secret" not in repr(backend)


# --------------------------------------------------------------------------- against a real Prometheus
