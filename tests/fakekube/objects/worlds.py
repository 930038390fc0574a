"""Whole clusters: `realistic_cluster()` covers every case the backend interprets, `big_cluster()` is the
2,000-node / 16,000-GPU / 500-deployment world of the benchmarks."""

from __future__ import annotations

from tests.fakekube.objects.autoscalers import hpa, keda_hpa, scaled_object
from tests.fakekube.objects.base import name_suffix
from tests.fakekube.objects.capacity import nodepool, resource_quota
from tests.fakekube.objects.nodes import cpu_node, gpu_node
from tests.fakekube.objects.workloads import (
    deployment,
    gpu_container,
    plain_container,
    pod,
    pods_of,
    replicaset,
    vllm_container,
)

LLAMA_70B = "meta-llama/Meta-Llama-3-70B-Instruct"
MISTRAL_7B = "mistralai/Mistral-7B-Instruct-v0.3"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"


def realistic_cluster() -> list[dict]:
    """A small cluster covering every case the backend interprets (names are stable, tests use them).

    Nodes: h100-a (Karpenter on-demand), h100-b (Karpenter spot, cordoned), a100-mig (EKS node
    group, MIG all-1g.10gb, beta instance label only), gke-l4 (GKE spot, MIG all-disabled, not
    ready), aks-a100 (AKS spot), cpu-1 (no GPU).
    team-a/llama-3-70b: TP=4 `vllm serve`, HPA, one pod ready and one waiting for a node, an old
    ReplicaSet. team-b/mistral-7b: MIG slices (limits only), `python -m vllm...`, a ScaledObject
    with paused-replicas and KEDA's own HPA, pods pulling / loading / ready. team-b/qwen: both an
    HPA and a ScaledObject (a conflict), a crash-looping pod. research: a Job pod and a bare pod
    holding GPUs. kube-system: coredns (no GPU: left out). Quotas in team-a and team-b; Karpenter
    NodePools gpu-h100 and gpu-a10g.
    """
    nodes = [
        gpu_node("h100-a"),
        gpu_node("h100-b", capacity_type="spot", unschedulable=True, zone="us-east-1b"),
        gpu_node(
            "a100-mig",
            product="NVIDIA-A100-SXM4-80GB",
            memory_mib=81920,
            instance_type="p4de.24xlarge",
            provider="eks",
            pool="a100-mig-group",
            mig_config="all-1g.10gb",
            mig_devices={"1g.10gb": 56},
            beta_instance_label_only=True,
        ),
        gpu_node(
            "gke-l4",
            product="NVIDIA-L4",
            gpus=4,
            memory_mib=23034,
            instance_type="g2-standard-48",
            provider="gke",
            pool="l4-pool",
            capacity_type="spot",
            zone="us-central1-a",
            region="us-central1",
            mig_config="all-disabled",
            ready=False,
        ),
        gpu_node(
            "aks-a100",
            product="NVIDIA-A100-PCIE-80GB",
            gpus=4,
            memory_mib=81920,
            instance_type="Standard_NC96ads_A100_v4",
            provider="aks",
            pool="gpupool",
            capacity_type="spot",
            zone="eastus-1",
            region="eastus",
        ),
        cpu_node("cpu-1"),
    ]

    llama = deployment(
        "team-a",
        "llama-3-70b",
        containers=[
            vllm_container(
                model=LLAMA_70B,
                tp=4,
                max_model_len=8192,
                gpu_memory_utilization=0.92,
                liveness_delay=600,
                readiness_delay=120,
            )
        ],
        replicas=2,
        ready=1,
        updated=2,
        available=1,
        max_unavailable=0,
        max_surge=1,
        grace=120,
        labels={"app.kubernetes.io/name": "llama-3-70b", "team": "a"},
    )
    llama_rs = replicaset(llama)
    llama_old_rs = replicaset(llama, revision=2, replicas=0)
    llama_pods = pods_of(llama, llama_rs, [("ready", "h100-a", ""), ("unscheduled", "", "")])

    mistral = deployment(
        "team-b",
        "mistral-7b",
        containers=[
            vllm_container(
                model=MISTRAL_7B,
                style="module",
                gpu_resource="nvidia.com/mig-1g.10gb",
                gpus=1,
                limits_only=True,
                extra_args=["-tp", "1"],
            )
        ],
        replicas=3,
        ready=1,
    )
    mistral_rs = replicaset(mistral)
    mistral_pods = pods_of(
        mistral,
        mistral_rs,
        [("ready", "a100-mig", ""), ("waiting", "a100-mig", "ContainerCreating"), ("running", "a100-mig", "")],
    )
    mistral_so = scaled_object(
        "team-b", "mistral-7b", target="mistral-7b", min_replicas=1, max_replicas=8, paused_replicas="3"
    )

    qwen_container = vllm_container(model="$(MODEL_ID)", style="flag", max_model_len="32k")
    qwen_container["env"].append({"name": "MODEL_ID", "value": QWEN_7B})
    qwen = deployment(
        "team-b",
        "qwen",
        containers=[qwen_container],
        replicas=1,
        ready=0,
        strategy_type="Recreate",
        progressing_reason="ProgressDeadlineExceeded",
    )
    qwen_rs = replicaset(qwen)
    qwen_pods = pods_of(qwen, qwen_rs, [("waiting", "aks-a100", "CrashLoopBackOff")])
    qwen_hpa = hpa(
        "team-b",
        "qwen-cpu",
        target="qwen",
        min_replicas=None,
        max_replicas=3,
        metrics=[
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ],
    )
    qwen_so = scaled_object(
        "team-b", "qwen", target="qwen", min_replicas=None, max_replicas=None, paused="true", target_kind="Deployment"
    )

    coredns = deployment("kube-system", "coredns", containers=[plain_container()], replicas=2, ready=2)
    coredns_rs = replicaset(coredns)
    coredns_pods = pods_of(coredns, coredns_rs, [("ready", "cpu-1", ""), ("ready", "cpu-1", "")])

    job_pod = pod(
        "research",
        "finetune-8b-x7k2p",
        containers=[gpu_container("trainer", gpus=8)],
        owner=("Job", "finetune-8b"),
        node="h100-b",
        state="ready",
    )
    bare_pod = pod("research", "debug-gpu", containers=[gpu_container(gpus=1)], node="aks-a100", state="ready")
    dcgm_pod = pod(
        "gpu-operator",
        "nvidia-dcgm-exporter-4xk2z",
        containers=[plain_container("exporter", "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9")],
        owner=("DaemonSet", "nvidia-dcgm-exporter"),
        node="h100-a",
        state="ready",
    )

    return [
        *nodes,
        llama,
        llama_rs,
        llama_old_rs,
        *llama_pods,
        hpa("team-a", "llama-3-70b", target="llama-3-70b", min_replicas=2, max_replicas=6),
        mistral,
        mistral_rs,
        *mistral_pods,
        mistral_so,
        keda_hpa(mistral_so),
        qwen,
        qwen_rs,
        *qwen_pods,
        qwen_hpa,
        qwen_so,
        coredns,
        coredns_rs,
        *coredns_pods,
        job_pod,
        bare_pod,
        dcgm_pod,
        resource_quota(
            "team-a",
            "gpu-quota",
            hard={"requests.nvidia.com/gpu": "16", "requests.cpu": "256", "pods": "100"},
            used={"requests.nvidia.com/gpu": "4", "requests.cpu": "8", "pods": "2"},
        ),
        resource_quota(
            "team-b",
            "gpu-quota",
            hard={"requests.nvidia.com/mig-1g.10gb": "14", "nvidia.com/gpu": "2", "limits.memory": "1Ti"},
            status=False,
        ),
        nodepool("gpu-h100", instance_types=("p5.48xlarge", "p5e.48xlarge"), gpu_limit=64, consolidation="WhenEmpty"),
        nodepool(
            "gpu-a10g",
            instance_types=("g5.12xlarge",),
            capacity_types=("spot",),
            capacity_operator="NotIn",
            gpu_limit=None,
            consolidation="WhenEmptyOrUnderutilized",
        ),
    ]


