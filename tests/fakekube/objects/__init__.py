"""Builders for realistic Kubernetes objects, as a real API server returns them (plain dicts).

Shapes follow what `kubectl get -o json` shows on EKS/GKE/AKS GPU clusters with the NVIDIA GPU
operator (GPU feature discovery labels, MIG manager), Karpenter v1, KEDA v2 and vLLM. Each
builder takes the facts a test cares about as keywords and fills in the rest plausibly,
including the noise a real cluster carries (managedFields, images, many labels).

`realistic_cluster()` is one small world covering every case the backend interprets;
`big_cluster()` is a 2,000-node / 16,000-GPU / 500-deployment world for benchmarks.

The builders live in modules by kind (nodes, workloads, autoscalers, capacity, worlds); they are all
named here, so `from tests.fakekube import objects as o` then `o.pod(...)` reads as before.
"""

from tests.fakekube.objects.autoscalers import hpa, keda_hpa, scaled_object
from tests.fakekube.objects.base import CREATED, GPU, STARTED, VLLM_IMAGE
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
    vllm_deployment_with_pods,
)
from tests.fakekube.objects.worlds import DAEMONSETS, LLAMA_70B, MISTRAL_7B, QWEN_7B, big_cluster, realistic_cluster

__all__ = [
    "CREATED",
    "DAEMONSETS",
    "GPU",
    "LLAMA_70B",
    "MISTRAL_7B",
    "QWEN_7B",
    "STARTED",
    "VLLM_IMAGE",
    "big_cluster",
    "cpu_node",
    "deployment",
    "gpu_container",
    "gpu_node",
    "hpa",
    "keda_hpa",
    "nodepool",
    "plain_container",
    "pod",
    "pods_of",
    "realistic_cluster",
    "replicaset",
    "resource_quota",
    "scaled_object",
    "vllm_container",
    "vllm_deployment_with_pods",
]
