"""Hand-built cluster snapshots for sync tests, and a backend that serves them.

`StaticBackend` implements the ClusterBackend protocol over a fixed snapshot: the sync is
tested here on exact inputs; the real backends are tested against the same protocol elsewhere.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from fleet.backends.base import (
    AutoscalerFacts,
    BackendError,
    ClusterSnapshot,
    DeploymentFacts,
    NodeFacts,
    NodePoolFacts,
    PodFacts,
    QuotaFacts,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class StaticBackend:
    def __init__(self, snapshot: ClusterSnapshot | None = None, error: BackendError | None = None):
        self.snapshot_value = snapshot
        self.error = error

    def snapshot(self) -> ClusterSnapshot:
        if self.error:
            raise self.error
        return self.snapshot_value

    def last_warnings(self) -> list[str]:
        return []

    def gpu_assignments(self) -> None:
        return None  # as Kubernetes: the sync infers who holds which device


def a100_node(name: str, *, mig_config: str | None = None, mig: dict[str, int] | None = None, **kw) -> NodeFacts:
    capacity = {"nvidia.com/gpu": 0 if mig else 8}
    capacity.update({f"nvidia.com/mig-{p}": c for p, c in (mig or {}).items()})
    return NodeFacts(
        name=name,
        instance_type=kw.get("instance_type", "p4de.24xlarge"),
        zone="us-east-1a",
        region="us-east-1",
        node_pool=kw.get("node_pool", "a100"),
        capacity_type=kw.get("capacity_type", "on-demand"),
        gpu_product="NVIDIA-A100-SXM4-80GB",
        gpu_count=8,
        gpu_memory_mib=81920,
        mig_config=mig_config,
        mig_strategy="mixed" if mig else None,
        capacity=capacity,
        allocatable=dict(capacity),
        ready=kw.get("ready", True),
        unschedulable=False,
    )


def pod(namespace: str, name: str, node: str, requests: dict[str, int], owner: str = "", phase="Running") -> PodFacts:
    return PodFacts(
        namespace=namespace,
        name=name,
        node_name=node,
        phase=phase,
        ready=phase == "Running",
        started_at=T0,
        gpu_requests=requests,
        restarts=0,
        owner_kind="Deployment" if owner else "Job",
        owner_name=owner or "batch-eval",
    )


def deployment(
    namespace: str, name: str, *, replicas: int, resource="nvidia.com/gpu", per_replica=1
) -> DeploymentFacts:
    return DeploymentFacts(
        namespace=namespace,
        name=name,
        model=f"org/{name}",
        image="vllm/vllm-openai:v0.10.1",
        replicas_desired=replicas,
        replicas_ready=replicas,
        replicas_updated=replicas,
        replicas_available=replicas,
        gpu_resource=resource,
        gpu_per_replica=per_replica,
        resource_version="100",
    )


def small_cluster() -> ClusterSnapshot:
    """Two A100 nodes (one split all-3g.40gb), a TP=4 deployment, a MIG deployment, a Job pod."""
    return ClusterSnapshot(
        taken_at=T0,
        nodes=(
            a100_node("gpu-a"),
            a100_node("gpu-b", mig_config="all-3g.40gb", mig={"3g.40gb": 16}),
        ),
        pods=(
            pod("llm", "llama-70b-abc", "gpu-a", {"nvidia.com/gpu": 4}, owner="llama-70b"),
            pod("llm", "batch-eval-xyz", "gpu-a", {"nvidia.com/gpu": 1}),
            pod("search", "mistral-1", "gpu-b", {"nvidia.com/mig-3g.40gb": 1}, owner="mistral"),
            pod("search", "mistral-2", "gpu-b", {"nvidia.com/mig-3g.40gb": 1}, owner="mistral"),
        ),
        deployments=(
            deployment("llm", "llama-70b", replicas=1, per_replica=4),
            deployment("search", "mistral", replicas=2, resource="nvidia.com/mig-3g.40gb"),
        ),
        autoscalers=(
            AutoscalerFacts(
                kind="hpa",
                name="llama-70b",
                target_name="llama-70b",
                min_replicas=1,
                max_replicas=4,
                metric="DCGM_FI_DEV_GPU_UTIL > 70%",
                namespace="llm",
            ),
        ),
        quotas=(
            QuotaFacts(
                namespace="llm", name="gpu", hard={"requests.nvidia.com/gpu": 16}, used={"requests.nvidia.com/gpu": 5}
            ),
        ),
        node_pools=(
            NodePoolFacts(name="a100", instance_types=("p4de.24xlarge",), capacity_types=("on-demand",), gpu_limit=64),
        ),
    )


def without_pod(snapshot: ClusterSnapshot, name: str) -> ClusterSnapshot:
    return replace(snapshot, pods=tuple(p for p in snapshot.pods if p.name != name))
