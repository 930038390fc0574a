"""The Kubernetes backend against a fake Kubernetes API over real HTTP.

The official client does the talking; the fake server answers like an API server and records
every request, so these tests assert on what is really sent (paths, verbs, content types,
bodies) and on what comes back as ScaleDeck's dataclasses. No database.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from kubernetes import client as k8s

from fleet.backends.base import UNCHANGED, BackendError, ConflictError, ObjectState, Taint
from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.backends.kubernetes.objects import pod_gpu_requests
from fleet.backends.kubernetes.values import parse_quantity
from fleet.backends.kubernetes.vllm_args import serving_facts
from tests.fakekube import objects as o
from tests.fakekube.server import write_kubeconfig

TOKEN = "fake-token-0123456789"
MERGE = "application/merge-patch+json"


def backend(kubeconfig, **kwargs) -> KubernetesClusterBackend:
    return KubernetesClusterBackend(kubeconfig_path=str(kubeconfig), **kwargs)


@pytest.fixture
def world(fake_kube):
    fake_kube.load(o.realistic_cluster())
    return fake_kube


@pytest.fixture
def snap(world, fake_kubeconfig):
    return backend(fake_kubeconfig).snapshot()


def by_name(items, name, namespace=None):
    found = [i for i in items if i.name == name and (namespace is None or i.namespace == namespace)]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def error_of(call) -> BackendError:
    with pytest.raises(BackendError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return info.value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# --------------------------------------------------------------------------- what is sent


def test_it_sends_only_authenticated_list_requests_during_a_snapshot(world, fake_kubeconfig):
    backend(fake_kubeconfig).snapshot()
    assert {r.method for r in world.requests} == {"GET"}
    assert {r.authorization for r in world.requests} == {f"Bearer {TOKEN}"}
    assert {r.path for r in world.requests} == {
        "/api/v1/nodes",
        "/api/v1/pods",
        "/api/v1/resourcequotas",
        "/apis/apps/v1/replicasets",
        "/apis/apps/v1/deployments",
        "/apis/autoscaling/v2/horizontalpodautoscalers",
        "/apis/keda.sh/v1alpha1/scaledobjects",
        "/apis/karpenter.sh/v1/nodepools",
        "/apis/events.k8s.io/v1/events",
        "/apis/karpenter.sh/v1/nodeclaims",
    }


def test_it_asks_for_replicaset_metadata_only(world, fake_kubeconfig):
    backend(fake_kubeconfig).snapshot()
    (rs,) = world.requests_to("/apis/apps/v1/replicasets")
    assert "as=PartialObjectMetadataList" in rs.accept


def test_it_lists_only_allow_listed_namespaces(world, fake_kubeconfig):
    snap = backend(fake_kubeconfig, namespaces=("team-b",)).snapshot()
    paths = {r.path for r in world.requests}
    assert paths == {
        "/api/v1/nodes",
        "/api/v1/namespaces/team-b/pods",
        "/api/v1/namespaces/team-b/resourcequotas",
        "/apis/apps/v1/namespaces/team-b/replicasets",
        "/apis/apps/v1/namespaces/team-b/deployments",
        "/apis/autoscaling/v2/namespaces/team-b/horizontalpodautoscalers",
        "/apis/keda.sh/v1alpha1/namespaces/team-b/scaledobjects",
        "/apis/karpenter.sh/v1/nodepools",
        "/apis/events.k8s.io/v1/namespaces/team-b/events",
        "/apis/karpenter.sh/v1/nodeclaims",
    }
    assert {d.namespace for d in snap.deployments} == {"team-b"}
    assert {p.namespace for p in snap.pods} == {"team-b"}
    assert len(snap.nodes) == 6  # nodes are cluster-wide


def test_it_pages_through_long_lists(world, fake_kubeconfig):
    b = backend(fake_kubeconfig)
    b.page_size = 3
    snap = b.snapshot()
    pod_pages = world.requests_to("/api/v1/pods")
    assert len(pod_pages) == 4  # 11 pods, 3 a page
    assert all(r.query["limit"] == "3" for r in pod_pages)
    assert all("continue" in r.query for r in pod_pages[1:])
    assert len(snap.pods) == 8 and len(snap.nodes) == 6


def test_it_restarts_a_list_whose_continue_token_expired(world, fake_kubeconfig):
    world.fail("/api/v1/pods", 410, query_contains="continue=", times=1)
    b = backend(fake_kubeconfig)
    b.page_size = 5
    snap = b.snapshot()
    assert len(snap.pods) == 8
    assert ["continue" in r.query for r in world.requests_to("/api/v1/pods")] == [False, True, False, True, True]


# --------------------------------------------------------------------------- failures


def test_it_reports_refused_credentials(world, tmp_path):
    kubeconfig = world.kubeconfig(tmp_path / "kc", token="wrong-token")
    err = error_of(backend(kubeconfig).snapshot)
    assert str(err).startswith("credentials refused (401)")
    assert (err.status, err.transient) == (401, False)
    assert "wrong-token" not in str(err)


def test_it_names_what_the_serviceaccount_may_not_list(world, fake_kubeconfig):
    world.fail("/api/v1/namespaces/team-b/pods", 403)
    err = error_of(backend(fake_kubeconfig, namespaces=("team-b",)).snapshot)
    assert str(err) == "forbidden: the ServiceAccount scaledeck/scaledeck may not list pods in namespace team-b (403)"
    assert (err.status, err.transient) == (403, False)


def test_it_suggests_an_allow_list_when_listing_every_namespace_is_forbidden(world, fake_kubeconfig):
    world.fail("/api/v1/pods", 403)
    err = error_of(backend(fake_kubeconfig).snapshot)
    assert "may not list pods in all namespaces (403)" in str(err)
    assert "namespaces it may read" in str(err)


def test_it_reports_server_errors_as_transient(world, fake_kubeconfig):
    world.fail("/apis/apps/v1/deployments", 500)
    err = error_of(backend(fake_kubeconfig).snapshot)
    assert "failed to list deployments in all namespaces: 500" in str(err)
    assert (err.status, err.transient) == (500, True)


def test_it_gives_up_quickly_when_the_api_server_stalls(world, fake_kubeconfig):
    world.delay(10, path="/api/v1/nodes")
    started = time.monotonic()
    err = error_of(backend(fake_kubeconfig, timeout_seconds=0.3).snapshot)
    assert time.monotonic() - started < 3
    assert str(err) == f"cannot reach the Kubernetes API at {world.url}: no answer within 0.3 s"
    assert err.transient is True


def test_it_reports_a_refused_connection(tmp_path):
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}", TOKEN)
    err = error_of(backend(kubeconfig, timeout_seconds=2).snapshot)
    assert str(err) == f"cannot reach the Kubernetes API at http://127.0.0.1:{port}: connection refused"
    assert err.transient is True


def test_it_reports_a_name_that_does_not_resolve(tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kc", "https://k8s.invalid:6443", TOKEN)
    err = error_of(backend(kubeconfig, timeout_seconds=2).snapshot)
    assert str(err).startswith("cannot reach the Kubernetes API at https://k8s.invalid:6443: ")
    assert err.transient is True


@pytest.mark.parametrize(
    ("content", "context", "expected"),
    [
        (None, "", "cannot be read (No such file or directory)"),
        ("clusters: [unclosed\n  - : :", "", "is not a valid kubeconfig (not YAML)"),
        ("just a string", "", "is not a valid kubeconfig (no contexts)"),
        ("KUBECONFIG", "elsewhere", "has no context 'elsewhere'"),
        ("KUBECONFIG-NO-CURRENT", "", "has no current-context; name a context"),
        ("KUBECONFIG-NO-SERVER", "", "is not a valid kubeconfig (its cluster has no server URL)"),
    ],
)
def test_it_explains_a_bad_kubeconfig(tmp_path, content, context, expected):
    path = tmp_path / "kubeconfig"
    if content is not None and content.startswith("KUBECONFIG"):
        write_kubeconfig(path, "http://127.0.0.1:1", TOKEN)
        text = path.read_text()
        if content == "KUBECONFIG-NO-CURRENT":
            text = text.replace("current-context: fake", "current-context: ''")
        elif content == "KUBECONFIG-NO-SERVER":
            text = text.replace("server: http://127.0.0.1:1", "certificate-authority: /nope")
        path.write_text(text)
    elif content is not None:
        path.write_text(content)
    b = backend(path, context=context)  # building never fails; the first call does
    err = error_of(b.snapshot)
    assert str(err) == f"kubeconfig {path}: {expected}"
    assert TOKEN not in str(err)


def test_it_explains_a_missing_in_cluster_service_account():
    err = error_of(KubernetesClusterBackend(in_cluster=True).snapshot)
    assert str(err).startswith("in-cluster config is unavailable")


def test_it_never_shows_the_token_in_an_error(world, fake_kubeconfig):
    messages = []
    for status in (401, 403, 404, 409, 422, 500):
        world.reset_switches()
        world.fail("/api/v1/nodes", status, message=f"echo {TOKEN} Bearer {TOKEN}")
        messages.append(str(error_of(backend(fake_kubeconfig).snapshot)))
    assert not [m for m in messages if TOKEN in m]


def test_it_uses_its_own_client_not_the_global_default(world, fake_kubeconfig, tmp_path):
    from tests.fakekube.server import FakeKubeApi

    before = k8s.Configuration._default
    with FakeKubeApi(token="other-token") as other:
        other.load(o.gpu_node("other-node"))
        first = backend(fake_kubeconfig).snapshot()
        second = backend(other.kubeconfig(tmp_path / "other")).snapshot()
        assert other.requests and {r.authorization for r in other.requests} == {"Bearer other-token"}
    assert len(first.nodes) == 6 and [n.name for n in second.nodes] == ["other-node"]
    assert k8s.Configuration._default is before


# --------------------------------------------------------------------------- odd objects


def test_it_skips_odd_objects_with_a_warning(world, fake_kubeconfig):
    world.load_raw("Pod", "not an object")
    world.load_raw("Pod", {"metadata": "none"})
    negative = o.deployment("team-a", "negative", containers=[o.vllm_container(model="m/n")], replicas=-3)
    lots = o.deployment("team-a", "lots", containers=[o.vllm_container(model="m/l")])
    lots["spec"]["replicas"] = "lots"
    bad_capacity = o.gpu_node("bad-capacity")
    bad_capacity["status"]["capacity"]["nvidia.com/gpu"] = "eight"
    bad_label = o.gpu_node("bad-label")
    bad_label["metadata"]["labels"]["nvidia.com/gpu.count"] = "eight"
    no_max = o.hpa("team-a", "no-max", target="llama-3-70b")
    del no_max["spec"]["maxReplicas"]
    odd_pause = o.scaled_object("team-a", "odd-pause", target="llama-3-70b", paused_replicas="many")
    odd_tp = o.deployment("team-a", "odd-tp", containers=[o.vllm_container(model="m/t", extra_args=["-tp", "four"])])
    huge = o.resource_quota("team-a", "huge", hard={"requests.nvidia.com/gpu": "1E"})
    world.load(negative, lots, bad_capacity, bad_label, no_max, odd_pause, odd_tp, huge)

    b = backend(fake_kubeconfig)
    snap = b.snapshot()
    warnings = b.last_warnings()

    names = {d.name for d in snap.deployments}
    assert "negative" not in names and "lots" not in names
    assert {"llama-3-70b", "odd-tp"} <= names  # the odd tensor-parallel value degrades to 1
    assert by_name(snap.deployments, "odd-tp").tensor_parallel == 1
    assert "bad-capacity" not in {n.name for n in snap.nodes}
    assert by_name(snap.nodes, "bad-label").gpu_count == 0
    assert "no-max" not in {a.name for a in snap.autoscalers}
    assert by_name(snap.autoscalers, "odd-pause").paused_replicas is None
    assert "huge" not in {q.name for q in snap.quotas}
    assert len(snap.pods) == 8

    def warned(*words):
        return any(all(w in line for w in words) for line in warnings)

    assert warned("skipped a pod without a usable identity: not an object")
    assert warned("skipped a pod without a usable identity: no metadata")
    assert warned("skipped deployment team-a/negative", "spec.replicas")
    assert warned("skipped deployment team-a/lots", "'lots'")
    assert warned("skipped node bad-capacity", "nvidia.com/gpu", "'eight'")
    assert warned("node bad-label", "nvidia.com/gpu.count")
    assert warned("skipped hpa team-a/no-max", "spec.maxReplicas")
    assert warned("scaledobject team-a/odd-pause", "paused-replicas")
    assert warned("deployment team-a/odd-tp", "--tensor-parallel-size")
    assert warned("skipped resourcequota team-a/huge", "1E")
    assert len(warnings) == 10


def test_it_starts_each_snapshot_with_no_warnings(world, fake_kubeconfig):
    world.load_raw("Pod", "not an object")
    b = backend(fake_kubeconfig)
    b.snapshot()
    assert len(b.last_warnings()) == 1
    world.delete("Pod", "default", "\x00raw-0")
    b.snapshot()
    assert b.last_warnings() == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", Decimal(8)),
        (8, Decimal(8)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("2Gi", Decimal(2 * 2**30)),
        ("500m", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        ("1.5", Decimal("1.5")),
        (" 4 ", Decimal(4)),
    ],
)
def test_it_parses_kubernetes_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["eight", "", "1kk", "1KiB", "--1", True, None, 1.5, "1e9999"])
def test_it_refuses_what_is_not_a_quantity(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


# --------------------------------------------------------------------------- writes


@pytest.fixture
def writer(world, fake_kubeconfig):
    return backend(fake_kubeconfig, namespaces=("team-a", "team-b"))


def patches(fake):
    return [r for r in fake.requests if r.method == "PATCH"]


def test_it_scales_a_deployment_through_its_scale_subresource(world, writer):
    rv = world.get("Deployment", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    new_rv = writer.scale_deployment("team-a", "llama-3-70b", 3, resource_version=rv)
    (req,) = patches(world)
    assert req.path == "/apis/apps/v1/namespaces/team-a/deployments/llama-3-70b/scale"
    assert req.content_type == MERGE
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}}
    stored = world.get("Deployment", "team-a", "llama-3-70b")
    assert stored["spec"]["replicas"] == 3
    assert new_rv == stored["metadata"]["resourceVersion"] != rv


def test_it_pins_a_scaledobject_with_paused_replicas(world, writer):
    rv = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    new_rv = writer.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, min_replicas=2, paused_replicas=4)
    (req,) = patches(world)
    assert req.path == "/apis/keda.sh/v1alpha1/namespaces/team-b/scaledobjects/mistral-7b"
    assert req.content_type == MERGE  # a custom resource refuses strategic merge (415)
    assert req.body == {
        "metadata": {"resourceVersion": rv, "annotations": {"autoscaling.keda.sh/paused-replicas": "4"}},
        "spec": {"minReplicaCount": 2},
    }
    stored = world.get("ScaledObject", "team-b", "mistral-7b")
    assert stored["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "4"
    assert (stored["spec"]["minReplicaCount"], stored["spec"]["maxReplicaCount"]) == (2, 8)
    assert new_rv == stored["metadata"]["resourceVersion"]


def test_it_removes_a_pause_with_a_null_in_the_merge_patch(world, writer):
    rv = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    writer.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, paused_replicas=None)
    (req,) = patches(world)
    assert req.body == {
        "metadata": {"resourceVersion": rv, "annotations": {"autoscaling.keda.sh/paused-replicas": None}}
    }
    assert (
        "autoscaling.keda.sh/paused-replicas"
        not in world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["annotations"]
    )


def test_it_leaves_unchanged_fields_out_of_a_patch(world, writer):
    rv = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    writer.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, max_replicas=12, min_replicas=UNCHANGED)
    (req,) = patches(world)
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"maxReplicaCount": 12}}
    annotations = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["annotations"]
    assert annotations["autoscaling.keda.sh/paused-replicas"] == "3"


def test_it_patches_an_hpa_floor_and_ceiling(world, writer):
    rv = world.get("HorizontalPodAutoscaler", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    writer.patch_hpa("team-a", "llama-3-70b", resource_version=rv, min_replicas=4, max_replicas=8)
    (req,) = patches(world)
    assert req.path == "/apis/autoscaling/v2/namespaces/team-a/horizontalpodautoscalers/llama-3-70b"
    assert req.content_type == MERGE
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"minReplicas": 4, "maxReplicas": 8}}
    spec = world.get("HorizontalPodAutoscaler", "team-a", "llama-3-70b")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (4, 8)


def test_it_patches_gpu_quota_entries_and_keeps_the_others(world, writer):
    rv = world.get("ResourceQuota", "team-a", "gpu-quota")["metadata"]["resourceVersion"]
    writer.patch_quota("team-a", "gpu-quota", {"requests.nvidia.com/gpu": 24}, resource_version=rv)
    (req,) = patches(world)
    assert req.path == "/api/v1/namespaces/team-a/resourcequotas/gpu-quota"
    assert req.content_type == MERGE
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"hard": {"requests.nvidia.com/gpu": "24"}}}
    hard = world.get("ResourceQuota", "team-a", "gpu-quota")["spec"]["hard"]
    assert hard == {"requests.nvidia.com/gpu": "24", "requests.cpu": "256", "pods": "100"}


WRITES = {
    "scale": lambda b, rv: b.scale_deployment("team-a", "llama-3-70b", 3, resource_version=rv),
    "scaledobject": lambda b, rv: b.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, min_replicas=2),
    "hpa": lambda b, rv: b.patch_hpa("team-a", "llama-3-70b", resource_version=rv, max_replicas=9),
    "quota": lambda b, rv: b.patch_quota("team-a", "gpu-quota", {"requests.nvidia.com/gpu": 8}, resource_version=rv),
}
TARGETS = {
    "scale": ("Deployment", "team-a", "llama-3-70b"),
    "scaledobject": ("ScaledObject", "team-b", "mistral-7b"),
    "hpa": ("HorizontalPodAutoscaler", "team-a", "llama-3-70b"),
    "quota": ("ResourceQuota", "team-a", "gpu-quota"),
}


@pytest.mark.parametrize("write", WRITES)
def test_it_raises_a_conflict_when_the_object_changed_since_it_was_read(world, writer, write):
    kind, namespace, name = TARGETS[write]
    stale = world.get(kind, namespace, name)["metadata"]["resourceVersion"]
    world.touch(kind, namespace, name)
    with pytest.raises(ConflictError) as info:
        WRITES[write](writer, stale)
    assert (info.value.status, info.value.transient) == (409, True)
    assert "changed since it was read (409)" in str(info.value)


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("allowed", [("team-c",), ()])
def test_it_refuses_writes_outside_the_allow_list_before_any_request(world, fake_kubeconfig, write, allowed):
    b = backend(fake_kubeconfig, namespaces=allowed)
    err = error_of(lambda: WRITES[write](b, "1"))
    assert "is not in this cluster's allow-list" in str(err)
    assert world.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.scale_deployment("team-a", "x", -1, resource_version="1"),
        lambda b: b.scale_deployment("team-a", "x", True, resource_version="1"),
        lambda b: b.scale_deployment("team-a", "x", 2, resource_version=""),
        lambda b: b.scale_deployment("team-a", "../../nodes", 2, resource_version="1"),
        lambda b: b.patch_scaledobject("team-b", "x", resource_version="1", min_replicas=5, max_replicas=2),
        lambda b: b.patch_scaledobject("team-b", "x", resource_version="1"),
        lambda b: b.patch_hpa("team-a", "x", resource_version="1", max_replicas=0),
        lambda b: b.patch_quota("team-a", "q", {"requests.cpu": 8}, resource_version="1"),
        lambda b: b.patch_quota("team-a", "q", {"requests.nvidia.com/gpu": "8"}, resource_version="1"),
    ],
)
def test_it_refuses_bad_write_values_before_any_request(world, writer, call):
    error_of(lambda: call(writer))
    assert world.requests == []


def test_it_rereads_objects_with_their_resource_version(world, writer):
    deployment = world.get("Deployment", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    assert writer.get_deployment_scale("team-a", "llama-3-70b") == ({"replicas": 2}, deployment)
    values, rv = writer.get_scaledobject("team-b", "mistral-7b")
    assert values == {"min_replicas": 1, "max_replicas": 8, "paused_replicas": 3}
    assert rv == world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    assert writer.get_hpa("team-a", "llama-3-70b")[0] == {"min_replicas": 2, "max_replicas": 6}
    assert writer.get_quota("team-a", "gpu-quota")[0] == {
        "hard": {"requests.nvidia.com/gpu": 16},
        "used": {"requests.nvidia.com/gpu": 4},
    }
    state = writer.read_object("scaledobject", "team-b", "mistral-7b")
    assert state == ObjectState("scaledobject", "team-b", "mistral-7b", values, rv)
    assert {r.method for r in world.requests} == {"GET"}


def test_it_writes_with_what_it_reread(world, writer):
    state = writer.read_object("deployment", "team-a", "llama-3-70b")
    writer.scale_deployment("team-a", "llama-3-70b", 5, resource_version=state.resource_version)
    assert writer.read_object("deployment", "team-a", "llama-3-70b").values == {"replicas": 5}


def test_it_reports_a_missing_object(writer):
    err = error_of(lambda: writer.get_hpa("team-a", "nope"))
    assert str(err) == "not found: get horizontalpodautoscalers nope in namespace team-a (404)"
    assert err.status == 404


def test_it_names_a_forbidden_write(world, writer):
    world.fail("/apis/keda.sh", 403, method="PATCH")
    err = error_of(lambda: writer.patch_scaledobject("team-b", "mistral-7b", resource_version="1", max_replicas=9))
    assert str(err) == (
        "forbidden: the ServiceAccount scaledeck/scaledeck may not patch scaledobjects.keda.sh mistral-7b "
        "in namespace team-b (403)"
    )


def test_it_relays_why_the_api_server_refused_a_change(world, writer):
    rv = world.get("HorizontalPodAutoscaler", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    err = error_of(lambda: writer.patch_hpa("team-a", "llama-3-70b", resource_version=rv, max_replicas=1))
    assert str(err).startswith("the Kubernetes API refused to patch horizontalpodautoscalers llama-3-70b")
    assert "(422): spec.maxReplicas" in str(err)


def test_it_would_be_refused_a_strategic_merge_patch_on_a_scaledobject(world):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{world.url}/apis/keda.sh/v1alpha1/namespaces/team-b/scaledobjects/mistral-7b",
        data=json.dumps({"spec": {"minReplicaCount": 3}}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json", "Authorization": f"Bearer {TOKEN}"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 415


def test_it_is_a_cluster_backend_and_a_cluster_writer(fake_kubeconfig):
    from fleet.backends.base import ClusterBackend, ClusterWriter

    b = backend(fake_kubeconfig)
    assert isinstance(b, ClusterBackend) and isinstance(b, ClusterWriter)


def test_it_would_apply_a_json_patch_guarded_by_a_test_of_the_resource_version(world):
    import json
    import urllib.error
    import urllib.request

    rv = world.get("Deployment", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]

    def send(ops):
        request = urllib.request.Request(
            f"{world.url}/apis/apps/v1/namespaces/team-a/deployments/llama-3-70b",
            data=json.dumps(ops).encode(),
            method="PATCH",
            headers={"Content-Type": "application/json-patch+json", "Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
    ]
    assert send(ops)["spec"]["replicas"] == 4
    with pytest.raises(urllib.error.HTTPError) as info:
        send(ops)  # the resourceVersion moved on
    assert info.value.code == 422


def test_it_reads_an_api_without_replicasets_hpas_or_quotas_as_having_none(world, fake_kubeconfig):
    for path in (
        "/apis/apps/v1/replicasets",
        "/apis/autoscaling/v2/horizontalpodautoscalers",
        "/api/v1/resourcequotas",
    ):
        world.fail(path, 404)
    b = backend(fake_kubeconfig)

    snap = b.snapshot()

    assert [a for a in snap.autoscalers if a.kind == "hpa"] == []
    assert snap.quotas == ()
    # Pods still find their Deployment through the ReplicaSet's <deployment>-<pod-template-hash> name.
    linked = [p for p in snap.pods if p.owner_kind == "Deployment"]
    assert linked and all(p.owner_name in {d.name for d in snap.deployments} for p in linked)
    assert sum("does not serve" in w for w in b.last_warnings()) == 3


def test_it_still_fails_when_pods_cannot_be_listed(world, fake_kubeconfig):
    world.fail("/api/v1/pods", 404)

    with pytest.raises(BackendError):
        backend(fake_kubeconfig).snapshot()
