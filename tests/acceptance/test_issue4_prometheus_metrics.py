"""Issue 4, as it will be checked: a real Prometheus scraping vLLM and DCGM exposition text for the
pods of a cluster synced from a (fake) Kubernetes API, read through the API and the pages.

The exposition comes from tests/metrics/pod_targets.py, not from the exporter the backend was
developed against: every vLLM pod is its own scrape target without pod labels in its text
(Prometheus attaches `namespace`/`pod` from the target, as Kubernetes service discovery does),
old vLLM 0.7 names sit next to current ones, a gateway target behind a ServiceMonitor yields
`exported_namespace`/`exported_pod`, and dcgm-exporter reports whole GPUs and MIG slices.
Expected values are computed here from the rates and latency mixes chosen below, with
Prometheus's `histogram_quantile` interpolation written out independently.
"""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Role
from fleet.models import Cluster, ModelDeployment
from fleet.services import cluster_refresh
from tests.factories import ApiTokenFactory, UserFactory
from tests.fakekube import objects as k
from tests.metrics.fixtures import MISSING_BINARY
from tests.metrics.pod_targets import TTFT_BUCKETS, TTFT_BUCKETS_V07, DcgmDeviceTarget, VllmPodTarget, share_at_or_below
from tests.metrics.prometheus_server import PrometheusServer, find_binary
from tests.services import free_port, missing_service

pytestmark = pytest.mark.django_db

NS = "acc4-llm"
EDGE = "acc4-edge"
H100_NODE = "acc4-h100-1"
MIG_NODE = "acc4-a100-mig"
TIMEOUT = 1.5  # the cluster's Prometheus query timeout in these tests
WAIT_SLACK = 0.5  # a socket timeout firing, and the threads noticing it, on a busy machine
HISTORY = 6.0  # seconds of scrapes before rates (and so quantiles) are read


# --------------------------------------------------------------------------- the cluster


def _pod_names(objs: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in objs if o["kind"] == "Pod"]


NODES = [
    k.gpu_node(H100_NODE),
    k.gpu_node(MIG_NODE, product="NVIDIA-A100-SXM4-80GB", memory_mib=81920, instance_type="p4de.24xlarge",
               mig_config="all-1g.10gb", mig_devices={"1g.10gb": 56}),
]  # fmt: skip
CHAT = k.vllm_deployment_with_pods(NS, "chat", [H100_NODE, H100_NODE], model="meta-llama/Llama-3.1-70B-Instruct")
LEGACY = k.vllm_deployment_with_pods(NS, "legacy", [H100_NODE], model="mistralai/Mistral-7B-Instruct-v0.3")
MIG = k.vllm_deployment_with_pods(NS, "mig", [MIG_NODE, MIG_NODE], resource="nvidia.com/mig-1g.10gb",
                       model="Qwen/Qwen2.5-1.5B-Instruct")  # fmt: skip
GATEWAY = k.vllm_deployment_with_pods(EDGE, "gw", [H100_NODE, H100_NODE], model="Qwen/Qwen2.5-7B-Instruct")
CHAT_A, CHAT_B = _pod_names(CHAT)
(LEGACY_POD,) = _pod_names(LEGACY)
MIG_A, MIG_B = _pod_names(MIG)
GW_A, GW_B = _pod_names(GATEWAY)

