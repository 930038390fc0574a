"""What-if and the advisor on a Kubernetes deployment, from three hours of history at 1-minute steps.

The history is vLLM exposition (OpenMetrics, timestamped every 15 s, as a scrape would record it)
written into a real Prometheus's storage with `promtool tsdb create-blocks-from openmetrics`:
a test cannot scrape for hours. Two pods serve 2 requests/s each, then for 40 minutes are
saturated (20 waiting each, TTFT 7 s) at 4 requests/s each, then 2 again; every request has
1500 prompt and 300 generated tokens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from fleet.models import Cluster
from scaling.history import deployment_history
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory
from tests.metrics.prometheus_server import PrometheusServer, find_binary
from tests.services import missing_service

pytestmark = [pytest.mark.prometheus]

NS, NAME = "whatif-k8s", "chat"
PODS = ("chat-7d9f8b6c5d-abcde", "chat-7d9f8b6c5d-fghij")
PROMPT, GENERATED = 1500.0, 300.0
CALM_RPS, SATURATED_RPS = 2.0, 4.0  # per pod
HOURS, SCRAPE = 3, 15
SATURATED = (100 * 60, 140 * 60)  # seconds into the history
BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


def _phase(into: int) -> tuple[float, float, float]:
    """(requests/s, waiting, TTFT seconds) of one pod `into` seconds into the history."""
    if SATURATED[0] <= into < SATURATED[1]:
        return SATURATED_RPS, 20.0, 7.0
    return CALM_RPS, 0.0, 0.3


def openmetrics(start: int, end: int) -> str:
    families: dict[str, list[str]] = {
        "vllm:request_success counter": [], "vllm:prompt_tokens counter": [],
        "vllm:generation_tokens counter": [], "vllm:num_requests_waiting gauge": [],
        "vllm:time_to_first_token_seconds histogram": [],
    }  # fmt: skip
    for pod in PODS:
        labels = f'namespace="{NS}",pod="{pod}"'
        served, buckets = 0.0, [0.0] * len(BUCKETS)
        rows: dict[str, list[str]] = {k: [] for k in families}
        for t in range(start, end, SCRAPE):
            rps, waiting, ttft = _phase(t - start)
            served += rps * SCRAPE
            for i, le in enumerate(BUCKETS):
                buckets[i] += rps * SCRAPE if ttft <= le else 0.0
            rows["vllm:request_success counter"].append(
                f'vllm:request_success_total{{{labels},finished_reason="stop"}} {served} {t}'
            )
            rows["vllm:prompt_tokens counter"].append(f"vllm:prompt_tokens_total{{{labels}}} {served * PROMPT} {t}")
            rows["vllm:generation_tokens counter"].append(
                f"vllm:generation_tokens_total{{{labels}}} {served * GENERATED} {t}"
            )
            rows["vllm:num_requests_waiting gauge"].append(f"vllm:num_requests_waiting{{{labels}}} {waiting} {t}")
        for k in families:
            families[k] += rows[k]
        # histogram buckets: one series per le, each over time
        served = 0.0
        per_le: list[list[str]] = [[] for _ in BUCKETS]
        counts = [0.0] * len(BUCKETS)
        for t in range(start, end, SCRAPE):
            rps, _, ttft = _phase(t - start)
            for i, le in enumerate(BUCKETS):
                counts[i] += rps * SCRAPE if ttft <= le else 0.0
                name = "+Inf" if le == float("inf") else f"{le:g}"
                per_le[i].append(f'vllm:time_to_first_token_seconds_bucket{{{labels},le="{name}"}} {counts[i]} {t}')
        for series in per_le:
            families["vllm:time_to_first_token_seconds histogram"] += series
    out = []
    for key, rows in families.items():
        name, kind = key.split()
        out += [f"# TYPE {name} {kind}", *rows]
    return "\n".join([*out, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def backfilled(exporter, tmp_path_factory):
    binary, promtool = find_binary(), shutil.which("promtool")
    if binary is None or promtool is None:
        missing_service("prometheus and promtool are needed: apt-get install prometheus")
    workdir = tmp_path_factory.mktemp("prometheus-history")
    end = int(time.time()) // 60 * 60 - 120
    source = workdir / "history.om"
    source.write_text(openmetrics(end - HOURS * 3600, end))
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = PrometheusServer(binary, exporter.address, workdir=workdir).start()
    try:
        yield server.url, end
    finally:
        server.cleanup()


@pytest.fixture
def chat(backfilled, db):
    url, _ = backfilled
    cluster = ClusterFactory(name="k8s-history", backend=Cluster.Backend.KUBERNETES, prometheus_url=url)
    deployment = ModelDeploymentFactory(
        cluster=cluster,
        namespace=NS,
        name=NAME,
        model="org/llama-8B",
        gpu_per_replica=1,
        gpu_resource="nvidia.com/gpu",
        ttft_slo_seconds=2.0,
    )
    node = GpuNodeFactory(cluster=cluster, name="gpu-h", gpu_product="NVIDIA-A100-SXM4-80GB")
    for pod in PODS:
        PodFactory(cluster=cluster, deployment=deployment, name=pod, node=node)
    return deployment


def test_it_recovers_a_minute_by_minute_history(chat, backfilled):
    _, end = backfilled
    history = deployment_history(deployment=chat, hours=HOURS, now=datetime.fromtimestamp(end + 60, UTC))

    load = history.load
    calm = [load.arrivals[60 * m + 30] for m in range(10, 90)]  # well inside the first calm phase
    assert sum(calm) / len(calm) == pytest.approx(2 * CALM_RPS, rel=0.10)
    busy = [load.arrivals[60 * m + 30] for m in range(105, 135)]
    assert sum(busy) / len(busy) == pytest.approx(2 * SATURATED_RPS, rel=0.10)
    prompts = [p for p in load.prompt_tokens if p > 0]
    assert len(prompts) >= 170 and all(p == pytest.approx(PROMPT, rel=0.10) for p in prompts)
    assert all(o == pytest.approx(GENERATED, rel=0.10) for o in load.output_tokens if o > 0)
    # 40 saturated minutes: capacity is fitted, 4 requests/s per replica
    fit = history.model.notes[1]
    assert fit.startswith("capacity fitted from") and "4.0" in fit
    assert history.model.capacity.requests_per_second() == pytest.approx(SATURATED_RPS, rel=0.10)


def test_it_compares_policies_on_the_history(chat):
    out = StringIO()
    call_command(
        "whatif",
        str(chat.id),
        "--hours",
        "2",
        "--policy",
        "none min=1",
        "--policy",
        "none min=3",
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    assert "deployment history replayed" in text and "capacity fitted from" in text
    one, three = (line.split() for line in text.splitlines() if line.startswith("none min="))
    # one replica cannot serve 4-8 requests/s at 4 per replica; three can
    assert int(one[2]) > int(three[2]) == 0


def test_it_advises_on_the_history_and_says_so(chat):
    out = StringIO()
    call_command(
        "whatif", str(chat.id), "--hours", "2", "--advise", "--json", "--workers", "1", stdout=out, stderr=StringIO()
    )
    advice = json.loads(out.getvalue())
    assert advice["source"]["traffic"] == "deployment history"
    assert any(n.startswith("capacity fitted from") for n in advice["source"]["notes"])
    assert len(advice["candidates"]) >= 40


def test_it_runs_advice_from_the_page_on_the_history_and_shows_its_sources(chat):
    from tests.advice.runs import advice_page

    page = advice_page(chat, hours=2, attainment=0.99)
    assert "Traffic from the deployment history; model from the deployment history." in page
    assert "capacity fitted from" in page and "Recommended" in page


def test_the_whatif_page_replays_the_measured_history_and_shows_its_sources(chat, backfilled):
    from django.test import Client

    from scaling.models import WhatIfRun
    from scaling.whatif_runs import run_result, whatif_run_execute
    from tests.factories import UserFactory

    _, end = backfilled
    client = Client()
    client.force_login(UserFactory(role="viewer"))
    form = client.get(f"/scaling/deployments/{chat.id}/whatif/").content.decode()
    assert "measured traffic from Prometheus" in form

    page = client.post(
        f"/scaling/deployments/{chat.id}/whatif/",
        {"policies": "none min=1\nnone min=3\nkeda min=1 max=4 target=2", "hours": "2"},
    )
    assert page.status_code == 200, page.content.decode()
    run = WhatIfRun.objects.get(deployment=chat)
    if run.status == WhatIfRun.Status.QUEUED:  # the test settings may run tasks eagerly, or not
        whatif_run_execute(run_id=run.id)
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.DONE, run.error

    result = run_result(run)
    one, three, keda = result.summaries
    assert result.history and any(n.startswith("capacity fitted from") for n in result.notes)
    # 4-8 requests/s at 4 per replica: one replica falls behind in the busy 40 minutes, three never do
    assert one.slo_violation_minutes > 20 and three.slo_violation_minutes == 0
    assert keda.peak_replicas > 1 and keda.slo_violation_minutes < one.slo_violation_minutes
    # stamped with the measured minutes' real times, within the two hours before the run
    at = one.series["at"]
    assert abs(at[-1].timestamp() - run.created_at.timestamp()) < 180
    assert len(at) == len(one.series["replicas_ready"]) >= 100
    fragment = client.get(f"/scaling/deployments/{chat.id}/whatif/{run.id}/").content.decode()
    assert "measured history replayed" in fragment and "capacity fitted from" in fragment
    assert "whatif-results" in fragment and "keda min=1 max=4 target=2" in fragment
