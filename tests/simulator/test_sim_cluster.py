from datetime import timedelta

from simulator import Autoscaler, Constant, Deployment, NodePool, ReplicaCapacity, Traffic, World
from simulator.objects import LAUNCHING, LOADING, PENDING, PULLING, READY


def _small_world(now, *, replicas: int) -> World:
    world = World(seed=1, now=now)
    world.add_pool(
        NodePool(
            "h100",
            "p5.48xlarge",
            "NVIDIA-H100-80GB-HBM3",
            8,
            81559,
            "on-demand",
            98.32,
            min_nodes=1,
            max_nodes=2,
            provisioning_seconds=600,
            zones=["us-east-1a"],
            consolidate_after_seconds=300,
        )
    )
    world.add_deployment(
        Deployment(
            "llm",
            "big",
            "meta-llama/Meta-Llama-3-70B-Instruct",
            "vllm/vllm-openai:v0.8.5",
            "nvidia.com/gpu",
            4,
            replicas,
            ReplicaCapacity(),
            Traffic(Constant(1.0)),
            node_pool="h100",
            tensor_parallel=4,
            image_pull_seconds=90,
            weight_load_seconds=300,
        )
    )
    return world


def test_it_waits_for_a_node_when_the_pool_is_full_and_provisions_one_after_the_delay(now):
    world = _small_world(now, replicas=2)
    world.scale_deployment("llm", "big", 3)
    world.advance_to(now + timedelta(seconds=15))
    waiting = [p for p in world.pods_of("llm", "big") if not p.node]
    assert len(waiting) == 1 and waiting[0].status == PENDING
    launching = [n for n in world.nodes.values() if n.status == LAUNCHING]
    assert len(launching) == 1
    assert 510 <= launching[0].ready_at - launching[0].launched_at <= 690  # 10 min, +-15%

    world.advance_to(now + timedelta(minutes=8))
    assert not waiting[0].node  # the node is not ready yet
    world.advance_to(now + timedelta(minutes=12))
    assert waiting[0].node == launching[0].name
    assert waiting[0].status in (PULLING, LOADING)
    world.advance_to(now + timedelta(minutes=20))
    assert waiting[0].status == READY
    assert world.deployment("llm", "big").ready_replicas == 3
    assert [e[1] for e in world.events if launching[0].name in e[2]][:2] == ["Launched", "NodeReady"]


def test_it_never_grows_a_pool_past_its_max(now):
    world = _small_world(now, replicas=2)
    world.scale_deployment("llm", "big", 8)
    world.advance_to(now + timedelta(minutes=30))
    assert len(world.nodes) == 2
    assert sum(1 for p in world.pods_of("llm", "big") if not p.node) == 4


def test_it_consolidates_an_empty_node_after_the_delay(now):
    world = _small_world(now, replicas=2)
    world.scale_deployment("llm", "big", 3)
    world.advance_to(now + timedelta(minutes=20))
    assert len(world.nodes) == 2
    world.scale_deployment("llm", "big", 2)  # deletes the newest pod: the one on the new node
    world.advance_to(now + timedelta(minutes=24))
    assert len(world.nodes) == 2
    world.advance_to(now + timedelta(minutes=26))
    assert len(world.nodes) == 1
    assert any(e[1] == "Consolidated" for e in world.events)


def test_it_binds_whole_gpus_by_index_and_bin_packs(now):
    world = _small_world(now, replicas=2)
    (node,) = world.nodes.values()
    held = sorted(tuple(d) for p in world.pods_of("llm", "big") for d in p.devices)
    assert held == [(i, None, None) for i in range(8)]
    assert {p.node for p in world.pods_of("llm", "big")} == {node.name}


