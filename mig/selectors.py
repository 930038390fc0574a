"""Reads for MIG planning: a deployment's memory need from its last sync (and Prometheus where it
answers), and the inputs of a plan for one node pool."""

from __future__ import annotations

from fleet.backends.base import DeploymentMetrics
from fleet.mig import gpu_models
from fleet.models import ModelDeployment
from mig.memory import MemoryInputs, MemoryNeed, memory_need

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


def memory_inputs(deployment: ModelDeployment, metrics: DeploymentMetrics | None = None) -> MemoryInputs:
    return MemoryInputs(
        model=deployment.model,
        max_model_len=deployment.max_model_len,
        tensor_parallel=max(deployment.tensor_parallel, 1),
        gpu_memory_utilization=deployment.gpu_memory_utilization,
        device_memory_mib=deployment_device_memory_mib(deployment),
        observed_kv_usage=metrics.kv_cache_usage if metrics else None,
    )


def deployment_memory_need(deployment: ModelDeployment,
                           metrics: DeploymentMetrics | None = None) -> tuple[MemoryInputs, MemoryNeed]:
    inputs = memory_inputs(deployment, metrics)
    return inputs, memory_need(inputs)