# Two chat pods with different latency mixes: merged, p95 = 1.90 s; the mean of the pods' own
# p95s would be 1.40 s and the max 2.35 s, so neither shortcut passes the 10% check.
POD_TARGETS = [
    VllmPodTarget(NS, CHAT_A, waiting=3, running=7, kv_cache_usage=0.5, requests_per_second=6,
                  ttft=((0.15, 0.7), (0.45, 0.3)), generation_tokens_per_second=300),
    VllmPodTarget(NS, CHAT_B, waiting=9, running=5, kv_cache_usage=0.3, requests_per_second=2,
                  ttft=((0.6, 0.5), (1.8, 0.5)), generation_tokens_per_second=100),
    VllmPodTarget(NS, LEGACY_POD, release="0.7", waiting=4, running=2, kv_cache_usage=0.62,
                  requests_per_second=3, ttft=((0.3, 1.0),)),
    VllmPodTarget(NS, MIG_A, waiting=1, running=1, kv_cache_usage=0.2, ttft=((0.05, 1.0),)),
    VllmPodTarget(NS, MIG_B, waiting=0, running=1, kv_cache_usage=0.4, ttft=((0.05, 1.0),)),
    VllmPodTarget(EDGE, GW_A, waiting=5, running=3, kv_cache_usage=0.7, requests_per_second=4,
                  ttft=((0.7, 0.9), (3.0, 0.1)), behind_gateway=True),
    VllmPodTarget(EDGE, GW_B, waiting=6, running=3, kv_cache_usage=0.5, requests_per_second=4,
                  ttft=((0.7, 0.9), (3.0, 0.1)), behind_gateway=True),
]  # fmt: skip
DEVICES = [
    # H100 node, newer dcgm-exporter (`hostname`): one whole GPU per pod, one idle.
    DcgmDeviceTarget(H100_NODE, 0, 0.80, namespace=NS, pod=CHAT_A, hostname_label="hostname",
                     model_name="NVIDIA H100 80GB HBM3"),
    DcgmDeviceTarget(H100_NODE, 1, 0.50, namespace=NS, pod=CHAT_B, hostname_label="hostname",
                     model_name="NVIDIA H100 80GB HBM3"),
    DcgmDeviceTarget(H100_NODE, 2, 0.10, namespace=NS, pod=LEGACY_POD, hostname_label="hostname",
                     model_name="NVIDIA H100 80GB HBM3"),
    # A100 in MIG mode, older exporter (`Hostname`): GPU_UTIL reads 0 on every slice.
    *[DcgmDeviceTarget(MIG_NODE, 0, util, mig_profile="1g.10gb", mig_instance=gi, namespace=ns, pod=pod)
      for gi, util, ns, pod in ((7, 0.30, NS, MIG_A), (8, 0.50, NS, MIG_B), (9, 0.0, "", ""), (10, 0.0, "", ""),
                                (11, 0.0, "", ""), (12, 0.0, "", ""), (13, 0.0, "", ""))],
]  # fmt: skip


def expected_quantile(q: float, pods: list[VllmPodTarget], buckets: tuple[float, ...]) -> float:
    """PromQL's histogram_quantile over the pods' merged bucket rates (classic histograms)."""
    rates = {le: sum(p.requests_per_second * share_at_or_below(p.ttft, le) for p in pods)
             for le in (*buckets, math.inf)}  # fmt: skip
    rank = q * rates[math.inf]
    lower, below = 0.0, 0.0
    for le in sorted(rates):
        if rates[le] >= rank:
            assert le != math.inf
            return lower + (le - lower) * (rank - below) / (rates[le] - below)
        lower, below = le, rates[le]
    raise AssertionError("unreachable")


def target(name: str) -> VllmPodTarget:
    return next(p for p in POD_TARGETS if p.pod == name)


@pytest.fixture(scope="module")
def scraped(pod_targets, prometheus_server):
    """The pods above served as scrape targets of the session's Prometheus; the wall time they
    were all first scraped."""
    pod_targets.add_pods(*POD_TARGETS)
    pod_targets.add_devices(*DEVICES)
    configs = pod_targets.scrape_configs("acc4", pods=[p.pod for p in POD_TARGETS], nodes=[H100_NODE, MIG_NODE])
    return prometheus_server.scrape_more(configs)


def wait_for_history(since: float, seconds: float = HISTORY) -> None:
    time.sleep(max(0.0, since + seconds - time.time()))


