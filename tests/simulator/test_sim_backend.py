from datetime import timedelta

import pytest

from fleet.backends.base import (
    BackendError,
    ClusterBackend,
    ConflictError,
    DeploymentRef,
    MetricsBackend,
)
from fleet.backends.simulated.cluster import SimulatedClusterBackend
from fleet.backends.simulated.metrics import SimulatedMetricsBackend, downsample
from fleet.backends.simulated.store import InMemoryWorldStore
from simulator import demo_world


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(now):
    return Clock(now)


@pytest.fixture
def store(now):
    return InMemoryWorldStore(demo_world(now=now - timedelta(hours=2), warmup_hours=1))


@pytest.fixture
def cluster(store, clock):
    return SimulatedClusterBackend(store, clock=clock)


@pytest.fixture
def metrics(store, clock):
    return SimulatedMetricsBackend(store, clock=clock)


def test_it_implements_both_protocols(cluster, metrics):
    assert isinstance(cluster, ClusterBackend)
    assert isinstance(metrics, MetricsBackend)


def test_it_snapshots_nodes_as_their_labels_would_read(cluster, store, now):
    snapshot = cluster.snapshot()
    assert snapshot.taken_at == now
    assert store.load().now == now  # the advanced world was saved
    nodes = {n.name: n for n in snapshot.nodes}
    (mig1,) = [n for n in nodes.values() if n.mig_config == "all-1g.10gb"]
    assert mig1.gpu_product == "NVIDIA-A100-SXM4-80GB" and mig1.gpu_count == 8
    assert mig1.capacity == {"nvidia.com/gpu": 0, "nvidia.com/mig-1g.10gb": 56}
    assert mig1.mig_devices == {"1g.10gb": 56} and mig1.mig_strategy == "mixed"
    (mig3,) = [n for n in nodes.values() if n.mig_config == "all-3g.40gb"]
    assert mig3.capacity == {"nvidia.com/gpu": 0, "nvidia.com/mig-3g.40gb": 16}
    h100 = [n for n in nodes.values() if n.node_pool == "h100-p5"]
    assert len(h100) == 2 and all(n.capacity == {"nvidia.com/gpu": 8} for n in h100)
    assert {n.gpu_product for n in h100} == {"NVIDIA-H100-80GB-HBM3"}
    assert all(n.instance_type == "p5.48xlarge" and n.capacity_type == "on-demand" for n in h100)
    spot = [n for n in nodes.values() if n.node_pool == "g5-spot"]
    assert len(spot) == 4 and {n.capacity_type for n in spot} == {"spot"}
    assert all(n.gpu_product == "NVIDIA-A10G" and n.gpu_memory_mib == 23028 for n in spot)
    assert {n.region for n in nodes.values()} == {"us-east-1"}
    assert {n.zone for n in nodes.values()} <= {"us-east-1a", "us-east-1b"}


def test_it_snapshots_deployments_pods_autoscalers_and_quotas(cluster):
    snapshot = cluster.snapshot()
    deployments = {(d.namespace, d.name): d for d in snapshot.deployments}
    big = deployments[("llm-prod", "llama-3-70b")]
    assert big.gpu_per_replica == 4 and big.tensor_parallel == 4 and big.model.endswith("70B-Instruct")
    mistral = deployments[("team-search", "mistral-7b")]
    assert mistral.gpu_resource == "nvidia.com/mig-3g.40gb" and mistral.replicas_ready == 2
    pods = [p for p in snapshot.pods if p.owner_name == "mistral-7b"]
    assert all(p.gpu_requests == {"nvidia.com/mig-3g.40gb": 1} and p.ready and p.phase == "Running" for p in pods)
    autoscalers = {a.name: a for a in snapshot.autoscalers}
    assert autoscalers["llama-3-8b"].kind == "scaledobject" and autoscalers["llama-3-8b"].min_replicas == 2
    assert autoscalers["keda-hpa-llama-3-8b"].owned_by_scaledobject == "llama-3-8b"
    assert autoscalers["llama-3-70b"].kind == "hpa" and "DCGM_FI_DEV_GPU_UTIL" in autoscalers["llama-3-70b"].metric
    quotas = {q.namespace: q for q in snapshot.quotas}
    assert quotas["team-search"].used == {"requests.nvidia.com/mig-3g.40gb": 2, "requests.nvidia.com/mig-1g.10gb": 4}
    assert quotas["llm-prod"].hard == {"requests.nvidia.com/gpu": 40}
    pools = {p.name: p for p in snapshot.node_pools}
    assert pools["h100-p5"].instance_types == ("p5.48xlarge",) and pools["h100-p5"].gpu_limit == 24


