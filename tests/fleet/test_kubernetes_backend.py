"""The Kubernetes backend against a fake Kubernetes API over real HTTP.

The official client does the talking; the fake server answers like an API server and records
every request, so these tests assert on what is really sent (paths, verbs, content types,
bodies) and on what comes back as ScaleDeck's dataclasses. No database.
Here: what a snapshot reads (nodes, deployments, pods, autoscalers, quotas, node pools, CRDs).
What is sent and how failures read: test_kubernetes_requests.py; writes: test_kubernetes_writes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet.backends.base import Taint
from fleet.backends.kubernetes.objects import pod_gpu_requests
from fleet.backends.kubernetes.vllm_args import serving_facts
from tests.fakekube import objects as o
from tests.fleet.kube_helpers import backend, by_name

# --------------------------------------------------------------------------- nodes


def test_it_reads_a_karpenter_gpu_node(snap):
    node = by_name(snap.nodes, "h100-a")
    assert node.instance_type == "p5.48xlarge"
    assert (node.zone, node.region) == ("us-east-1a", "us-east-1")
    assert (node.node_pool, node.capacity_type) == ("gpu-h100", "on-demand")
    assert (node.gpu_product, node.gpu_count, node.gpu_memory_mib) == ("NVIDIA-H100-80GB-HBM3", 8, 81559)
    assert (node.mig_config, node.mig_strategy) == (None, None)
    # Only nvidia.com/* entries, as ints: no cpu, memory, pods or EFA.
    assert node.capacity == {"nvidia.com/gpu": 8}
    assert node.allocatable == {"nvidia.com/gpu": 8}
    assert node.ready is True and node.unschedulable is False
    assert node.taints == (Taint("nvidia.com/gpu", "true", "NoSchedule"),)
    assert node.created_at == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_it_reads_a_mig_node_whose_gpu_capacity_is_zero(snap):
    node = by_name(snap.nodes, "a100-mig")
    assert node.gpu_count == 8  # physical GPUs, from the label, though nvidia.com/gpu is 0
    assert node.capacity == {"nvidia.com/gpu": 0, "nvidia.com/mig-1g.10gb": 56}
    assert node.mig_devices == {"1g.10gb": 56}
    assert (node.mig_config, node.mig_strategy) == ("all-1g.10gb", "mixed")
    assert node.instance_type == "p4de.24xlarge"  # from the beta label
    assert (node.node_pool, node.capacity_type) == ("a100-mig-group", "on-demand")  # an EKS node group


def test_it_treats_mig_all_disabled_as_mig_off(snap):
    node = by_name(snap.nodes, "gke-l4")
    assert (node.mig_config, node.mig_strategy) == (None, None)
    assert node.ready is False


@pytest.mark.parametrize(
    ("provider", "capacity_type", "pool", "expected"),
    [
        ("karpenter", "spot", "gpu-h100", "spot"),
        ("eks", "spot", "ng-gpu", "spot"),
        ("eks", "on-demand", "ng-gpu", "on-demand"),
        ("gke", "spot", "l4-pool", "spot"),
        ("gke", "preemptible", "l4-pool", "spot"),
        ("gke", "on-demand", "l4-pool", "on-demand"),
        ("aks", "spot", "gpupool", "spot"),
        ("aks", "on-demand", "gpupool", "on-demand"),
    ],
)
def test_it_reads_node_pools_and_spot_from_each_clouds_labels(
    fake_kube, fake_kubeconfig, provider, capacity_type, pool, expected
):
    fake_kube.load(o.gpu_node("n1", provider=provider, capacity_type=capacity_type, pool=pool))
    node = backend(fake_kubeconfig).snapshot().nodes[0]
    assert (node.node_pool, node.capacity_type) == (pool, expected)


def test_it_reads_cordoned_nodes_and_their_taints(snap):
    node = by_name(snap.nodes, "h100-b")
    assert node.unschedulable is True
    assert node.capacity_type == "spot"
    assert Taint("node.kubernetes.io/unschedulable", "", "NoSchedule") in node.taints


def test_it_keeps_nodes_without_gpus(snap):
    node = by_name(snap.nodes, "cpu-1")
    assert (node.gpu_product, node.gpu_count, node.capacity) == ("", 0, {})


def test_it_counts_gpus_from_capacity_without_feature_discovery_labels(fake_kube, fake_kubeconfig):
    node = o.gpu_node("plain")
    for key in [k for k in node["metadata"]["labels"] if k.startswith("nvidia.com/")]:
        del node["metadata"]["labels"][key]
    fake_kube.load(node)
    facts = backend(fake_kubeconfig).snapshot().nodes[0]
    assert (facts.gpu_count, facts.gpu_product) == (8, "")


# --------------------------------------------------------------------------- deployments


def test_it_reads_a_tensor_parallel_vllm_deployment(snap):
    d = by_name(snap.deployments, "llama-3-70b")
    assert d.namespace == "team-a"
    assert d.model == "meta-llama/Meta-Llama-3-70B-Instruct"
    assert d.image == "vllm/vllm-openai:v0.8.5"
    assert (d.replicas_desired, d.replicas_ready, d.replicas_updated, d.replicas_available) == (2, 1, 2, 1)
    assert (d.gpu_resource, d.gpu_per_replica, d.tensor_parallel) == ("nvidia.com/gpu", 4, 4)
    assert (d.max_model_len, d.gpu_memory_utilization) == (8192, 0.92)
    assert d.rollout_condition == "Progressing: NewReplicaSetAvailable"
    assert d.termination_grace_seconds == 120
    assert (d.liveness_initial_delay_seconds, d.readiness_initial_delay_seconds) == (600, 120)
    assert (d.max_unavailable, d.max_surge) == ("0", "1")
    assert d.resource_version
    assert d.labels == {"app.kubernetes.io/name": "llama-3-70b", "team": "a"}


def test_it_fills_kubernetes_defaults_for_a_mig_deployment(snap):
    d = by_name(snap.deployments, "mistral-7b")
    assert d.model == "mistralai/Mistral-7B-Instruct-v0.3"  # python -m vllm.entrypoints... --model=X
    assert (d.gpu_resource, d.gpu_per_replica) == ("nvidia.com/mig-1g.10gb", 1)  # from limits only
    assert d.termination_grace_seconds == 30
    assert (d.max_unavailable, d.max_surge) == ("25%", "25%")
    assert (d.liveness_initial_delay_seconds, d.readiness_initial_delay_seconds) == (None, None)
    assert (d.tensor_parallel, d.max_model_len, d.gpu_memory_utilization) == (1, None, None)


def test_it_expands_env_references_in_args_and_reads_recreate_rollouts(snap):
    d = by_name(snap.deployments, "qwen")
    assert d.model == "Qwen/Qwen2.5-7B-Instruct"  # args ["--model", "$(MODEL_ID)"], env MODEL_ID
    assert d.max_model_len == 32000  # "32k"
    assert (d.max_unavailable, d.max_surge) == ("100%", "0")  # Recreate: every pod goes down first
    assert d.rollout_condition == "Progressing: ProgressDeadlineExceeded"


def vllm(command=None, args=(), image="vllm/vllm-openai:v0.8.5", env=()):
    container = {"name": "c", "image": image, "args": list(args), "env": list(env)}
    if command is not None:
        container["command"] = command
    return container


@pytest.mark.parametrize(
    ("container", "model", "tp", "max_len", "gmu"),
    [
        (vllm(["vllm", "serve", "m/a", "--tensor-parallel-size", "4"]), "m/a", 4, None, None),
        (vllm(["/usr/local/bin/vllm", "serve"], ["m/b", "-tp", "2"]), "m/b", 2, None, None),
        (vllm(None, ["--model", "m/c", "--tensor-parallel-size=8", "--max-model-len", "32K"]), "m/c", 8, 32768, None),
        (vllm(None, ["m/d", "--gpu-memory-utilization", "0.85"]), "m/d", 1, None, 0.85),
        (
            vllm(["python3", "-m", "vllm.entrypoints.openai.api_server"], ["--model=m/e"], image="acme/llm:1"),
            "m/e",
            1,
            None,
            None,
        ),
        (
            vllm(
                ["/bin/sh", "-c"],
                ["pip install x && exec vllm serve ${MODEL} --max-model-len 4096"],
                env=[{"name": "MODEL", "value": "m/f"}],
                image="acme/llm:1",
            ),
            "m/f",
            1,
            4096,
            None,
        ),
        (
            vllm(["text-generation-launcher"], ["--model-id", "m/g"], image="ghcr.io/huggingface/tgi:2"),
            "",
            1,
            None,
            None,
        ),
        (vllm(["sleep", "infinity"], image="busybox:1.36"), "", 1, None, None),
    ],
)
def test_it_reads_vllm_command_lines(container, model, tp, max_len, gmu):
    facts = serving_facts(container)
    assert (facts.model, facts.tensor_parallel, facts.max_model_len, facts.gpu_memory_utilization) == (
        model,
        tp,
        max_len,
        gmu,
    )
    assert facts.problems == ()


def test_it_reports_vllm_arguments_it_cannot_read():
    facts = serving_facts(
        vllm(["vllm", "serve", "m/x", "-tp", "four", "--max-model-len", "long", "--gpu-memory-utilization", "2"])
    )
    assert (facts.model, facts.tensor_parallel, facts.max_model_len, facts.gpu_memory_utilization) == (
        "m/x",
        1,
        None,
        None,
    )
    assert len(facts.problems) == 3


def test_it_reads_the_precision_vllm_is_told_to_load_in():
    facts = serving_facts(vllm(["vllm", "serve", "m/x", "--dtype=BFloat16", "-q", "awq_marlin"]))
    assert (facts.dtype, facts.quantization, facts.problems) == ("bfloat16", "awq_marlin", ())
    assert (
        serving_facts(vllm(["vllm", "serve", "m/x"])).dtype,
        serving_facts(vllm(["vllm", "serve", "m/x"])).quantization,
    ) == ("", "")
    odd = serving_facts(vllm(["vllm", "serve", "m/x", "--dtype", "half; rm -rf /"]))
    assert odd.dtype == "" and odd.problems == ("--dtype 'half;' is not a plain word; ignored",)


def test_it_leaves_out_workloads_without_gpus(snap):
    assert {(d.namespace, d.name) for d in snap.deployments} == {
        ("team-a", "llama-3-70b"),
        ("team-b", "mistral-7b"),
        ("team-b", "qwen"),
    }
    assert not [p for p in snap.pods if p.namespace in ("kube-system", "gpu-operator")]


# --------------------------------------------------------------------------- pods


def test_it_resolves_pods_to_their_deployment_through_the_replicaset(snap):
    llama = [p for p in snap.pods if p.namespace == "team-a"]
    assert len(llama) == 2
    assert {(p.owner_kind, p.owner_name) for p in llama} == {("Deployment", "llama-3-70b")}
    running = next(p for p in llama if p.ready)
    assert (running.node_name, running.phase, running.gpu_requests, running.restarts) == (
        "h100-a",
        "Running",
        {"nvidia.com/gpu": 4},
        0,
    )
    assert running.started_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_it_links_a_pod_whose_replicaset_it_has_not_seen_yet(fake_kube, fake_kubeconfig):
    dep = o.deployment("ns", "m", containers=[o.vllm_container(model="m/a")])
    rs = o.replicaset(dep)
    fake_kube.load(dep, *o.pods_of(dep, rs, [("ready", "n1", "")]))  # no ReplicaSet in the lists
    pod = backend(fake_kubeconfig).snapshot().pods[0]
    assert (pod.owner_kind, pod.owner_name) == ("Deployment", "m")


def test_it_says_why_a_pod_is_not_ready(snap):
    reasons = {(p.owner_name, p.ready, p.waiting_reason) for p in snap.pods if p.owner_kind == "Deployment"}
    assert reasons == {
        ("llama-3-70b", True, ""),
        ("llama-3-70b", False, "waiting for a node"),
        ("mistral-7b", True, ""),
        ("mistral-7b", False, "pulling image"),  # ContainerCreating
        ("mistral-7b", False, "loading model weights"),  # running, not ready
        ("qwen", False, "CrashLoopBackOff"),
    }
    qwen = next(p for p in snap.pods if p.owner_name == "qwen")
    assert qwen.restarts == 7


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p["metadata"].update(deletionTimestamp="2025-03-01T10:00:00Z"), "terminating"),
        (lambda p: p["status"].update(phase="Failed", reason="Evicted"), "Evicted"),
        (
            lambda p: p["status"]["containerStatuses"][0].update(state={"waiting": {"reason": "ImagePullBackOff"}}),
            "ImagePullBackOff",
        ),
        (
            lambda p: p["status"].update(
                initContainerStatuses=[{"name": "fetch-weights", "state": {"running": {}}, "restartCount": 0}]
            ),
            "running init containers",
        ),
        (lambda p: p["status"].pop("containerStatuses"), "pulling image"),
    ],
)
def test_it_names_other_reasons_a_pod_is_not_ready(fake_kube, fake_kubeconfig, change, expected):
    pod = o.pod("ns", "p", containers=[o.gpu_container()], node="n1", state="running")
    change(pod)
    fake_kube.load(pod)
    assert backend(fake_kubeconfig).snapshot().pods[0].waiting_reason == expected


def test_it_sums_gpu_requests_as_the_scheduler_does():
    two = {"resources": {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}}
    limits_only = {"resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "4"}}}
    mig = {"resources": {"limits": {"nvidia.com/mig-3g.40gb": "1"}}}
    big_init = {"resources": {"limits": {"nvidia.com/gpu": "8"}}}
    sidecar = {"restartPolicy": "Always", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    assert pod_gpu_requests({"containers": [two, limits_only]}) == {"nvidia.com/gpu": 3}
    assert pod_gpu_requests({"containers": [two, mig]}) == {"nvidia.com/gpu": 2, "nvidia.com/mig-3g.40gb": 1}
    assert pod_gpu_requests({"containers": [two], "initContainers": [big_init]}) == {"nvidia.com/gpu": 8}
    assert pod_gpu_requests({"containers": [two], "initContainers": [sidecar]}) == {"nvidia.com/gpu": 3}
    assert pod_gpu_requests({"containers": [{"resources": {"requests": {"cpu": "1"}}}]}) == {}


def test_it_reports_job_and_bare_pods_holding_gpus(snap):
    job = by_name(snap.pods, "finetune-8b-x7k2p")
    assert (job.owner_kind, job.owner_name, job.gpu_requests, job.node_name) == (
        "Job",
        "finetune-8b",
        {"nvidia.com/gpu": 8},
        "h100-b",
    )
    bare = by_name(snap.pods, "debug-gpu")
    assert (bare.owner_kind, bare.owner_name, bare.gpu_requests) == ("", "", {"nvidia.com/gpu": 1})


# --------------------------------------------------------------------------- autoscalers


def test_it_reads_hpas_with_a_metric_summary(snap):
    hpa = by_name([a for a in snap.autoscalers if a.kind == "hpa"], "llama-3-70b")
    assert (hpa.namespace, hpa.target_name, hpa.min_replicas, hpa.max_replicas) == ("team-a", "llama-3-70b", 2, 6)
    assert hpa.metric == "vllm:num_requests_waiting > 5 per replica"
    assert hpa.owned_by_scaledobject == "" and hpa.resource_version
    cpu = by_name(snap.autoscalers, "qwen-cpu")
    assert (cpu.min_replicas, cpu.max_replicas, cpu.metric) == (1, 3, "cpu > 80% utilization")


def test_it_marks_the_hpa_that_keda_owns(snap):
    hpa = by_name(snap.autoscalers, "keda-hpa-mistral-7b")
    assert (hpa.kind, hpa.owned_by_scaledobject, hpa.target_name) == ("hpa", "mistral-7b", "mistral-7b")


def test_it_reads_scaledobjects_with_their_defaults_and_pause_annotations(snap):
    keda = {a.name: a for a in snap.autoscalers if a.kind == "scaledobject"}
    mistral = keda["mistral-7b"]
    assert (mistral.namespace, mistral.target_name, mistral.min_replicas, mistral.max_replicas) == (
        "team-b",
        "mistral-7b",
        1,
        8,
    )
    assert mistral.metric == "prometheus: vllm:num_requests_waiting > 5"
    assert (mistral.paused_replicas, mistral.paused) == (3, False)
    assert mistral.resource_version
    qwen = keda["qwen"]
    assert (qwen.min_replicas, qwen.max_replicas, qwen.paused_replicas, qwen.paused) == (0, 100, None, True)


def test_it_shows_both_autoscalers_on_one_deployment(snap):
    on_qwen = {(a.kind, a.name) for a in snap.autoscalers if a.target_name == "qwen"}
    assert on_qwen == {("hpa", "qwen-cpu"), ("scaledobject", "qwen")}


def test_it_ignores_autoscalers_of_other_workloads(fake_kube, fake_kubeconfig):
    fake_kube.load(
        o.hpa("ns", "sts", target="db", target_kind="StatefulSet"),
        o.scaled_object("ns", "sts", target="db", target_kind="StatefulSet"),
    )
    assert backend(fake_kubeconfig).snapshot().autoscalers == ()


# --------------------------------------------------------------------------- quotas, node pools, CRDs


def test_it_reads_only_gpu_quota_entries(snap):
    team_a = by_name(snap.quotas, "gpu-quota", "team-a")
    assert (team_a.hard, team_a.used) == ({"requests.nvidia.com/gpu": 16}, {"requests.nvidia.com/gpu": 4})
    team_b = by_name(snap.quotas, "gpu-quota", "team-b")  # no status yet: spec.hard
    assert team_b.hard == {"requests.nvidia.com/mig-1g.10gb": 14, "nvidia.com/gpu": 2}
    assert team_b.used == {}


def test_it_reads_karpenter_nodepools(snap):
    h100 = by_name(snap.node_pools, "gpu-h100")
    assert h100.instance_types == ("p5.48xlarge", "p5e.48xlarge")
    assert h100.capacity_types == ("spot", "on-demand")
    assert (h100.gpu_limit, h100.consolidation_policy) == (64, "WhenEmpty")
    a10g = by_name(snap.node_pools, "gpu-a10g")
    assert (a10g.capacity_types, a10g.gpu_limit) == (("on-demand",), None)  # NotIn [spot]
    assert a10g.consolidation_policy == "WhenEmptyOrUnderutilized"


def test_it_says_keda_is_not_installed_without_failing(world, fake_kubeconfig):
    world.uninstall("keda.sh")
    snap = backend(fake_kubeconfig).snapshot()
    assert snap.keda_installed is False
    assert {a.kind for a in snap.autoscalers} == {"hpa"}
    assert len(snap.deployments) == 3


def test_it_reads_a_cluster_without_karpenter(world, fake_kubeconfig):
    world.uninstall("karpenter.sh")
    snap = backend(fake_kubeconfig).snapshot()
    assert snap.node_pools == ()
    assert snap.keda_installed is True
