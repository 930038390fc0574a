"""A Kubernetes deployment's replay inputs from a real Prometheus's history (`scaling.history`).

Two pods of one Deployment are scraped by a real Prometheus (tests/metrics fixtures) with known
request rates and token sizes; the history must give them back. Steps are 1 s here (the
command's are 60 s): the exposition text's counters grow with wall time, and a test cannot wait
minutes for a minute's resolution.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from costing.models import InstancePrice
from fleet.models import Cluster
from scaling.advice import history_load
from scaling.history import DEFAULT_NODE_START_SECONDS, deployment_history, load_from_history
from simulator.traces import Spike
from tests.factories import ClusterFactory, GpuFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory
from tests.fakekube import objects as k
from tests.metrics.pod_targets import VllmPodTarget

NS = "whatif-hist"
SCRAPE_SECONDS = 4.0


def pod_names(count: int) -> list[str]:
    dep = k.deployment(NS, "chat", containers=[k.vllm_container(model="org/m")], replicas=count, ready=count)
    return [p["metadata"]["name"] for p in k.pods_of(dep, k.replicaset(dep, revision=1), [("ready", "n", "")] * count)]


POD_A, POD_B = pod_names(2)
RPS, PROMPT, GENERATED = 3.0, 1500.0, 300.0  # per pod: requests/s, tokens per request


@pytest.fixture(scope="module")
def history_url(pod_targets, prometheus_server):
    pod_targets.add_pods(*(
        VllmPodTarget(NS, pod, waiting=6, running=4, requests_per_second=RPS,
                      prompt_tokens_per_second=RPS * PROMPT, generation_tokens_per_second=RPS * GENERATED)
        for pod in (POD_A, POD_B)
    ))  # fmt: skip
    prometheus_server.scrape_more(pod_targets.scrape_configs("whatif-hist", pods=[POD_A, POD_B]))
    time.sleep(SCRAPE_SECONDS)
    return prometheus_server.url


@pytest.fixture
def chat(history_url):
    cluster = ClusterFactory(name="hist-k8s", backend=Cluster.Backend.KUBERNETES, prometheus_url=history_url)
    deployment = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="chat", model="org/llama-70B",
                                        gpu_per_replica=2, gpu_resource="nvidia.com/gpu")  # fmt: skip
    node = GpuNodeFactory(cluster=cluster, name="gpu-a", gpu_product="NVIDIA-H100-80GB-HBM3", gpu_count=8,
                          instance_type="p5.48xlarge")  # fmt: skip
    for pod in (POD_A, POD_B):
        PodFactory(cluster=cluster, deployment=deployment, name=pod, node=node)
    for index in range(8):
        GpuFactory(node=node, index=index)  # all free: room for 4 more replicas of 2 GPUs
    InstancePrice.objects.create(
        instance_type="p5.48xlarge",
        region="us-east-1",
        usd_per_hour=Decimal("80"),
        gpu_count=8,
        source="test",
        effective_from=date(2026, 1, 1),
    )
    return deployment


@pytest.mark.django_db
@pytest.mark.prometheus
def test_it_recovers_arrivals_and_token_sizes_from_prometheus(chat):
    history = deployment_history(deployment=chat, hours=SCRAPE_SECONDS / 3600, now=datetime.now(UTC), step_seconds=1)

    load = history.load
    measured = [a for a in load.arrivals if a > 0][1:-1]  # the edges straddle the first and last scrape
    assert measured and sum(measured) / len(measured) == pytest.approx(2 * RPS, rel=0.10)
    prompts = [p for p in load.prompt_tokens if p > 0]
    outputs = [o for o in load.output_tokens if o > 0]
    assert prompts and prompts[0] == pytest.approx(PROMPT, rel=0.10)
    assert outputs and outputs[0] == pytest.approx(GENERATED, rel=0.10)
    model = history.model
    assert model.gpus_per_replica == 2 and model.replicas_per_node == 4 and model.free_replica_slots == 4
    assert model.price_per_gpu_hour_usd == pytest.approx(10.0)  # $80 an hour for 8 GPUs
    notes = " | ".join(model.notes)
    # a few seconds of history cannot fit a capacity: the table's figure, and the result says so
    assert "history too thin to fit capacity" in notes and "H100 x 2 GPU, model 70B" in notes
    assert "p5.48xlarge" in notes and f"node start {DEFAULT_NODE_START_SECONDS} s (default" in notes
    assert "default for a 70B model" in notes


@pytest.mark.django_db
@pytest.mark.prometheus
def test_it_refuses_a_deployment_that_never_reported(history_url):
    from core.errors import ApplicationError

    cluster = ClusterFactory(name="hist-k8s-2", backend=Cluster.Backend.KUBERNETES, prometheus_url=history_url)
    silent = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="quiet")
    with pytest.raises(ApplicationError, match="no pod of whatif-hist/quiet reported"):
        deployment_history(deployment=silent, hours=0.01, now=datetime.now(UTC), step_seconds=1)


def test_it_holds_each_minute_and_keeps_tokens_per_minute():
    points = {
        60: {
            "arrivals_per_second": 2.0,
            "requests_per_second": 2.0,
            "prompt_tokens_per_second": 200.0,
            "generation_tokens_per_second": 40.0,
        },
        180: {"arrivals_per_second": 5.0, "requests_per_second": 0.0},
    }
    load = load_from_history(points, start=60, seconds=180, step_seconds=60)
    assert list(load.arrivals[:60]) == [2.0] * 60 and list(load.arrivals[60:120]) == [0.0] * 60
    assert list(load.arrivals[120:]) == [5.0] * 60
    assert (load.prompt_tokens[0], load.output_tokens[0], load.prompt_tokens[2]) == (100.0, 20.0, 0.0)


def test_it_puts_a_whole_minute_warmup_in_front_and_spikes_after_it():
    points = {
        t: {"arrivals_per_second": 1.0, "requests_per_second": 1.0, "prompt_tokens_per_second": 10.0}
        for t in range(0, 600, 60)
    }
    base = load_from_history(points, start=0, seconds=600, step_seconds=60)
    load, warmup, plain = history_load(
        base,
        warmup_seconds=90,
        rate_multiplier=2.0,
        spike=Spike(3.0, start_seconds=60, ramp_seconds=0, duration_seconds=60),
    )
    assert warmup == 120 and load.seconds == 720 and len(load.prompt_tokens) == 12
    assert plain.arrivals[0] == 2.0 and load.arrivals[warmup + 30] == 2.0
    assert load.arrivals[warmup + 90] == 6.0 and plain.arrivals[warmup + 90] == 2.0