def test_it_lists_which_pod_holds_each_gpu_and_slice(cluster):
    snapshot = cluster.snapshot()
    assignments = cluster.gpu_assignments()
    embed = [a for a in assignments if a[5].startswith("bge-embed-")]
    assert len(embed) == 4 and all(a[2] == "1g.10gb" and a[3] is not None for a in embed)
    pod_names = {p.name for p in snapshot.pods if p.node_name}
    assert {a[5] for a in assignments} == pod_names
    assert len(set(a[:4] for a in assignments)) == len(assignments)  # nothing held twice


def test_it_writes_bounds_with_optimistic_concurrency(cluster, clock):
    snapshot = cluster.snapshot()
    keda = next(a for a in snapshot.autoscalers if a.name == "llama-3-8b")
    version = cluster.set_autoscaler_bounds(
        "llm-prod", "llama-3-8b", min_replicas=6, expected_resource_version=keda.resource_version
    )
    assert int(version) > int(keda.resource_version)
    with pytest.raises(ConflictError) as conflict:
        cluster.set_autoscaler_bounds(
            "llm-prod", "llama-3-8b", min_replicas=7, expected_resource_version=keda.resource_version
        )
    assert conflict.value.status == 409
    with pytest.raises(BackendError) as missing:
        cluster.set_autoscaler_bounds("llm-prod", "keda-hpa-llama-3-8b", min_replicas=7)
    assert missing.value.status == 404
    with pytest.raises(BackendError) as invalid:
        cluster.scale_deployment("team-search", "mistral-7b", -1)
    assert invalid.value.status == 422
    clock.now += timedelta(minutes=5)
    after = {d.name: d for d in cluster.snapshot().deployments}["llama-3-8b"]
    assert after.replicas_desired >= 6 and after.replicas_ready >= 6


def test_it_scales_and_sets_quotas_through_the_backend(cluster, clock):
    cluster.scale_deployment("team-search", "mistral-7b", 3)
    quota = next(q for q in cluster.snapshot().quotas if q.namespace == "team-search")
    version = cluster.set_quota(
        "team-search",
        "gpu-quota",
        {"requests.nvidia.com/mig-3g.40gb": 3},
        expected_resource_version=quota.resource_version,
    )
    assert version.isdigit()
    clock.now += timedelta(seconds=30)
    snapshot = cluster.snapshot()
    assert {q.namespace: q.hard for q in snapshot.quotas}["team-search"] == {"requests.nvidia.com/mig-3g.40gb": 3}
    assert len([p for p in snapshot.pods if p.owner_name == "mistral-7b"]) == 3


def test_it_reports_current_metrics_as_of_sim_time(metrics, store, now):
    refs = [DeploymentRef("llm-prod", "llama-3-8b", ()), DeploymentRef("llm-prod", "missing", ())]
    result = metrics.deployment_metrics(refs)
    current = result[("llm-prod", "llama-3-8b")]
    assert current.as_of == now and current.unavailable_reason is None
    assert current.ttft_p95_seconds > current.ttft_p50_seconds > 0
    assert 0 < current.gpu_utilization <= 1 and current.generation_tokens_per_second > 0
    assert result[("llm-prod", "missing")].unavailable_reason
    assert store.load().now == now - timedelta(hours=2)  # read-only: nothing saved


