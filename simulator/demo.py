"""The demo world: a small AWS GPU cluster serving five models, a day into its life.

Prices are AWS us-east-1 on-demand list prices per instance-hour (p4de.24xlarge $40.97,
p5.48xlarge $98.32 before the mid-2025 P5 price cut; g5.xlarge $1.006 on-demand, about
$0.42 as spot). Traffic follows working hours in each team's timezone, with bursts, so the
8B model's queue builds now and then and KEDA has something to react to. Cold starts (image
pull + weight load) run 2-8 minutes, a cached image cutting the pull to seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .autoscalers import Autoscaler
from .capacity import ReplicaCapacity
from .objects import Deployment, NodePool
from .traffic import Diurnal, Traffic
from .world import World

ZONES = ["us-east-1a", "us-east-1b"]


def demo_pools() -> list[tuple[NodePool, list[str | None]]]:
    return [
        (
            NodePool(
                "a100-p4de",
                "p4de.24xlarge",
                "NVIDIA-A100-SXM4-80GB",
                8,
                81920,
                "on-demand",
                40.97,
                min_nodes=4,
                max_nodes=6,
                provisioning_seconds=14 * 60,
                zones=ZONES,
            ),
            [None, None, "all-1g.10gb", "all-3g.40gb"],
        ),
        (
            NodePool(
                "h100-p5",
                "p5.48xlarge",
                "NVIDIA-H100-80GB-HBM3",
                8,
                81559,
                "on-demand",
                98.32,
                min_nodes=2,
                max_nodes=3,
                provisioning_seconds=20 * 60,
                zones=ZONES,
            ),
            [],
        ),
        (
            NodePool(
                "g5-spot",
                "g5.xlarge",
                "NVIDIA-A10G",
                1,
                23028,
                "spot",
                0.42,
                min_nodes=4,
                max_nodes=8,
                provisioning_seconds=6 * 60,
                zones=ZONES,
                on_demand_price_per_hour_usd=1.006,
            ),
            [],
        ),
    ]


def _vllm(
    namespace: str,
    name: str,
    model: str,
    image: str,
    resource: str,
    count: int,
    replicas: int,
    capacity: ReplicaCapacity,
    traffic: Diurnal,
    pool: str,
    pull: int,
    load: int,
    **manifest,
) -> Deployment:
    settings = {
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.9,
        "termination_grace_seconds": 600,
        "liveness_initial_delay_seconds": 2 * (pull + load),
        "readiness_initial_delay_seconds": 60,
        "max_unavailable": "0",
        "max_surge": "1",
        "has_pre_stop": True,
        "tolerates_gpu_taint": True,
        "spreads_across_nodes": True,
    }
    settings.update(manifest)
    tp = settings.pop("tensor_parallel", 1)
    return Deployment(
        namespace,
        name,
        model,
        image,
        resource,
        count,
        replicas,
        capacity,
        Traffic(traffic),
        node_pool=pool,
        tensor_parallel=tp,
        image_pull_seconds=pull,
        weight_load_seconds=load,
        manifest=settings,
        labels={"app.kubernetes.io/name": name, "app.kubernetes.io/component": "vllm"},
    )


def demo_deployments() -> list[tuple[Deployment, Autoscaler | None]]:
    return [
        (
            _vllm(
                "llm-prod",
                "llama-3-8b",
                "meta-llama/Meta-Llama-3-8B-Instruct",
                "vllm/vllm-openai:v0.8.5",
                "nvidia.com/gpu",
                1,
                2,
                ReplicaCapacity(128, 20_000, 60, 1150, 210, 420_000),
                Diurnal(19, 0.3, 14, -5, noise=0.1, bursts_per_hour=0.35, burst_multiplier=1.9),
                "a100-p4de",
                75,
                150,
                termination_grace_seconds=30,
                max_unavailable="25%",
                max_surge="25%",
                has_pre_stop=False,
            ),
            Autoscaler(
                "keda",
                "llm-prod",
                "llama-3-8b",
                "llama-3-8b",
                2,
                12,
                "queue_depth",
                5.0,
                polling_interval_s=30,
                cooldown_s=300,
                scale_down_max_pods=1,
                scale_down_period_s=120,
            ),
        ),
        (
            _vllm(
                "llm-prod",
                "llama-3-70b",
                "meta-llama/Meta-Llama-3-70B-Instruct",
                "vllm/vllm-openai:v0.6.3.post1",
                "nvidia.com/gpu",
                4,
                1,
                ReplicaCapacity(64, 8_000, 35, 1500, 300, 300_000),
                Diurnal(4.5, 0.25, 15, -5, noise=0.12, bursts_per_hour=0.15, burst_multiplier=1.5),
                "h100-p5",
                90,
                360,
                tensor_parallel=4,
            ),
            Autoscaler(
                "hpa", "llm-prod", "llama-3-70b", "llama-3-70b", 1, 4, "gpu_utilization", 0.7, polling_interval_s=15
            ),
        ),
        (
            _vllm(
                "team-search",
                "mistral-7b",
                "mistralai/Mistral-7B-Instruct-v0.3",
                "vllm/vllm-openai:v0.7.3",
                "nvidia.com/mig-3g.40gb",
                1,
                2,
                ReplicaCapacity(48, 7_000, 45, 700, 160, 150_000),
                Diurnal(6, 0.2, 13, 1, noise=0.1),
                "a100-p4de",
                60,
                140,
            ),
            None,
        ),
        (
            _vllm(
                "team-search",
                "bge-embed",
                "BAAI/bge-large-en-v1.5",
                "vllm/vllm-openai:v0.8.5",
                "nvidia.com/mig-1g.10gb",
                1,
                4,
                ReplicaCapacity(64, 9_000, 1, 300, 0, 60_000),
                Diurnal(40, 0.2, 13, 1, noise=0.1, bursts_per_hour=0.2),
                "a100-p4de",
                60,
                120,
                max_model_len=512,
            ),
            None,
        ),
        (
            _vllm(
                "llm-dev",
                "qwen-2.5-1.5b",
                "Qwen/Qwen2.5-1.5B-Instruct",
                "vllm/vllm-openai:v0.6.3.post1",
                "nvidia.com/gpu",
                1,
                3,
                ReplicaCapacity(64, 9_000, 70, 600, 180, 200_000),
                Diurnal(3, 0.1, 11, -8, noise=0.2),
                "g5-spot",
                60,
                120,
                max_model_len=4096,
                gpu_memory_utilization=0.85,
            ),
            # CPU-based HPA on a GPU workload: it never scales (the classic trap, kept for the lint).
            Autoscaler(
                "hpa", "llm-dev", "qwen-2.5-1.5b", "qwen-2.5-1.5b", 3, 4, "cpu_utilization", 0.6, polling_interval_s=15
            ),
        ),
    ]


DEMO_QUOTAS = [
    ("llm-prod", "gpu-quota", {"requests.nvidia.com/gpu": 40}),
    ("team-search", "gpu-quota", {"requests.nvidia.com/mig-3g.40gb": 8, "requests.nvidia.com/mig-1g.10gb": 14}),
    ("llm-dev", "gpu-quota", {"requests.nvidia.com/gpu": 4}),
]


def demo_world(*, seed: int = 7, now: datetime, warmup_hours: float = 24) -> World:
    """The demo cluster with `warmup_hours` of history already behind `now`."""
    world = World(seed=seed, now=now - timedelta(hours=warmup_hours))
    for pool, layouts in demo_pools():
        world.add_pool(pool, mig_layouts=layouts)
    for namespace, name, hard in DEMO_QUOTAS:
        world.add_quota(namespace, name, hard)
    for deployment, autoscaler in demo_deployments():
        world.add_deployment(deployment, autoscaler=autoscaler)
    world.advance_to(now)
    return world
