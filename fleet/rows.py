"""What each inventory row holds, from the backend's facts: one place for the full sync and the watch.

Pure functions: facts in, the row's field values out (foreign keys as `<name>_id`, given by the
caller, which knows the rows). The full sync (`fleet.sync`) and the watch's small batches
(`fleet.watch.apply`) both build rows here, so a field read one way by one is never read
another way by the other.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleet.backends.base import AutoscalerFacts, DeploymentFacts, NodeFacts, NodePoolFacts, PodFacts, QuotaFacts


def pool_rows(node_pools: Iterable[NodePoolFacts], nodes: Iterable[NodeFacts]) -> dict[str, dict]:
    """Node pools: the backend's NodePools, plus any pool name a node carries."""
    rows: dict[str, dict] = {}
    for pool in node_pools:
        rows[pool.name] = {
            "instance_types": list(pool.instance_types),
            "capacity_types": list(pool.capacity_types),
            "gpu_limit": pool.gpu_limit,
            "consolidation_policy": pool.consolidation_policy,
        }
    named_by_nodes: dict[str, set[str]] = {}
    for node in nodes:
        if node.node_pool and node.node_pool not in rows:
            named_by_nodes.setdefault(node.node_pool, set()).add(node.instance_type)
    for name, types in named_by_nodes.items():
        rows[name] = {
            "instance_types": sorted(t for t in types if t),
            "capacity_types": [],
            "gpu_limit": None,
            "consolidation_policy": "",
        }
    return rows


def node_row(n: NodeFacts, node_pool_id: int | None) -> dict:
    return {
        "node_pool_id": node_pool_id,
        "instance_type": n.instance_type,
        "zone": n.zone,
        "region": n.region,
        "capacity_type": n.capacity_type,
        "gpu_product": n.gpu_product,
        "gpu_count": n.gpu_count,
        "gpu_memory_mib": n.gpu_memory_mib,
        "mig_config": n.mig_config or "",
        "mig_strategy": n.mig_strategy or "",
        "capacity": dict(n.capacity),
        "allocatable": dict(n.allocatable),
        "ready": n.ready,
        "unschedulable": n.unschedulable,
        "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in n.taints],
        "k8s_created_at": n.created_at,
    }


def deployment_row(d: DeploymentFacts) -> dict:
    return {
        "model": d.model,
        "image": d.image,
        "replicas_desired": max(d.replicas_desired, 0),
        "replicas_ready": max(d.replicas_ready, 0),
        "replicas_updated": max(d.replicas_updated, 0),
        "replicas_available": max(d.replicas_available, 0),
        "gpu_resource": d.gpu_resource,
        "gpu_per_replica": max(d.gpu_per_replica, 0),
        "tensor_parallel": max(d.tensor_parallel, 1),
        "max_model_len": d.max_model_len,
        "gpu_memory_utilization": d.gpu_memory_utilization,
        "rollout_condition": d.rollout_condition[:200],
        "termination_grace_seconds": d.termination_grace_seconds,
        "liveness_initial_delay_seconds": d.liveness_initial_delay_seconds,
        "readiness_initial_delay_seconds": d.readiness_initial_delay_seconds,
        "max_unavailable": d.max_unavailable,
        "max_surge": d.max_surge,
        "resource_version": d.resource_version,
        "labels": dict(d.labels),
        "dtype": d.dtype[:40],
        "quantization": d.quantization[:40],
        "tolerates_gpu_taint": d.tolerates_gpu_taint,
        "spreads_across_nodes": d.spreads_across_nodes,
        "has_pre_stop": d.has_pre_stop,
    }


def autoscaler_row(a: AutoscalerFacts, deployment_id: int | None) -> dict:
    return {
        "target_name": a.target_name,
        "deployment_id": deployment_id,
        "min_replicas": max(a.min_replicas, 0),
        "max_replicas": max(a.max_replicas, 0),
        "metric": a.metric[:300],
        "paused_replicas": a.paused_replicas,
        "paused": a.paused,
        "owned_by_scaledobject": a.owned_by_scaledobject,
        "resource_version": a.resource_version,
    }


def pod_row(p: PodFacts, deployment_id: int | None, node_id: int | None) -> dict:
    return {
        "deployment_id": deployment_id,
        "node_id": node_id,
        "phase": p.phase,
        "ready": p.ready,
        "started_at": p.started_at,
        "gpu_requests": dict(p.gpu_requests),
        "restarts": max(p.restarts, 0),
        "owner_kind": p.owner_kind,
        "owner_name": p.owner_name,
        "waiting_reason": p.waiting_reason[:200],
    }


def quota_row(q: QuotaFacts) -> dict:
    return {"hard": dict(q.hard), "used": dict(q.used), "resource_version": q.resource_version}