def test_it_puts_mistral_on_3g_slices_of_the_all_3g_node(demo):
    (mig3,) = [n for n in demo.nodes.values() if n.mig_layout == "all-3g.40gb"]
    pods = demo.pods_of("team-search", "mistral-7b")
    assert len(pods) == 2
    for pod in pods:
        assert pod.node == mig3.name
        ((gpu, profile, instance_id),) = pod.devices
        assert profile == "3g.40gb" and 0 <= gpu < 8 and instance_id in (1, 2)
    assert len({tuple(p.devices[0]) for p in pods}) == 2
    (mig1,) = [n for n in demo.nodes.values() if n.mig_layout == "all-1g.10gb"]
    embed = demo.pods_of("team-search", "bge-embed")
    assert {p.node for p in embed} == {mig1.name}
    assert all(p.devices[0][1] == "1g.10gb" for p in embed)


def test_it_reads_gpu_and_slice_utilization_with_their_holders(demo):
    readings = demo.gpu_readings()
    by_node = {}
    for r in readings:
        by_node.setdefault(r.node, []).append(r)
    (mig1,) = [n for n in demo.nodes.values() if n.mig_layout == "all-1g.10gb"]
    slices = by_node[mig1.name]
    assert len(slices) == 56
    held = [r for r in slices if r.pod]
    assert len(held) == 4 and all(r.deployment == "team-search/bge-embed" for r in held)
    assert all(r.utilization > 0 for r in held)
    assert all(r.utilization == 0 and r.memory_used_mib == 0 for r in slices if not r.pod)
    assert all(r.power_watts is None for r in slices)


def test_it_refuses_pods_beyond_the_namespace_quota(demo, now):
    demo.scale_deployment("team-search", "mistral-7b", 10)
    demo.advance_to(now + timedelta(minutes=1))
    dep = demo.deployment("team-search", "mistral-7b")
    assert len(demo.pods_of("team-search", "mistral-7b")) == 8
    assert "exceeded quota: gpu-quota" in dep.failed_create
    quota = demo.quota("team-search", "gpu-quota")
    assert quota.used["requests.nvidia.com/mig-3g.40gb"] == 8
    assert any(e[1] == "FailedCreate" for e in demo.events)

    demo.set_quota("team-search", "gpu-quota", dict(quota.hard, **{"requests.nvidia.com/mig-3g.40gb": 10}))
    demo.advance_to(now + timedelta(minutes=2))
    assert len(demo.pods_of("team-search", "mistral-7b")) == 10
    assert dep.failed_create == ""


def test_it_repartitions_a_node_and_evicts_its_gpu_pods(demo, now):
    (mig3,) = [n for n in demo.nodes.values() if n.mig_layout == "all-3g.40gb"]
    before = mig3.resource_version
    demo.set_mig_config(mig3.name, "all-balanced")
    assert mig3.resource_version > before
    demo.advance_to(now + timedelta(minutes=5))
    pods = demo.pods_of("team-search", "mistral-7b")
    assert len(pods) == 2 and all(p.node == mig3.name for p in pods)
    assert all(p.devices[0][1] == "3g.40gb" for p in pods)  # one 3g slice per GPU now
    assert len({p.devices[0][0] for p in pods}) == 2


def test_it_holds_an_hpa_on_cpu_still_however_busy_the_gpus_are(now):
    world = _small_world(now, replicas=1)
    world.add_deployment(
        Deployment(
            "llm",
            "small",
            "Qwen/Qwen2.5-1.5B-Instruct",
            "vllm/vllm-openai:v0.8.5",
            "nvidia.com/gpu",
            1,
            1,
            ReplicaCapacity(),
            Traffic(Constant(60.0)),
            node_pool="h100",
        ),
        autoscaler=Autoscaler("hpa", "llm", "small", "small", 1, 4, "cpu_utilization", 0.6, polling_interval_s=15),
    )
    world.advance_to(now + timedelta(minutes=10))
    dep = world.deployment("llm", "small")
    assert dep.queue > 100 and dep.last["gpu_utilization"] > 0.95
    assert dep.replicas == 1
