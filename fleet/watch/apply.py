"""A watch batch into the database: only the rows of the objects that changed.

The rows are built by `fleet.rows` and written by the full sync's own `upsert_rows` and
`sync_gpus`, given only the rows the batch touches (one SELECT per table it touches, by natural
key) instead of the whole cluster's: a pod becoming Ready is a SELECT of that pod, of its node
and its Deployment (for the foreign keys), and one UPDATE, in one transaction. Objects that
vanished are marked gone, as the full sync does. GPUs are re-packed only on the nodes whose
pods arrived, left, moved or changed their GPU requests.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable

from django.db import models, transaction

from fleet.models import Autoscaler, Cluster, Gpu, GpuNode, MigDevice, ModelDeployment, NamespaceQuota, NodePool, Pod
from fleet.rows import autoscaler_row, deployment_row, node_row, pod_row, quota_row
from fleet.sync import SyncResult, row_key, sync_gpus, upsert_rows
from fleet.watch.state import Changes, ClusterState

_LABELS = {
    NodePool: "node_pools",
    GpuNode: "nodes",
    ModelDeployment: "deployments",
    Autoscaler: "autoscalers",
    Pod: "pods",
    NamespaceQuota: "quotas",
}
# Past this many keys, one SELECT of the cluster's whole table beats a long IN list.
_KEYS_IN_ONE_SELECT = 5000


def _rows_of(model: type[models.Model], cluster: Cluster, keys: Iterable[Hashable], *, alive: bool = False) -> list:
    """The cluster's rows of `model` with these natural keys (string keys are names; tuple keys
    end with the name). `alive`: only rows not marked gone (what a foreign key may point at)."""
    keys = set(keys)
    if not keys:
        return []
    rows = model.objects.filter(cluster=cluster)
    if len(keys) <= _KEYS_IN_ONE_SELECT:
        rows = rows.filter(name__in={k if isinstance(k, str) else k[-1] for k in keys})
    if alive:
        rows = rows.filter(gone_at__isnull=True)
    key = row_key(model)
    return [r for r in rows if key(r) in keys]


def changes_apply(*, cluster: Cluster, state: ClusterState, changes: Changes, now) -> SyncResult:
    """Write what changed into the database, in one transaction."""
    started = time.monotonic()
    result = SyncResult(cluster=cluster.name, ok=True, duration_ms=0, taken_at=now, warnings=list(changes.warnings))
    with transaction.atomic():
        _apply(cluster, state, changes, now, result)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _apply(cluster: Cluster, state: ClusterState, changes: Changes, now, result: SyncResult) -> None:
    def upsert(model, keys, desired):
        live, *counts = upsert_rows(model, _rows_of(model, cluster, keys), desired, cluster=cluster, now=now)
        label = _LABELS[model]
        result.created[label], result.updated[label], result.gone[label] = counts
        return live

    pools = {}
    if changes.node_pools:
        desired = {k: state.pool_rows[k] for k in changes.node_pools if k in state.pool_rows}
        pools = upsert(NodePool, changes.node_pools, desired)
    nodes = {}
    if changes.nodes:
        live = [state.nodes[name] for name in changes.nodes if name in state.nodes]
        needed = {n.node_pool for n in live if n.node_pool} - pools.keys()
        pools.update({p.name: p for p in _rows_of(NodePool, cluster, needed, alive=True)})
        desired = {n.name: node_row(n, pools[n.node_pool].pk if n.node_pool in pools else None) for n in live}
        nodes = upsert(GpuNode, changes.nodes, desired)
    deployments = {}
    if changes.deployments:
        desired = {k: deployment_row(state.deployments[k]) for k in changes.deployments if k in state.deployments}
        deployments = upsert(ModelDeployment, changes.deployments, desired)

    def deployments_for(keys: set) -> dict:
        missing = keys - deployments.keys()
        found = {(d.namespace, d.name): d for d in _rows_of(ModelDeployment, cluster, missing, alive=True)}
        return {**found, **deployments}

    if changes.autoscalers:
        live = {k: state.autoscalers[k] for k in changes.autoscalers if k in state.autoscalers}
        targets = deployments_for({(k[0], a.target_name) for k, a in live.items()})
        desired = {}
        for key, a in live.items():
            target = targets.get((key[0], a.target_name))
            desired[key] = autoscaler_row(a, target.pk if target else None)
        upsert(Autoscaler, changes.autoscalers, desired)

    def nodes_for(names: set) -> dict:
        return {**{n.name: n for n in _rows_of(GpuNode, cluster, names - nodes.keys(), alive=True)}, **nodes}

    pods = {}
    if changes.pods:
        live = [state.pods[k] for k in changes.pods if k in state.pods]
        owners = deployments_for({(p.namespace, p.owner_name) for p in live if p.owner_kind == "Deployment"})
        hosts = nodes_for({p.node_name for p in live if p.node_name})
        desired = {}
        for p in live:
            deployment = owners.get((p.namespace, p.owner_name)) if p.owner_kind == "Deployment" else None
            node = hosts.get(p.node_name)
            desired[(p.namespace, p.name)] = pod_row(
                p, deployment.pk if deployment else None, node.pk if node else None
            )
        pods = upsert(Pod, changes.pods, desired)

    if changes.gpu_nodes:
        node_facts = [state.nodes[name] for name in changes.gpu_nodes if name in state.nodes]
        node_rows = nodes_for({n.name for n in node_facts})
        node_rows = {name: row for name, row in node_rows.items() if name in changes.gpu_nodes}
        pod_facts = state.pods_on(node_rows)
        missing = {(p.namespace, p.name) for p in pod_facts} - pods.keys()
        holders = {**{(p.namespace, p.name): p for p in _rows_of(Pod, cluster, missing, alive=True)}, **pods}
        sync_gpus(
            cluster,
            [n for n in node_facts if n.name in node_rows],
            [p for p in pod_facts if (p.namespace, p.name) in holders],
            node_rows,
            holders,
            None,
            now,
            result,
            gpus=Gpu.objects.filter(node__cluster=cluster, node__name__in=changes.gpu_nodes),
            mig_devices=MigDevice.objects.filter(gpu__node__cluster=cluster, gpu__node__name__in=changes.gpu_nodes),
        )

    if changes.quotas:
        desired = {k: quota_row(state.quotas[k]) for k in changes.quotas if k in state.quotas}
        upsert(NamespaceQuota, changes.quotas, desired)