def test_it_downsamples_series_from_the_minute_history(metrics, now):
    ref = DeploymentRef("llm-prod", "llama-3-8b", ())
    start = now - timedelta(hours=1)
    coarse = metrics.deployment_series(ref, start=start, end=now, step_seconds=300)
    fine = metrics.deployment_series(ref, start=start, end=now, step_seconds=60)
    assert set(coarse) >= {
        "ttft_p50",
        "ttft_p95",
        "ttft_p99",
        "queue_depth",
        "running",
        "kv_cache_usage",
        "gpu_utilization",
        "generation_tokens_per_second",
        "prompt_tokens_per_second",
    }
    assert coarse["ttft_p95"].unit == "s" and coarse["kv_cache_usage"].unit == "fraction"
    assert coarse["queue_depth"].unit == "requests" and coarse["prompt_tokens_per_second"].unit == "tokens/s"
    assert coarse["replicas_ready"].unit == "replicas"
    assert len(coarse["ttft_p95"].timestamps) == 13 and len(fine["ttft_p95"].timestamps) == 61
    window = fine["gpu_utilization"].values[-5:]
    assert coarse["gpu_utilization"].values[-1] == pytest.approx(sum(window) / 5)
    with pytest.raises(BackendError):
        metrics.deployment_series(DeploymentRef("llm-prod", "missing", ()), start=start, end=now, step_seconds=60)


def test_it_leaves_gaps_where_there_is_no_history():
    rows = [{"at": 120, "x": 1.0}, {"at": 180, "x": 3.0}]
    assert downsample(rows, "x", 0, 240, 120) == ([0, 120, 240], [None, 1.0, 3.0])
    assert downsample(rows, "x", 150, 200, 15) == ([150, 165, 180, 195], [1.0, 1.0, 3.0, 3.0])


def test_it_reads_gpu_utilization_per_gpu_and_slice(metrics, cluster):
    snapshot = cluster.snapshot()
    mig3 = next(n for n in snapshot.nodes if n.mig_config == "all-3g.40gb")
    h100 = next(n for n in snapshot.nodes if n.node_pool == "h100-p5")
    readings = metrics.gpu_utilization([mig3.name, h100.name])
    slices = [r for r in readings if r.node_name == mig3.name]
    gpus = [r for r in readings if r.node_name == h100.name]
    assert len(slices) == 16 and all(r.mig_profile == "3g.40gb" for r in slices)
    assert len(gpus) == 8 and all(r.mig_profile is None and r.power_watts > 0 for r in gpus)
    assert sum(1 for r in slices if r.utilization > 0) == 2


def test_it_exposes_token_counters_and_minute_history_for_costing(metrics, now):
    prompt, generation = metrics.deployment_token_counters("llm-prod", "llama-3-8b")
    history = metrics.deployment_minutes("llm-prod", "llama-3-8b")
    assert history[-1]["at"] == now and len(history) == 180
    assert history[-1]["generation_tokens_total"] == generation and history[-1]["prompt_tokens_total"] == prompt
    assert history[-1]["cost_per_hour_usd"] > 0 and history[-1]["gpus_allocated"] >= 2
    assert metrics.deployment_token_counters("team-search", "bge-embed")[1] == 0
    pools = metrics.node_pool_history()
    assert pools["a100-p4de"][-1]["nodes"] == 4


def test_it_runs_read_modify_write_inside_the_store_lock(store, clock):
    from contextlib import contextmanager

    entered = []

    @contextmanager
    def atomic():
        entered.append("in")
        yield

    store.atomic = atomic
    cluster = SimulatedClusterBackend(store, clock=clock)
    cluster.snapshot()
    cluster.scale_deployment("team-search", "mistral-7b", 3)
    assert entered == ["in", "in"]
