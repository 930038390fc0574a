"""Where the scaling services meet the fleet: the cluster writer, and the database's view of a target."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from fleet.autoscalers import ReplicaOwner, ReplicaOwnerKind, replica_owner
from fleet.backends.base import ClusterWriter
from fleet.backends.registry import cluster_backend
from fleet.models import Autoscaler, Cluster, ModelDeployment, NamespaceQuota
from scaling import decisions
from scaling.models import ScaleAction


def cluster_writer(cluster: Cluster) -> ClusterWriter:
    """The backend of the cluster, as a writer (every cluster backend is one)."""
    return cluster_backend(cluster)


def deployment_owner(deployment: ModelDeployment) -> ReplicaOwner:
    """Who owns the deployment's replicas, as the synced rows say (fleet.autoscalers.replica_owner)."""
    # Linked by the sync, or by target name when the link is missing (the target appeared later).
    rows = Autoscaler.objects.alive().filter(
        Q(deployment_id=deployment.id) | Q(target_name=deployment.name),
        cluster_id=deployment.cluster_id,
        namespace=deployment.namespace,
    )
    return replica_owner(deployment.name, [a.facts() for a in rows])


def quota_headroom(deployment: ModelDeployment, *, lock: bool = False) -> list[decisions.QuotaHeadroom]:
    """The namespace's quotas on the deployment's GPU resource: hard, used, and promised to actions in flight.

    `lock` (inside a transaction) takes the quota rows with SELECT ... FOR NO KEY UPDATE, so that two
    requests checking the same quota run one after the other on PostgreSQL: the second sees the
    first one's pending action. SQLite ignores FOR UPDATE, and needs nothing more: its IMMEDIATE
    transactions take the database's one write lock up front, so the whole check-and-insert is
    already serial.
    """
    if not deployment.gpu_resource:
        return []
    key = decisions.quota_key(deployment.gpu_resource)
    quotas = (
        NamespaceQuota.objects.alive()
        .filter(cluster_id=deployment.cluster_id, namespace=deployment.namespace)
        .order_by("id")
    )
    if lock:
        quotas = quotas.select_for_update(no_key=True)  # a quota action's foreign key may still point here
    quotas = [q for q in quotas if key in (q.hard or {})]
    if not quotas:
        return []
    in_flight = actions_in_flight(deployment)
    promised = decisions.gpus_promised(in_flight)
    return [
        decisions.QuotaHeadroom(
            name=quota.name,
            resource=key,
            hard=int(quota.hard[key] or 0),
            used=int((quota.used or {}).get(key, 0) or 0),
            in_flight=promised,
            in_flight_actions=len(in_flight),
        )
        for quota in quotas
    ]


def actions_in_flight(deployment: ModelDeployment) -> list[decisions.ActionInFlight]:
    """Pending and running scale actions on the namespace's other deployments using the same GPU resource.

    Their pods are not in the quota's `used` yet. (Once an action has succeeded its pods count
    in `used` only after they are scheduled and the next sync has read the ResourceQuota.)"""
    rows = (
        ScaleAction.objects.filter(
            cluster_id=deployment.cluster_id,
            namespace=deployment.namespace,
            operation=ScaleAction.Operation.SCALE,
            status__in=(ScaleAction.Status.PENDING, ScaleAction.Status.RUNNING),
            deployment__gpu_resource=deployment.gpu_resource,
        )
        .exclude(deployment_id=deployment.id)
        .values_list("deployment_id", "request", "deployment__replicas_desired", "deployment__gpu_per_replica")
    )
    result = []
    for deployment_id, request, current, gpu_per_replica in rows:
        replicas = (request or {}).get("replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool):
            result.append(decisions.ActionInFlight(deployment_id, replicas, current, gpu_per_replica))
    return result


@dataclass(frozen=True)
class DbView:
    """What the database (the last sync, plus our own writes) says about a deployment's target."""

    target: ReplicaOwner
    current: dict


def db_view(deployment: ModelDeployment) -> DbView:
    """Raises ApplicationError(409) when two autoscalers own the deployment."""
    target = decisions.scale_target(deployment.name, deployment_owner(deployment))
    return DbView(target=target, current=current_values(target, deployment))


def current_values(target: ReplicaOwner, deployment: ModelDeployment) -> dict:
    scaler = target.autoscaler
    if target.kind == ReplicaOwnerKind.DEPLOYMENT:
        return {"replicas": deployment.replicas_desired}
    if target.kind == ReplicaOwnerKind.SCALEDOBJECT:
        return {
            "min_replicas": scaler.min_replicas,
            "max_replicas": scaler.max_replicas,
            "paused_replicas": scaler.paused_replicas,
        }
    return {"min_replicas": scaler.min_replicas, "max_replicas": scaler.max_replicas}


def mirror_write(*, cluster_id: int, namespace: str, target_kind: str, target_name: str, after: dict, rv: str) -> None:
    """Make the synced rows show what we just wrote, so pages and the next request see it before
    the next sync does (the sync then finds nothing to change)."""
    if target_kind == ReplicaOwnerKind.DEPLOYMENT:
        updates = {"resource_version": rv} if rv else {}
        if "replicas" in after and after["replicas"] is not None:
            updates["replicas_desired"] = after["replicas"]
        ModelDeployment.objects.filter(cluster_id=cluster_id, namespace=namespace, name=target_name).update(**updates)
    elif target_kind in (ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA):
        updates = {k: v for k, v in after.items() if k in ("min_replicas", "max_replicas")}
        if "paused_replicas" in after:
            updates["paused_replicas"] = after["paused_replicas"]
        if rv:
            updates["resource_version"] = rv
        if updates:
            Autoscaler.objects.filter(
                cluster_id=cluster_id, namespace=namespace, kind=target_kind, name=target_name
            ).update(**updates)
    elif target_kind == ScaleAction.TargetKind.QUOTA:
        updates = {"hard": after["hard"]} if "hard" in after else {}
        if rv:
            updates["resource_version"] = rv
        NamespaceQuota.objects.filter(cluster_id=cluster_id, namespace=namespace, name=target_name).update(**updates)