DAEMONSETS = (
    "nvidia-device-plugin",
    "nvidia-dcgm-exporter",
    "gpu-feature-discovery",
    "kube-proxy",
    "aws-node",
    "node-exporter",
)


def big_cluster(nodes: int = 2000, gpus_per_node: int = 8, deployments: int = 500) -> list[dict]:
    """A large GPU cluster: `nodes` Karpenter GPU nodes (1 in 8 spot), `deployments` vLLM
    deployments across 20 team namespaces using ~80% of the GPUs (1/2/4/8 GPUs per replica),
    each with its current ReplicaSet and 2 old ones; one DaemonSet pod per node for each of six
    node agents; an HPA on every other deployment and a ScaledObject (+ KEDA's HPA) on the rest;
    a GPU quota per namespace and 4 NodePools. Returns one flat list of objects for `load()`."""
    objects: list[dict] = []
    node_names = [f"ip-10-{i // 250}-{i % 250}-{(i * 7) % 250}.ec2.internal" for i in range(nodes)]
    pools = ("gpu-h100", "gpu-h100-spot", "gpu-a100", "gpu-l40s")
    for i, name in enumerate(node_names):
        pool = pools[i % len(pools)]
        objects.append(
            gpu_node(
                name,
                gpus=gpus_per_node,
                pool=pool,
                capacity_type="spot" if i % 8 == 0 else "on-demand",
                zone=("us-east-1a", "us-east-1b", "us-east-1c")[i % 3],
            )
        )
        for ds in DAEMONSETS:
            objects.append(
                pod(
                    "kube-system" if ds in ("kube-proxy", "aws-node") else "gpu-operator",
                    f"{ds}-{name_suffix(i)}",
                    containers=[plain_container(ds, f"registry.example.com/{ds}:v1")],
                    owner=("DaemonSet", ds),
                    node=name,
                    state="ready",
                )
            )
    budget = int(nodes * gpus_per_node * 0.8) // max(deployments, 1)
    free = [(name, gpus_per_node) for name in node_names]
    cursor = 0
    namespaces = [f"team-{i:02d}" for i in range(20)]
    for i in range(deployments):
        ns = namespaces[i % len(namespaces)]
        gpus = (1, 2, 4, 8)[i % 4]
        replicas = max(1, budget // gpus)
        name = f"model-{i:03d}"
        dep = deployment(
            ns,
            name,
            containers=[
                vllm_container(
                    model=f"org/model-{i}", tp=gpus, max_model_len=8192, liveness_delay=300, readiness_delay=60
                )
            ],
            replicas=replicas,
            ready=replicas,
            max_unavailable=0,
            max_surge=1,
            grace=60,
        )
        rs = replicaset(dep)
        objects += [dep, rs, replicaset(dep, revision=2, replicas=0), replicaset(dep, revision=1, replicas=0)]
        states = []
        for _ in range(replicas):
            while cursor < len(free) and free[cursor][1] < gpus:
                cursor += 1
            if cursor < len(free):
                node_name, left = free[cursor]
                free[cursor] = (node_name, left - gpus)
                states.append(("ready", node_name, ""))
            else:
                states.append(("unscheduled", "", ""))
        objects += pods_of(dep, rs, states)
        if i % 2:
            objects.append(hpa(ns, name, target=name, min_replicas=1, max_replicas=replicas * 2))
        else:
            so = scaled_object(ns, name, target=name, min_replicas=1, max_replicas=replicas * 2)
            objects += [so, keda_hpa(so)]
    for ns in namespaces:
        objects.append(
            resource_quota(
                ns, "gpu-quota", hard={"requests.nvidia.com/gpu": "1000"}, used={"requests.nvidia.com/gpu": "640"}
            )
        )
    objects += [nodepool(p) for p in pools]
    return objects
