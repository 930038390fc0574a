"""ResourceQuotas and Karpenter NodePools."""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakekube.objects.base import CREATED, GPU


def resource_quota(
    namespace: str,
    name: str,
    *,
    hard: dict[str, str],
    used: dict[str, str] | None = None,
    status: bool = True,
) -> dict:
    obj: dict = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {"hard": dict(hard)},
    }
    if status:
        obj["status"] = {"hard": dict(hard), "used": dict(used or {})}
    return obj


def nodepool(
    name: str,
    *,
    instance_types: Sequence[str] = ("p5.48xlarge",),
    capacity_types: Sequence[str] | None = ("spot", "on-demand"),
    capacity_operator: str = "In",
    gpu_limit: int | str | None = 64,
    consolidation: str | None = "WhenEmpty",
) -> dict:
    """A Karpenter v1 NodePool for GPU nodes."""
    requirements = [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(instance_types)},
    ]
    if capacity_types is not None:
        requirements.append(
            {"key": "karpenter.sh/capacity-type", "operator": capacity_operator, "values": list(capacity_types)}
        )
    spec: dict = {
        "template": {
            "metadata": {"labels": {"workload": "llm"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": requirements,
                "taints": [{"key": GPU, "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            },
        },
        "disruption": {"consolidateAfter": "10m", "budgets": [{"nodes": "10%"}]},
    }
    if consolidation is not None:
        spec["disruption"]["consolidationPolicy"] = consolidation
    if gpu_limit is not None:
        spec["limits"] = {"cpu": "4000", GPU: gpu_limit}
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": name,
            "generation": 1,
            "creationTimestamp": CREATED,
            "annotations": {"karpenter.sh/nodepool-hash": "4012513481", "karpenter.sh/nodepool-hash-version": "v3"},
        },
        "spec": spec,
        "status": {
            "resources": {"cpu": "384", GPU: "16", "nodes": "2"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
        },
    }
