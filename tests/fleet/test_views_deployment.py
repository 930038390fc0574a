import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.charts.deployment import PANELS
from fleet.autoscalers import ReplicaOwnerKind
from fleet.backends.base import DeploymentMetrics, Series
from tests.factories import AutoscalerFactory, ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AFTER_THE_CHARTS = "htmx:afterRequest from:#deployment-charts, load delay:1s"  # the other boxes' trigger


def page(deployment, query=""):
    return reverse("fleet:deployment", args=[deployment.id]) + query


def charts(deployment, query=""):
    return reverse("deployment:charts", args=[deployment.id]) + query


def panels_of(html: str) -> dict[str, dict]:
    """The charts fragment's figures, by panel title."""
    match = re.search(r'<script id="deployment-panels" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no charts in the fragment"
    return {figure["layout"]["title"]["text"]: figure for figure in json.loads(match.group(1))}


def series(name: str, unit: str, values, *, start=NOW - timedelta(minutes=3), step=60) -> Series:
    times = tuple(start + timedelta(seconds=i * step) for i in range(len(values)))
    return Series(name, unit, times, tuple(values))


def test_it_shows_the_deployment_facts_and_pods(viewer_client):
    deployment = ModelDeploymentFactory(
        name="llama-70b",
        model="meta-llama/Llama-3.1-70B-Instruct",
        image="vllm/vllm-openai:v0.10.1",
        tensor_parallel=4,
        gpu_per_replica=4,
        replicas_desired=2,
        replicas_ready=1,
        rollout_condition="Progressing: ReplicaSetUpdated",
    )
    AutoscalerFactory(deployment=deployment, min_replicas=2, max_replicas=6, metric="vllm:num_requests_waiting > 5")
    node = GpuNodeFactory(cluster=deployment.cluster, name="gpu-a")
    PodFactory(deployment=deployment, node=node, name="llama-70b-abc", restarts=2)
    PodFactory(
        deployment=deployment,
        node=node,
        name="llama-70b-def",
        ready=False,
        phase="Running",
        waiting_reason="loading model weights",
    )

    response = viewer_client.get(page(deployment))

    html = response.content.decode()
    assert response.status_code == 200
    for text in [
        "meta-llama/Llama-3.1-70B-Instruct",
        "vllm/vllm-openai:v0.10.1",
        "nvidia.com/gpu</span> × 4",
        "1 ready / 2 desired",
        "vllm:num_requests_waiting &gt; 5",
        "2–6",
        "Progressing: ReplicaSetUpdated",
        "llama-70b-abc",
        "gpu-a",
        "loading model weights",
    ]:
        assert text in html, text


def test_it_lints_the_known_traps(viewer_client):
    deployment = ModelDeploymentFactory(
        liveness_initial_delay_seconds=30, termination_grace_seconds=30, max_unavailable="1", replicas_desired=2
    )
    AutoscalerFactory(deployment=deployment, kind=ReplicaOwnerKind.HPA, name="cpu-hpa", metric="cpu utilization 70%")
    AutoscalerFactory(deployment=deployment, kind=ReplicaOwnerKind.SCALEDOBJECT, name="queue")

    html = viewer_client.get(page(deployment)).content.decode()

    for code in [
        "autoscaler-conflict",
        "liveness-before-cold-start",
        "short-termination-grace",
        "rollout-drops-capacity",
        "cpu-autoscaler-on-gpu",
    ]:
        assert f'data-code="{code}"' in html, code
    assert ">conflict</span>" in html


def test_it_loads_the_charts_lazily_with_the_chosen_range(viewer_client):
    deployment = ModelDeploymentFactory()

    html = viewer_client.get(page(deployment, "?range=6h")).content.decode()

    assert f'hx-get="{charts(deployment)}?range=6h" hx-trigger="load"' in html
    assert 'href="?range=24h"' in html
    assert "plotly-basic.min.js" in html


def test_it_asks_for_the_charts_first_and_the_other_boxes_once_they_are_in(viewer_client):
    """The charts fragment gets the server to itself: the other boxes are asked when it has answered
    (or after 1 s, should the metrics source be slow), and what 1M tokens cost once it is in the page."""
    deployment = ModelDeploymentFactory()

    html = viewer_client.get(page(deployment)).content.decode()
    fragment = viewer_client.get(charts(deployment)).content.decode()

    boxes = re.findall(r'<div hx-get="([^"]+)" hx-trigger="([^"]+)"', html)
    assert len(boxes) >= 3
    for url, trigger in boxes:
        assert trigger == AFTER_THE_CHARTS, url
    per_million = reverse("costing:deployment-cost-per-million", args=[deployment.id])
    assert f'hx-get="{per_million}" hx-trigger="load"' in fragment


def test_it_estimates_the_cost_line_from_what_one_replica_costs_now(viewer_client, fake_metrics):
    from costing.selectors import deployment_cost_per_hour
    from tests.costing.factories import InstancePriceFactory

    InstancePriceFactory()
    deployment = ModelDeploymentFactory(gpu_per_replica=2, replicas_ready=2)
    for i in range(2):
        node = GpuNodeFactory(cluster=deployment.cluster, name=f"a100-{i}")
        PodFactory(deployment=deployment, node=node, name=f"llm-{i}")
    per_replica = float(deployment_cost_per_hour([deployment])[deployment.id]) / 2
    assert per_replica > 0
    fake_metrics.series = {"replicas_ready": series("replicas_ready", "replicas", [1, 2, None, 2])}

    with time_machine.travel(NOW, tick=False):
        html = viewer_client.get(charts(deployment)).content.decode()

    [line] = panels_of(html)["Cost"]["data"]
    assert line["name"] == "cost, estimated ($/h)"
    assert line["y"] == pytest.approx([per_replica, 2 * per_replica, None, 2 * per_replica])
    assert "$" in html and "/h" in html  # the Cost tile, from the same price


@pytest.mark.parametrize("bad", ["7d", "<script>", "1h;drop"])
def test_it_falls_back_to_one_hour_on_a_bad_range(viewer_client, fake_metrics, bad):
    deployment = ModelDeploymentFactory()

    full = viewer_client.get(page(deployment), {"range": bad})
    fragment = viewer_client.get(charts(deployment), {"range": bad})

    assert full.status_code == 200 and fragment.status_code == 200
    assert "showing 1h (choose 1h, 6h or 24h)" in full.content.decode()
    assert f'hx-get="{charts(deployment)}?range=1h"' in full.content.decode()
    assert "<script>" not in full.content.decode().split("<main", 1)[1].split("</main>")[0]


def test_it_draws_the_charts_with_units_an_slo_line_and_the_whole_range(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory(ttft_slo_seconds=1.5)
    fake_metrics.metrics = {("llm", deployment.name): DeploymentMetrics(queue_depth=7, ttft_p95_seconds=1.2)}
    fake_metrics.series = {
        "ttft_p50": series("ttft_p50", "s", [0.3, 0.4, None, 0.5]),
        "ttft_p95": series("ttft_p95", "s", [1.0, 1.3, None, 1.6]),
        "ttft_p99": series("ttft_p99", "s", [1.5, 2.0, None, 2.5]),
        "queue_depth": series("queue_depth", "requests", [0, 3, 7, 9]),
        "running": series("running", "requests", [10, 20, 30, 40]),
        "kv_cache_usage": series("kv_cache_usage", "fraction", [0.5, 0.6, 0.7, 0.8]),
        "replicas_desired": series("replicas_desired", "replicas", [1, 2, 2, 2]),
        "replicas_ready": series("replicas_ready", "replicas", [1, 1, 1, 2]),
    }

    with time_machine.travel(NOW, tick=False):
        response = viewer_client.get(charts(deployment, "?range=6h"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "7 req" in html and "1.20 s" in html
    panels = panels_of(html)
    assert list(panels) == [title for title, _ in PANELS]
    traces = [trace for figure in panels.values() for trace in figure["data"]]
    assert {
        "TTFT p50 (s)",
        "TTFT p95 (s)",
        "TTFT p99 (s)",
        "waiting (req)",
        "running (req)",
        "KV cache (%)",
        "desired (replicas)",
        "ready (replicas)",
    } <= {trace["name"] for trace in traces}
    kv = next(t for t in panels["KV cache usage"]["data"] if t["name"] == "KV cache (%)")
    assert kv["y"] == [50.0, 60.0, 70.0, 80.0]
    ttft = next(t for t in panels["TTFT (time to first token)"]["data"] if t["name"] == "TTFT p95 (s)")
    assert ttft["y"][2] is None  # a gap stays a gap
    slo = [s for s in panels["TTFT (time to first token)"]["layout"]["shapes"] if s["line"].get("dash") == "dash"]
    assert slo and slo[0]["y0"] == 1.5
    y_titles = {figure["layout"]["yaxis"]["title"]["text"] for figure in panels.values()}
    assert {"seconds (s)", "requests (req)", "%", "tokens/s", "$/h", "replicas"} <= y_titles
    # Every panel spans the range asked for, with the same plot width, so the times line up.
    assert {tuple(f["layout"]["xaxis"]["range"]) for f in panels.values()} == {
        ("2026-11-27 06:00:00", "2026-11-27 12:00:00")
    }
    assert len({json.dumps(f["layout"]["margin"]) for f in list(panels.values())[:-1]}) == 1
    assert panels["Cost"]["layout"]["xaxis"]["title"]["text"] == "time (UTC), one point every 2 min"
    assert "one point every 120 s" in html
    # ITL and tokens/s had no data: the panel says so rather than drawing nothing
    for title in ("Inter-token latency (ITL)", "Tokens per second"):
        assert "no data from this metrics source for this range" in json.dumps(panels[title]["layout"]["annotations"])
    assert "no data" not in json.dumps(panels["KV cache usage"]["layout"]["annotations"])


def test_it_says_metrics_unavailable_when_the_backend_fails(viewer_client, broken_metrics):
    deployment = ModelDeploymentFactory()

    response = viewer_client.get(charts(deployment))

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("metrics unavailable: Prometheus at http://prom:9090 timed out after 3 s") == 1
    assert "deployment-panels" not in html


def test_it_tells_apart_a_charts_failure_from_the_current_values(viewer_client, fake_metrics):
    from fleet.backends.base import BackendError

    deployment = ModelDeploymentFactory()
    fake_metrics.metrics = {("llm", deployment.name): DeploymentMetrics(queue_depth=3)}
    original = fake_metrics.deployment_series

    def failing_series(*args, **kwargs):
        original(*args, **kwargs)
        raise BackendError("range query exceeded the 11,000 points limit")

    fake_metrics.deployment_series = failing_series

    html = viewer_client.get(charts(deployment)).content.decode()

    assert "3 req" in html
    assert "Charts: metrics unavailable: range query exceeded the 11,000 points limit" in html


def test_it_says_metrics_unavailable_for_a_cluster_without_prometheus(viewer_client):
    deployment = ModelDeploymentFactory(cluster=ClusterFactory(prometheus_url=""))

    html = viewer_client.get(charts(deployment)).content.decode()

    assert html.count("metrics unavailable: no Prometheus URL configured for this cluster") == 1


def test_it_escapes_the_reason_a_backend_gives(viewer_client, fake_metrics):
    from fleet.backends.base import BackendError

    fake_metrics.error = BackendError('bad gateway: <b onmouseover="x()">')
    deployment = ModelDeploymentFactory()

    html = viewer_client.get(charts(deployment)).content.decode()

    assert "<b onmouseover" not in html
    assert "bad gateway: &lt;b onmouseover=&quot;x()&quot;&gt;" in html


def test_it_escapes_cluster_supplied_names_on_the_page_and_in_the_chart_json(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory(name="<script>alert(1)</script>", image="<img src=x onerror=y>")
    PodFactory(deployment=deployment, waiting_reason="<script>evil()</script>")
    fake_metrics.series = {"queue_depth": series("queue_depth", "requests", [1, 2])}

    html = viewer_client.get(page(deployment)).content.decode()
    fragment = viewer_client.get(charts(deployment)).content.decode()

    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<script>evil()" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in fragment


def test_it_tells_a_viewer_that_scale_controls_need_the_operator_role(viewer_client):
    deployment = ModelDeploymentFactory()

    html = viewer_client.get(page(deployment)).content.decode()

    assert '<section id="scale-controls"' in html
    assert "Scale controls: operator role needed." in html


def test_it_loads_the_scale_controls_for_an_operator(operator_client):
    deployment = ModelDeploymentFactory()
    controls = reverse("scaling:deployment-controls", args=[deployment.id])

    html = operator_client.get(page(deployment)).content.decode()

    assert "operator role needed" not in html
    assert f'hx-get="{controls}" hx-trigger="{AFTER_THE_CHARTS}"' in html


def test_it_keeps_the_page_of_a_deployment_gone_from_the_cluster(viewer_client):
    with time_machine.travel(NOW, tick=False):
        deployment = ModelDeploymentFactory(gone_at=NOW - timedelta(hours=3))

        html = viewer_client.get(page(deployment)).content.decode()

    assert "gone from the cluster since 2026-11-27 09:00 (3 h ago)" in html


def test_it_answers_404_for_an_unknown_deployment(viewer_client):
    assert viewer_client.get(reverse("fleet:deployment", args=[999])).status_code == 404
    assert viewer_client.get(reverse("deployment:charts", args=[999])).status_code == 404


def test_it_runs_as_many_queries_for_50_pods_as_for_5(viewer_client, fake_metrics):
    def deployment_with(pods: int):
        deployment = ModelDeploymentFactory()
        AutoscalerFactory(deployment=deployment)
        node = GpuNodeFactory(cluster=deployment.cluster)
        for _ in range(pods):
            PodFactory(deployment=deployment, node=node)
        return deployment

    small, large = deployment_with(5), deployment_with(50)
    counts = []
    for deployment in (small, large):
        for url in (page(deployment), charts(deployment)):
            with CaptureQueriesContext(connection) as ctx:
                assert viewer_client.get(url).status_code == 200
            counts.append(len(ctx.captured_queries))

    assert counts[:2] == counts[2:]
