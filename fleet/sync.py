"""The sync: one backend snapshot upserted into the database in bulk.

Rules:
- Bounded SQL: one SELECT per table for the cluster, then bulk INSERT/UPDATE of only the rows
  that changed. A sync where nothing changed writes no inventory row at all; only the
  Cluster row's sync status is updated.
- Objects gone from the cluster are marked gone (`gone_at`), never deleted: audit history and
  accrued cost keep pointing at them. An object that comes back is revived.
- A failed snapshot records the one-line reason on the Cluster row and leaves everything the
  last good sync stored untouched.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models, transaction
from django.utils import timezone

from fleet import mig
from fleet.backends.base import (
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    BackendError,
    ClusterBackend,
    ClusterSnapshot,
)
from fleet.backends.registry import cluster_backend
from fleet.models import (
    Autoscaler,
    Cluster,
    Gpu,
    GpuNode,
    MigDevice,
    ModelDeployment,
    NamespaceQuota,
    NodePool,
    Pod,
)

logger = logging.getLogger(__name__)


@dataclass
class SyncResult:
    cluster: str
    ok: bool
    duration_ms: int
    error: str = ""
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    gone: dict[str, int] = field(default_factory=dict)
    taken_at: datetime | None = None
    # Objects the backend could not read and skipped (or read with a default), one line each.
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values()) or any(self.gone.values())

    def summary(self) -> str:
        if not self.ok:
            return f"{self.cluster}: sync failed: {self.error}"
        parts = [
            f"{kind} +{self.created.get(kind, 0)} ~{self.updated.get(kind, 0)} -{self.gone.get(kind, 0)}"
            for kind in self.created
            if self.created.get(kind) or self.updated.get(kind) or self.gone.get(kind)
        ]
        skipped = f"; {len(self.warnings)} warning(s)" if self.warnings else ""
        return f"{self.cluster}: synced in {self.duration_ms} ms; " + ("; ".join(parts) or "no changes") + skipped


def _upsert(
    model: type[models.Model],
    existing: dict[Hashable, models.Model],
    desired: dict[Hashable, dict],
    *,
    new_row: Callable[[Hashable, dict], models.Model],
    now: datetime,
    soft_delete: bool = True,
) -> tuple[dict[Hashable, models.Model], int, int, int]:
    """Make the table match `desired`, touching only rows that differ.

    `desired` maps a natural key to field values (FKs as `<name>_id`). Returns the key -> row
    map of live rows and the created / updated / gone counts.
    """
    to_create, to_update, changed_fields = [], [], set()
    live: dict[Hashable, models.Model] = {}
    for key, values in desired.items():
        row = existing.get(key)
        if row is None:
            row = new_row(key, values)
            to_create.append(row)
        else:
            diff = [name for name, value in values.items() if getattr(row, name) != value]
            if soft_delete and row.gone_at is not None:
                diff.append("gone_at")
                row.gone_at = None
            for name in diff:
                if name != "gone_at":
                    setattr(row, name, values[name])
            if diff:
                to_update.append(row)
                changed_fields.update(diff)
        live[key] = row
    gone = []
    for key, row in existing.items():
        if key in desired:
            continue
        if soft_delete:
            if row.gone_at is None:
                row.gone_at = now
                gone.append(row)
        else:
            gone.append(row)
    if to_create:
        model.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields), batch_size=1000)
    if gone:
        if soft_delete:
            model.objects.filter(pk__in=[r.pk for r in gone]).update(gone_at=now)
        else:
            model.objects.filter(pk__in=[r.pk for r in gone]).delete()
    return live, len(to_create), len(to_update), len(gone)


def _by_key(rows: Iterable[models.Model], key: Callable[[models.Model], Hashable]) -> dict:
    return {key(r): r for r in rows}


def _gpu_resource_of(requests: dict[str, int]) -> tuple[str, int]:
    for resource, count in sorted(requests.items()):
        if (resource == GPU_RESOURCE or resource.startswith(MIG_RESOURCE_PREFIX)) and count > 0:
            return resource, count
    return "", 0


def cluster_sync(*, cluster: Cluster, backend: ClusterBackend | None = None) -> SyncResult:
    """Read the whole cluster through its backend and make the database match it."""
    started = time.monotonic()
    now = timezone.now()
    backend = backend or cluster_backend(cluster)
    try:
        snapshot = backend.snapshot()
        assignments = backend.gpu_assignments() if hasattr(backend, "gpu_assignments") else None
    except BackendError as exc:
        duration = int((time.monotonic() - started) * 1000)
        Cluster.objects.filter(id=cluster.id).update(
            last_sync_at=now,
            last_sync_duration_ms=duration,
            last_sync_status=Cluster.SyncStatus.FAILED,
            last_sync_error=str(exc)[:500],
        )
        logger.warning("sync of %s failed: %s", cluster.name, exc)
        return SyncResult(cluster=cluster.name, ok=False, duration_ms=duration, error=str(exc))

    result = SyncResult(cluster=cluster.name, ok=True, duration_ms=0, taken_at=snapshot.taken_at)
    if hasattr(backend, "last_warnings"):
        result.warnings = list(backend.last_warnings())
        for warning in result.warnings[:20]:
            logger.info("sync of %s: %s", cluster.name, warning)
    with transaction.atomic():
        _apply_snapshot(cluster, snapshot, assignments, now, result)
        result.duration_ms = int((time.monotonic() - started) * 1000)
        Cluster.objects.filter(id=cluster.id).update(
            last_sync_at=now,
            last_sync_ok_at=now,
            last_sync_duration_ms=result.duration_ms,
            last_sync_status=Cluster.SyncStatus.OK,
            last_sync_error="",
        )
    return result


def _record(result: SyncResult, kind: str, counts: tuple[int, int, int]) -> None:
    result.created[kind], result.updated[kind], result.gone[kind] = counts


def _apply_snapshot(cluster, snapshot: ClusterSnapshot, assignments, now, result: SyncResult) -> None:
    # Node pools: the backend's NodePools, plus any pool name a node carries.
    pool_desired: dict[str, dict] = {}
    for pool in snapshot.node_pools:
        pool_desired[pool.name] = {
            "instance_types": list(pool.instance_types),
            "capacity_types": list(pool.capacity_types),
            "gpu_limit": pool.gpu_limit,
            "consolidation_policy": pool.consolidation_policy,
        }
    node_pool_types: dict[str, set[str]] = defaultdict(set)
    for node in snapshot.nodes:
        if node.node_pool and node.node_pool not in pool_desired:
            node_pool_types[node.node_pool].add(node.instance_type)
    for name, types in node_pool_types.items():
        pool_desired[name] = {
            "instance_types": sorted(t for t in types if t),
            "capacity_types": [],
            "gpu_limit": None,
            "consolidation_policy": "",
        }
    pools, *counts = _upsert(
        NodePool,
        _by_key(NodePool.objects.filter(cluster=cluster), lambda r: r.name),
        pool_desired,
        new_row=lambda key, v: NodePool(cluster=cluster, name=key, **v),
        now=now,
    )
    _record(result, "node_pools", counts)

    node_desired = {
        n.name: {
            "node_pool_id": pools[n.node_pool].pk if n.node_pool else None,
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
        for n in snapshot.nodes
    }
    nodes, *counts = _upsert(
        GpuNode,
        _by_key(GpuNode.objects.filter(cluster=cluster), lambda r: r.name),
        node_desired,
        new_row=lambda key, v: GpuNode(cluster=cluster, name=key, first_seen_at=now, **v),
        now=now,
    )
    _record(result, "nodes", counts)

    dep_desired = {
        (d.namespace, d.name): {
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
        }
        for d in snapshot.deployments
    }
    deployments, *counts = _upsert(
        ModelDeployment,
        _by_key(ModelDeployment.objects.filter(cluster=cluster), lambda r: (r.namespace, r.name)),
        dep_desired,
        new_row=lambda key, v: ModelDeployment(
            cluster=cluster, namespace=key[0], name=key[1], first_seen_at=now, **v
        ),
        now=now,
    )
    _record(result, "deployments", counts)

    scaler_desired = {}
    for a in snapshot.autoscalers:
        namespace = _autoscaler_namespace(a, snapshot)
        target = deployments.get((namespace, a.target_name))
        scaler_desired[(namespace, a.kind, a.name)] = {
            "target_name": a.target_name,
            "deployment_id": target.pk if target else None,
            "min_replicas": max(a.min_replicas, 0),
            "max_replicas": max(a.max_replicas, 0),
            "metric": a.metric[:300],
            "paused_replicas": a.paused_replicas,
            "paused": a.paused,
            "owned_by_scaledobject": a.owned_by_scaledobject,
            "resource_version": a.resource_version,
        }
    _, *counts = _upsert(
        Autoscaler,
        _by_key(Autoscaler.objects.filter(cluster=cluster), lambda r: (r.namespace, r.kind, r.name)),
        scaler_desired,
        new_row=lambda key, v: Autoscaler(cluster=cluster, namespace=key[0], kind=key[1], name=key[2], **v),
        now=now,
    )
    _record(result, "autoscalers", counts)

    pod_desired = {}
    for p in snapshot.pods:
        deployment = deployments.get((p.namespace, p.owner_name)) if p.owner_kind == "Deployment" else None
        node = nodes.get(p.node_name) if p.node_name else None
        pod_desired[(p.namespace, p.name)] = {
            "deployment_id": deployment.pk if deployment else None,
            "node_id": node.pk if node else None,
            "phase": p.phase,
            "ready": p.ready,
            "started_at": p.started_at,
            "gpu_requests": dict(p.gpu_requests),
            "restarts": max(p.restarts, 0),
            "owner_kind": p.owner_kind,
            "owner_name": p.owner_name,
            "waiting_reason": p.waiting_reason[:200],
        }
    pods, *counts = _upsert(
        Pod,
        _by_key(Pod.objects.filter(cluster=cluster), lambda r: (r.namespace, r.name)),
        pod_desired,
        new_row=lambda key, v: Pod(cluster=cluster, namespace=key[0], name=key[1], first_seen_at=now, **v),
        now=now,
    )
    _record(result, "pods", counts)

    _sync_gpus(cluster, snapshot, nodes, pods, assignments, now, result)

    quota_desired = {
        (q.namespace, q.name): {"hard": dict(q.hard), "used": dict(q.used), "resource_version": q.resource_version}
        for q in snapshot.quotas
    }
    _, *counts = _upsert(
        NamespaceQuota,
        _by_key(NamespaceQuota.objects.filter(cluster=cluster), lambda r: (r.namespace, r.name)),
        quota_desired,
        new_row=lambda key, v: NamespaceQuota(cluster=cluster, namespace=key[0], name=key[1], **v),
        now=now,
    )
    _record(result, "quotas", counts)


def _autoscaler_namespace(autoscaler, snapshot: ClusterSnapshot) -> str:
    # AutoscalerFacts has no namespace of its own in early backends; fall back to the target's.
    namespace = getattr(autoscaler, "namespace", "")
    if namespace:
        return namespace
    matches = [d.namespace for d in snapshot.deployments if d.name == autoscaler.target_name]
    return matches[0] if matches else ""


def _sync_gpus(cluster, snapshot, nodes, pods, assignments, now, result: SyncResult) -> None:
    """GPUs and MIG slices of every live node, and which pod holds each.

    The simulator says exactly which GPU or slice a pod holds. Kubernetes does not (only the
    kubelet's pod-resources API knows), so there the holding is inferred by packing each
    node's pods onto its free devices in name order: the counts are exact, the positions are
    a faithful picture rather than a fact.
    """
    held: dict[tuple[str, int, str | None], list] = defaultdict(list)  # (node, gpu, profile) -> pods
    if assignments is not None:
        for node_name, gpu_index, profile, _instance, ns, pod_name in sorted(
            assignments, key=lambda a: (a[0], a[1], a[2] or "", a[3] or 0, a[4], a[5])
        ):
            pod = pods.get((ns, pod_name))
            if pod is not None:
                held[(node_name, gpu_index, profile)].append(pod)

    gpu_desired: dict[tuple[int, int], dict] = {}
    mig_slots_by_gpu: dict[tuple[int, int], list[mig.MigSlot]] = {}
    for facts in snapshot.nodes:
        node = nodes[facts.name]
        slots = mig.node_mig_slots(
            gpu_product=facts.gpu_product,
            gpu_count=facts.gpu_count,
            mig_config=facts.mig_config,
            mig_devices=facts.mig_devices,
        )
        mig_gpus = {s.gpu_index for s in slots}
        for index in range(facts.gpu_count):
            gpu_desired[(node.pk, index)] = {
                "product": facts.gpu_product,
                "memory_mib": facts.gpu_memory_mib,
                "mig_enabled": index in mig_gpus,
                "pod_id": None,
            }
        for s in slots:
            mig_slots_by_gpu.setdefault((node.pk, s.gpu_index), []).append(s)

    # Who holds what.
    mig_holder: dict[tuple[int, int, int], int] = {}  # (node_pk, gpu, slot) -> pod pk
    if assignments is not None:
        for (node_name, gpu_index, profile), holders in held.items():
            node = nodes.get(node_name)
            if node is None:
                continue
            if profile is None:
                if (node.pk, gpu_index) in gpu_desired:
                    gpu_desired[(node.pk, gpu_index)]["pod_id"] = holders[0].pk
                continue
            free = [s for s in mig_slots_by_gpu.get((node.pk, gpu_index), []) if s.profile == profile]
            for s, pod in zip(free, holders, strict=False):
                mig_holder[(node.pk, gpu_index, s.slot)] = pod.pk
    else:
        _infer_holders(snapshot, nodes, pods, gpu_desired, mig_slots_by_gpu, mig_holder)

    existing_gpus = _by_key(
        Gpu.objects.filter(node__cluster=cluster), lambda r: (r.node_id, r.index)
    )
    gpus, *counts = _upsert(
        Gpu,
        existing_gpus,
        gpu_desired_for_live(gpu_desired, existing_gpus, nodes),
        new_row=lambda key, v: Gpu(node_id=key[0], index=key[1], **v),
        now=now,
        soft_delete=False,
    )
    _record(result, "gpus", counts)

    mig_desired = {}
    for (node_pk, gpu_index), slots in mig_slots_by_gpu.items():
        gpu = gpus.get((node_pk, gpu_index))
        if gpu is None:
            continue
        for s in slots:
            mig_desired[(gpu.pk, s.slot)] = {
                "profile": s.profile,
                "compute_slices": s.compute_slices,
                "memory_mib": s.memory_mib,
                "pod_id": mig_holder.get((node_pk, gpu_index, s.slot)),
            }
    _, *counts = _upsert(
        MigDevice,
        _by_key(MigDevice.objects.filter(gpu__node__cluster=cluster), lambda r: (r.gpu_id, r.slot)),
        mig_desired,
        new_row=lambda key, v: MigDevice(gpu_id=key[0], slot=key[1], **v),
        now=now,
        soft_delete=False,
    )
    _record(result, "mig_devices", counts)


def gpu_desired_for_live(gpu_desired, existing_gpus, nodes) -> dict:
    """GPU rows of nodes that are gone stay as they were (their history), others follow the snapshot."""
    live_node_pks = {n.pk for n in nodes.values()}
    kept = {key: _fields_of(row) for key, row in existing_gpus.items() if key[0] not in live_node_pks}
    return {**kept, **gpu_desired}


def _fields_of(gpu: Gpu) -> dict:
    return {"product": gpu.product, "memory_mib": gpu.memory_mib, "mig_enabled": gpu.mig_enabled, "pod_id": gpu.pod_id}


def _infer_holders(snapshot, nodes, pods, gpu_desired, mig_slots_by_gpu, mig_holder) -> None:
    by_node: dict[str, list] = defaultdict(list)
    for p in snapshot.pods:
        if p.node_name and p.phase in ("Running", "Pending", "Unknown"):
            by_node[p.node_name].append(p)
    whole_gpus: dict[int, list[int]] = defaultdict(list)
    for (node_pk, index), values in gpu_desired.items():
        if not values["mig_enabled"]:
            whole_gpus[node_pk].append(index)
    slots_by_node: dict[int, list[mig.MigSlot]] = defaultdict(list)
    for (node_pk, _), slots in mig_slots_by_gpu.items():
        slots_by_node[node_pk].extend(slots)
    for node_name, node_pods in by_node.items():
        node = nodes.get(node_name)
        if node is None:
            continue
        free_gpus = sorted(whole_gpus[node.pk])
        free_slots = sorted(slots_by_node[node.pk], key=lambda s: (s.gpu_index, s.slot))
        for p in sorted(node_pods, key=lambda p: (p.namespace, p.name)):
            pod = pods.get((p.namespace, p.name))
            resource, count = _gpu_resource_of(p.gpu_requests)
            if pod is None or not resource:
                continue
            if resource == GPU_RESOURCE:
                for index in free_gpus[:count]:
                    gpu_desired[(node.pk, index)]["pod_id"] = pod.pk
                free_gpus = free_gpus[count:]
            else:
                profile = resource.removeprefix(MIG_RESOURCE_PREFIX)
                taken = [s for s in free_slots if s.profile == profile][:count]
                for s in taken:
                    mig_holder[(node.pk, s.gpu_index, s.slot)] = pod.pk
                free_slots = [s for s in free_slots if s not in taken]
