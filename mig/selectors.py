"""Reads for MIG planning: a deployment's memory need from its last sync (and Prometheus where it
answers), and the inputs of a plan for one node pool."""

from __future__ import annotations

import math
from collections import Counter

from django.db.models import Prefetch
from django.utils import timezone

from fleet.autoscalers import replica_owner
from fleet.backends.base import DeploymentMetrics
from fleet.cold_start import deployment_cold_starts
from fleet.lint import COLD_START_SECONDS
from fleet.mig import gpu_models
from fleet.mig_parted import (
    BUNDLED_SOURCE,
    MigPartedConfig,
    MigPartedConfigError,
    bundled_mig_parted_config,
    parse_mig_parted_config,
)
from fleet.models import Cluster, GpuNode, ModelDeployment, Pod
from fleet.serving_manifests import ServingSpec, dns_name, weights_gib
from mig.memory import MemoryInputs, MemoryNeed, memory_need
from mig.models import ClusterMigConfig

MIG_RESOURCE_PREFIX = "nvidia.com/mig-"


def deployment_device_memory_mib(deployment: ModelDeployment) -> int | None:
    """Memory of what one replica's GPU is now: the MIG slice's, or the whole GPU's of its nodes."""
    nodes = [p.node for p in deployment.pods.all() if p.node_id and p.gone_at is None]
    products = {n.gpu_product for n in nodes}
    if deployment.gpu_resource.startswith(MIG_RESOURCE_PREFIX):
        profile = deployment.gpu_resource.removeprefix(MIG_RESOURCE_PREFIX)
        for product in sorted(products):
            model = gpu_models().get(product)
            if model and profile in model.profiles:
                return model.profiles[profile].memory_mib
        return None
    memories = [n.gpu_memory_mib for n in nodes if n.gpu_memory_mib]
    return max(memories) if memories else None


def memory_inputs(
    deployment: ModelDeployment, *, device_memory_mib: int | None, metrics: DeploymentMetrics | None = None
) -> MemoryInputs:
    """What the memory need of a deployment is computed from: its vLLM arguments as synced, the
    memory of one device it runs on (GPU or MIG slice) and the KV-cache use observed."""
    return MemoryInputs(
        model=deployment.model,
        max_model_len=deployment.max_model_len,
        tensor_parallel=max(deployment.tensor_parallel, 1),
        gpu_memory_utilization=deployment.gpu_memory_utilization,
        dtype=deployment.dtype,
        quantization=deployment.quantization,
        device_memory_mib=device_memory_mib,
        observed_kv_usage=metrics.kv_cache_usage if metrics else None,
    )


def deployment_memory_need(
    deployment: ModelDeployment, metrics: DeploymentMetrics | None = None
) -> tuple[MemoryInputs, MemoryNeed]:
    inputs = memory_inputs(deployment, device_memory_mib=deployment_device_memory_mib(deployment), metrics=metrics)
    return inputs, memory_need(inputs)


def pool_nodes(node_pool) -> list[GpuNode]:
    """The pool's live GPU nodes with their live pods and those pods' deployments, in three queries."""
    pods = Pod.objects.alive().select_related("deployment", "deployment__cluster")
    return list(
        GpuNode.objects.alive()
        .filter(node_pool=node_pool, gpu_count__gt=0)
        .prefetch_related(Prefetch("pods", queryset=pods, to_attr="live_pods"))
        .order_by("name")
    )


def pool_deployments(nodes: list[GpuNode]) -> dict[int, tuple[ModelDeployment, str, int]]:
    """Each deployment with pods on these nodes: (deployment, the GPU product most of them run on,
    replicas in the pool). Every replica the deployment wants counts when all its placed pods are here."""
    seen: dict[int, ModelDeployment] = {}
    products: dict[int, Counter] = {}
    for node in nodes:
        for pod in node.live_pods:
            if pod.deployment is None or pod.deployment.gone_at is not None:
                continue
            seen[pod.deployment_id] = pod.deployment
            products.setdefault(pod.deployment_id, Counter())[node.gpu_product] += 1
    placed_elsewhere = set(
        Pod.objects.alive()
        .filter(deployment_id__in=seen, node__isnull=False)
        .exclude(node__in=nodes)
        .values_list("deployment_id", flat=True)
    )
    result = {}
    for dep_id, deployment in seen.items():
        here = sum(products[dep_id].values())
        replicas = here if dep_id in placed_elsewhere else max(here, deployment.replicas_desired)
        result[dep_id] = (deployment, products[dep_id].most_common(1)[0][0], replicas)
    return result


def serving_spec(deployment: ModelDeployment) -> ServingSpec:
    """The manifests' inputs from a deployment as synced: what it runs, where, and its autoscaler's
    bounds; the weights volume sized from the memory need."""
    pods = [p for p in deployment.pods.all() if p.gone_at is None and p.node_id]
    products = Counter(p.node.gpu_product for p in pods if p.node.gpu_product)
    live = [a.facts() for a in deployment.autoscalers.all() if a.gone_at is None]
    scaler = replica_owner(deployment.name, live).autoscaler
    need = memory_need(memory_inputs(deployment, device_memory_mib=deployment_device_memory_mib(deployment)))
    load = deployment_cold_starts([deployment], now=timezone.now())[deployment.id].load_p95_seconds
    return ServingSpec(
        name=dns_name(deployment.name),
        namespace=deployment.namespace,
        model=deployment.model or deployment.name,
        image=deployment.image or ServingSpec.image,
        replicas=deployment.replicas_desired,
        min_replicas=scaler.min_replicas if scaler else max(deployment.replicas_desired, 1),
        max_replicas=scaler.max_replicas if scaler else max(deployment.replicas_desired, 1) * 2,
        gpu_resource=deployment.gpu_resource or "nvidia.com/gpu",
        gpus_per_replica=max(deployment.gpu_per_replica, 1),
        tensor_parallel=max(deployment.tensor_parallel, 1),
        max_model_len=deployment.max_model_len,
        gpu_memory_utilization=deployment.gpu_memory_utilization,
        gpu_product=products.most_common(1)[0][0] if products else "",
        cold_start_seconds=math.ceil(load) if load else COLD_START_SECONDS,
        weights_gib=weights_gib(need.weights_mib),
        prometheus_url=deployment.cluster.prometheus_url or ServingSpec.prometheus_url,
    )


def cluster_mig_layouts(cluster: Cluster) -> tuple[MigPartedConfig, str]:
    """The named layouts to plan with, and where they came from in the user's words: the cluster's
    own mig-parted ConfigMap as a worker last read it, else mig-parted's default config (why)."""
    record = ClusterMigConfig.objects.filter(cluster=cluster).first()
    if record is not None and record.config_text and record.read_at is not None:
        try:
            config = parse_mig_parted_config(record.config_text, source=record.config_map)
        except MigPartedConfigError as exc:  # stored by an older version that read it differently
            return bundled_mig_parted_config(), f"{BUNDLED_SOURCE}: the stored copy no longer reads ({exc})"
        read = timezone.localtime(record.read_at).strftime("%Y-%m-%d %H:%M %Z")
        stale = f"; the last check failed: {record.problem}" if record.problem else ""
        return config, f"ConfigMap {record.config_map}, read {read}{stale}"
    if cluster.backend != Cluster.Backend.KUBERNETES:
        return bundled_mig_parted_config(), f"{BUNDLED_SOURCE}: a simulated cluster applies any valid layout"
    why = record.problem if record is not None and record.problem else "not read yet (a worker reads it every 5 min)"
    return bundled_mig_parted_config(), f"{BUNDLED_SOURCE}: the cluster's ConfigMap {why}"