@pytest.fixture
def synced(fake_kube, fake_kubeconfig, request):
    """Sync a cluster from the fake Kubernetes API; `synced(**cluster_fields)` -> Cluster. Its
    Prometheus is the session's (scraping the pods above) unless `prometheus_url` is given."""
    fake_kube.load([*NODES, *CHAT, *LEGACY, *MIG, *GATEWAY])

    def make(name: str = "acc4", **fields) -> Cluster:
        if "prometheus_url" not in fields:
            request.getfixturevalue("scraped")
            fields["prometheus_url"] = request.getfixturevalue("prometheus_server").url
        fields = {"prometheus_timeout_seconds": TIMEOUT, **fields}
        cluster = Cluster.objects.create(
            name=name,
            backend=Cluster.Backend.KUBERNETES,
            kubeconfig_path=str(fake_kubeconfig),
            kube_context="fake",
            **fields,
        )
        result = cluster_refresh(cluster=cluster)
        assert result.ok, result.error
        return cluster

    return make


@pytest.fixture
def api():
    token = ApiTokenFactory(role=Role.VIEWER, user__username="acceptance-bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


@pytest.fixture
def browser_client(client):
    client.force_login(UserFactory(username="acceptance-sre", role=Role.VIEWER))
    return client


def deployment_ids(api, cluster: Cluster) -> dict[str, int]:
    body = api.get("/api/v1/deployments/", {"cluster": cluster.name}).json()
    return {f"{d['namespace']}/{d['name']}": d["id"] for d in body["results"]}


def metrics_of(api, deployment_id: int) -> dict:
    response = api.get(f"/api/v1/deployments/{deployment_id}/")
    assert response.status_code == 200, response.content
    return response.json()["metrics"]


# --------------------------------------------------------------------------- live metrics


@pytest.mark.prometheus
def test_it_reports_queue_depth_and_ttft_p95_within_ten_percent(synced, api, scraped):
    wait_for_history(scraped)  # before any read: answers are cached for 10 s
    cluster = synced()
    ids = deployment_ids(api, cluster)
    assert set(ids) >= {f"{NS}/chat", f"{NS}/legacy", f"{NS}/mig"}

    chat = metrics_of(api, ids[f"{NS}/chat"])
    pods = [target(CHAT_A), target(CHAT_B)]
    assert chat["unavailable_reason"] is None
    assert chat["queue_depth"] == pytest.approx(3 + 9, rel=0.10)
    expected_p95 = expected_quantile(0.95, pods, TTFT_BUCKETS)
    assert expected_p95 == pytest.approx(1.90)
    assert chat["ttft_p95_seconds"] == pytest.approx(expected_p95, rel=0.10)
    assert chat["kv_cache_usage"] == pytest.approx(0.4)
    assert chat["gpu_utilization"] == pytest.approx(0.65)  # DCGM_FI_DEV_GPU_UTIL 80 and 50, as 0-1
    assert chat["as_of"] is not None


@pytest.mark.prometheus
def test_it_reads_mig_slices_from_gr_engine_active(synced, api, scraped):
    wait_for_history(scraped)  # before any read: answers are cached for 10 s
    cluster = synced()
    ids = deployment_ids(api, cluster)
    mig = metrics_of(api, ids[f"{NS}/mig"])
    assert mig["unavailable_reason"] is None
    assert mig["gpu_utilization"] == pytest.approx(0.40)  # slices at 0.30 and 0.50; GPU_UTIL says 0
    assert mig["queue_depth"] == 1


@pytest.mark.prometheus
def test_it_reads_the_older_vllm_metric_names(synced, api, scraped):
    wait_for_history(scraped)  # before any read: answers are cached for 10 s
    cluster = synced()
    ids = deployment_ids(api, cluster)
    legacy = metrics_of(api, ids[f"{NS}/legacy"])
    assert legacy["unavailable_reason"] is None
    assert legacy["kv_cache_usage"] == pytest.approx(0.62)  # vllm:gpu_cache_usage_perc
    assert legacy["ttft_p95_seconds"] == pytest.approx(
        expected_quantile(0.95, [target(LEGACY_POD)], TTFT_BUCKETS_V07), rel=0.10
    )
    assert legacy["queue_depth"] == 4


@pytest.mark.prometheus
def test_it_joins_relabelled_pods_with_the_clusters_label_settings(synced, api, scraped):
    wait_for_history(scraped)  # before any read: answers are cached for 10 s
    relabelled = synced("acc4-sm", prometheus_namespace_label="exported_namespace",
                        prometheus_pod_label="exported_pod")  # fmt: skip
    plain = synced("acc4-plain")
    gw = metrics_of(api, deployment_ids(api, relabelled)[f"{EDGE}/gw"])
    assert gw["unavailable_reason"] is None
    assert gw["queue_depth"] == pytest.approx(11, rel=0.10)
    assert gw["ttft_p95_seconds"] == pytest.approx(
        expected_quantile(0.95, [target(GW_A), target(GW_B)], TTFT_BUCKETS), rel=0.10
    )
    assert gw["kv_cache_usage"] == pytest.approx(0.6)
    # With the default label names those series belong to the gateway's own pod: nothing is
    # invented, and the reason says so.
    missing = metrics_of(api, deployment_ids(api, plain)[f"{EDGE}/gw"])
    assert missing["queue_depth"] is None and missing["ttft_p95_seconds"] is None
    assert missing["unavailable_reason"]


def _scraped_waiting(prometheus_server, pod: str) -> float | None:
    found = prometheus_server.query(f'vllm:num_requests_waiting{{namespace="{NS}", pod="{pod}"}}')
    return float(found[0]["value"][1]) if found else None


@pytest.mark.prometheus
def test_it_reads_metrics_at_request_time_not_at_sync(synced, api, scraped, pod_targets, prometheus_server, settings):
    settings.SCALEDECK_METRICS_CACHE_SECONDS = 1
    cluster = synced()
    chat_id = deployment_ids(api, cluster)[f"{NS}/chat"]
    assert metrics_of(api, chat_id)["queue_depth"] == 12
    pod_targets.update(CHAT_A, waiting=30)
    try:
        deadline = time.monotonic() + 6
        while metrics_of(api, chat_id)["queue_depth"] != 39 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert metrics_of(api, chat_id)["queue_depth"] == 39  # no sync in between
    finally:
        pod_targets.update(CHAT_A, waiting=3)
        deadline = time.monotonic() + 5  # leave Prometheus as the other tests expect it
        while _scraped_waiting(prometheus_server, CHAT_A) != 3 and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.mark.prometheus
def test_it_shows_the_metrics_on_the_pages(synced, browser_client, scraped):
    wait_for_history(scraped)  # before any read: answers are cached for 10 s
    cluster = synced()
    chat = ModelDeployment.objects.get(cluster=cluster, namespace=NS, name="chat")
    overview = browser_client.get("/").content.decode()
    assert "12 req" in overview  # chat's queue, summed over its two pods
    charts = browser_client.get(f"/deployments/{chat.id}/charts/").content.decode()
    assert "metrics unavailable" not in charts
    assert "12 req" in charts and 'id="deployment-panels"' in charts
    utilization = browser_client.get("/nodes/gpu-utilization/").content.decode()
    assert "metrics unavailable" not in utilization
    for percent in ("80%", "50%", "30%"):  # whole GPUs from GPU_UTIL, MIG slices from GR_ENGINE_ACTIVE
        assert f">{percent}<" in utilization, percent


# --------------------------------------------------------------------------- Prometheus down or hanging


PAGES = ("/", "/deployments/{id}/", "/deployments/{id}/charts/", "/nodes/", "/nodes/gpu-utilization/", "/costs/")


def assert_pages_degrade(client, api, cluster: Cluster, *, reason_contains: str, hanging=None) -> None:
    """Every page answers, says "metrics unavailable" with the reason, and, against a hanging
    Prometheus, waits for it no longer than the cluster's timeout.

    The wait is measured where it happens, at the hanging server (from the first connection of a
    request to the last one closed): the wall time of a whole request also counts rendering, which
    a busy machine stretches without bound, and made this check fail 1 run in 4.
    """
    chat = ModelDeployment.objects.get(cluster=cluster, namespace=NS, name="chat")

    def check_wait(what: str) -> None:
        if hanging is not None:
            waited = hanging.waited()
            assert waited <= TIMEOUT + WAIT_SLACK, (what, f"held Prometheus connections for {waited:.2f} s")

    for page in PAGES:
        cache.clear()  # every page meets the dead source itself, not a cached answer
        url = page.format(id=chat.id)
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        check_wait(url)
        if url.endswith("charts/") or url == "/" or url.endswith("gpu-utilization/"):
            assert "metrics unavailable" in response.content.decode(), url

    cache.clear()
    body = api.get(f"/api/v1/deployments/{chat.id}/").json()
    check_wait("the deployment API")
    m = body["metrics"]
    assert {m[f] for f in ("queue_depth", "ttft_p95_seconds", "gpu_utilization", "kv_cache_usage")} == {None}
    reason = m["unavailable_reason"]
    assert reason and "\n" not in reason and reason_contains in reason, reason
    listed = api.get("/api/v1/deployments/", {"cluster": cluster.name}).json()["results"]
    assert listed and all(d["metrics"]["unavailable_reason"] == reason for d in listed)
    if hanging is not None:
        assert hanging.connections > 0  # the pages did ask it, and gave up by themselves


@pytest.fixture
def own_prometheus(exporter, pod_targets, scraped):
    """A second Prometheus of this test's own (the session's keeps running), scraping the same pods."""
    binary = find_binary()
    if binary is None:
        missing_service(MISSING_BINARY)
    jobs = pod_targets.scrape_configs("acc4", pods=[CHAT_A, CHAT_B])
    server = PrometheusServer(binary, exporter.address, extra_scrape_configs=jobs)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.prometheus
def test_it_degrades_every_page_when_prometheus_is_stopped(synced, own_prometheus, browser_client, api):
    cluster = synced(prometheus_url=own_prometheus.url)
    chat = ModelDeployment.objects.get(cluster=cluster, namespace=NS, name="chat")
    assert metrics_of(api, chat.id)["queue_depth"] == 12  # it was up

    own_prometheus.stop()
    assert_pages_degrade(browser_client, api, cluster, reason_contains="refused the connection")
    # The scale controls still load.
    assert browser_client.get(f"/scaling/deployments/{chat.id}/controls/").status_code == 200


class HangingServer:
    """Accepts connections and answers nothing: a Prometheus stuck past any timeout.

    It records when each connection was accepted and when the client hung up, so a test can tell
    how long a request actually waited for Prometheus.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open = 0
        self._first_accepted: float | None = None
        self._last_closed: float | None = None
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            accepted = time.monotonic()
            with self._lock:
                self._open += 1
                self.connections += 1
                if self._first_accepted is None:
                    self._first_accepted = accepted
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        """Read and never answer, until the client closes (recv returns b"" or the reset)."""
        with conn:
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        with self._lock:
            self._open -= 1
            self._last_closed = time.monotonic()

    def waited(self, give_up_after: float = 30.0) -> float:
        """Seconds from the first connection since the last call to the last one closed (0 if none),
        once every client has hung up; fails if one keeps its connection open."""
        deadline = time.monotonic() + give_up_after
        while True:
            with self._lock:
                if self._open == 0:
                    first, last = self._first_accepted, self._last_closed
                    self._first_accepted = self._last_closed = None
                    return 0.0 if first is None else max(0.0, last - first)
            if time.monotonic() > deadline:
                pytest.fail(f"a Prometheus connection was still open {give_up_after:.0f} s later")
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def test_it_never_waits_past_the_timeout_when_prometheus_hangs(synced, browser_client, api):
    hanging = HangingServer()
    try:
        cluster = synced(prometheus_url=hanging.url)
        assert_pages_degrade(
            browser_client, api, cluster, reason_contains=f"did not answer within {TIMEOUT} s", hanging=hanging
        )
    finally:
        hanging.close()


def test_it_says_why_when_nothing_listens(synced, browser_client, api):
    cluster = synced(prometheus_url=f"http://127.0.0.1:{free_port()}")
    assert_pages_degrade(browser_client, api, cluster, reason_contains="refused the connection")
