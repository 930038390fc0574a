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
    ClusterReader,
    ClusterSnapshot,
)
from fleet.backends.registry import cluster_backend
from fleet.events import scaling_events_store
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
from fleet.rows import autoscaler_row, deployment_row, node_row, pod_row, pool_rows, quota_row

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


def cluster_sync(*, cluster: Cluster, backend: ClusterReader | None = None) -> SyncResult:
    """Read the whole cluster through its backend and make the database match it."""
    started = time.monotonic()
    now = timezone.now()
    backend = backend or cluster_backend(cluster)
    try:
        snapshot = backend.snapshot()
        assignments = backend.gpu_assignments()
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


def row_key(model: type[models.Model]) -> Callable[[models.Model], Hashable]:
    """The natural key a table's rows are matched on (what `desired` dicts are keyed by)."""
    return _ROW_KEYS[model]


_ROW_KEYS: dict[type[models.Model], Callable[[models.Model], Hashable]] = {
    NodePool: lambda r: r.name,
    GpuNode: lambda r: r.name,
    ModelDeployment: lambda r: (r.namespace, r.name),
    Autoscaler: lambda r: (r.namespace, r.kind, r.name),
    Pod: lambda r: (r.namespace, r.name),
    NamespaceQuota: lambda r: (r.namespace, r.name),
    Gpu: lambda r: (r.node_id, r.index),
    MigDevice: lambda r: (r.gpu_id, r.slot),
}


def _new_row(model: type[models.Model], cluster: Cluster, now: datetime) -> Callable[[Hashable, dict], models.Model]:
    if model in (NodePool, GpuNode):
        seen = {"first_seen_at": now} if model is GpuNode else {}
        return lambda key, v: model(cluster=cluster, name=key, **seen, **v)
    if model is Autoscaler:
        return lambda key, v: Autoscaler(cluster=cluster, namespace=key[0], kind=key[1], name=key[2], **v)
    if model in (ModelDeployment, Pod, NamespaceQuota):
        seen = {} if model is NamespaceQuota else {"first_seen_at": now}
        return lambda key, v: model(cluster=cluster, namespace=key[0], name=key[1], **seen, **v)
    if model is Gpu:
        return lambda key, v: Gpu(node_id=key[0], index=key[1], **v)
    return lambda key, v: MigDevice(gpu_id=key[0], slot=key[1], **v)


def upsert_rows(
    model: type[models.Model],
    rows: Iterable[models.Model],
    desired: dict[Hashable, dict],
    *,
    cluster: Cluster,
    now: datetime,
) -> tuple[dict[Hashable, models.Model], int, int, int]:
    """`_upsert` over `rows` (all of the cluster's rows of `model`, or only those a batch
    touches: rows absent from `desired` are marked gone, or deleted for GPUs and MIG slices)."""
    return _upsert(
        model,
        _by_key(rows, row_key(model)),
        desired,
        new_row=_new_row(model, cluster, now),
        now=now,
        soft_delete=model not in (Gpu, MigDevice),
    )


def _apply_snapshot(cluster, snapshot: ClusterSnapshot, assignments, now, result: SyncResult) -> None:
    def upsert(model, desired):
        return upsert_rows(model, model.objects.filter(cluster=cluster), desired, cluster=cluster, now=now)

    pools, *counts = upsert(NodePool, pool_rows(snapshot.node_pools, snapshot.nodes))
    _record(result, "node_pools", counts)
    nodes, *counts = upsert(
        GpuNode, {n.name: node_row(n, pools[n.node_pool].pk if n.node_pool else None) for n in snapshot.nodes}
    )
    _record(result, "nodes", counts)
    deployments, *counts = upsert(
        ModelDeployment, {(d.namespace, d.name): deployment_row(d) for d in snapshot.deployments}
    )
    _record(result, "deployments", counts)

    scaler_desired = {}
    for a in snapshot.autoscalers:
        target = deployments.get((a.namespace, a.target_name))
        scaler_desired[(a.namespace, a.kind, a.name)] = autoscaler_row(a, target.pk if target else None)
    _, *counts = upsert(Autoscaler, scaler_desired)
    _record(result, "autoscalers", counts)

    pod_desired = {}
    for p in snapshot.pods:
        deployment = deployments.get((p.namespace, p.owner_name)) if p.owner_kind == "Deployment" else None
        node = nodes.get(p.node_name) if p.node_name else None
        pod_desired[(p.namespace, p.name)] = pod_row(
            p, deployment.pk if deployment else None, node.pk if node else None
        )
    pods, *counts = upsert(Pod, pod_desired)
    _record(result, "pods", counts)

    sync_gpus(
        cluster,
        snapshot.nodes,
        snapshot.pods,
        nodes,
        pods,
        assignments,
        now,
        result,
        gpus=Gpu.objects.filter(node__cluster=cluster),
        mig_devices=MigDevice.objects.filter(gpu__node__cluster=cluster),
    )

    _, *counts = upsert(NamespaceQuota, {(q.namespace, q.name): quota_row(q) for q in snapshot.quotas})
    _record(result, "quotas", counts)

    added = scaling_events_store(cluster=cluster, facts=snapshot.events, deployments=deployments, now=now)
    _record(result, "events", (added, 0, 0))


def sync_gpus(
    cluster, node_facts, pod_facts, nodes, pods, assignments, now, result: SyncResult, *, gpus, mig_devices
) -> None:
    """GPUs and MIG slices of the nodes in `node_facts` (`nodes`: their rows by name), and which
    of `pod_facts` (`pods`: their rows by key) holds each. `gpus` / `mig_devices` are the
    existing rows to match: the cluster's, or those of the nodes a watch batch touched.

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
    for facts in node_facts:
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
        _infer_holders(pod_facts, nodes, pods, gpu_desired, mig_slots_by_gpu, mig_holder)

    gpus = list(gpus)
    existing_gpus = _by_key(gpus, row_key(Gpu))
    gpus, *counts = upsert_rows(
        Gpu, gpus, gpu_desired_for_live(gpu_desired, existing_gpus, nodes), cluster=cluster, now=now
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
    _, *counts = upsert_rows(MigDevice, mig_devices, mig_desired, cluster=cluster, now=now)
    _record(result, "mig_devices", counts)


def gpu_desired_for_live(gpu_desired, existing_gpus, nodes) -> dict:
    """GPU rows of nodes that are gone stay as they were (their history), others follow the snapshot."""
    live_node_pks = {n.pk for n in nodes.values()}
    kept = {key: _fields_of(row) for key, row in existing_gpus.items() if key[0] not in live_node_pks}
    return {**kept, **gpu_desired}


def _fields_of(gpu: Gpu) -> dict:
    return {"product": gpu.product, "memory_mib": gpu.memory_mib, "mig_enabled": gpu.mig_enabled, "pod_id": gpu.pod_id}


def _infer_holders(pod_facts, nodes, pods, gpu_desired, mig_slots_by_gpu, mig_holder) -> None:
    by_node: dict[str, list] = defaultdict(list)
    for p in pod_facts:
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
