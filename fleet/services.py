"""Fleet services: registering clusters and refreshing them (sync, replica history, events).

Cost is not accrued here: `costing.tasks` bills each cluster up to its last good sync, on its own
schedule, so a slow Prometheus never stretches a sync."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.errors import ApplicationError
from core.validators import reason_problem
from fleet.cluster_rules import ClusterConnection, cluster_connection_check, cluster_name_check
from fleet.events import watched_cluster_events_record
from fleet.models import Cluster, ModelDeployment, SloChange
from fleet.replica_history import replica_changes_record
from fleet.slo import validate_slo
from fleet.sync import SyncResult, cluster_sync


def cluster_refresh(*, cluster: Cluster) -> SyncResult:
    """One sync of a cluster, then the replica counts that changed (the replicas chart's own
    history). What the periodic task and `manage.py cluster_sync` run."""
    result = cluster_sync(cluster=cluster)
    metrics.sync_observed(cluster=cluster.name, seconds=result.duration_ms / 1000, ok=result.ok)
    if result.ok:
        replica_changes_record(cluster=cluster, at=result.taken_at or timezone.now())
    return result


def cluster_watched_refresh(*, cluster: Cluster) -> str:
    """The beat's turn for a cluster whose watcher (`cluster_watch`) holds the lease: the
    watcher keeps the inventory current, so no full sync; only the replica counts that changed
    since the last turn (as the watcher wrote them), while its watches are good, and the Events
    and NodeClaims, which the watcher does not keep."""
    if cluster.last_sync_status == Cluster.SyncStatus.OK and cluster.last_sync_ok_at is not None:
        replica_changes_record(cluster=cluster, at=timezone.now())
    events = watched_cluster_events_record(cluster=cluster, now=timezone.now())
    return f"{cluster.name}: kept current by its watcher ({cluster.watch_holder}); no full sync; {events}"


@transaction.atomic
def cluster_add(
    *,
    name: str,
    backend: str,
    kubeconfig_path: str = "",
    kube_context: str = "",
    in_cluster: bool = False,
    namespaces: list[str] | None = None,
    prometheus_url: str = "",
    prometheus_bearer_token_file: str = "",
    prometheus_basic_auth_user: str = "",
    prometheus_basic_auth_password_file: str = "",
    prometheus_timeout_seconds: float = 3.0,
    prometheus_namespace_label: str = "namespace",
    prometheus_pod_label: str = "pod",
    prometheus_gpu_namespace_label: str = "namespace",
    prometheus_gpu_pod_label: str = "pod",
    region: str = "",
) -> Cluster:
    """Register a cluster. Checks what can be checked without contacting it (fleet/cluster_rules.py)."""
    cluster_name_check(name)
    if Cluster.objects.filter(name=name).exists():
        raise ApplicationError(f"a cluster named {name!r} already exists", field="name")
    labels = {
        "prometheus_namespace_label": prometheus_namespace_label,
        "prometheus_pod_label": prometheus_pod_label,
        "prometheus_gpu_namespace_label": prometheus_gpu_namespace_label,
        "prometheus_gpu_pod_label": prometheus_gpu_pod_label,
    }
    namespaces = cluster_connection_check(
        ClusterConnection(
            backend=backend,
            kubeconfig_path=kubeconfig_path,
            in_cluster=in_cluster,
            namespaces=namespaces or [],
            prometheus_url=prometheus_url,
            prometheus_bearer_token_file=prometheus_bearer_token_file,
            prometheus_basic_auth_user=prometheus_basic_auth_user,
            prometheus_basic_auth_password_file=prometheus_basic_auth_password_file,
            prometheus_timeout_seconds=prometheus_timeout_seconds,
            labels=labels,
        )
    )
    return Cluster.objects.create(
        name=name,
        backend=backend,
        kubeconfig_path=str(Path(kubeconfig_path).resolve()) if kubeconfig_path else "",
        kube_context=kube_context,
        in_cluster=in_cluster,
        namespaces=namespaces,
        prometheus_url=prometheus_url,
        prometheus_bearer_token_file=prometheus_bearer_token_file,
        prometheus_basic_auth_user=prometheus_basic_auth_user,
        prometheus_basic_auth_password_file=prometheus_basic_auth_password_file,
        prometheus_timeout_seconds=prometheus_timeout_seconds,
        prometheus_namespace_label=prometheus_namespace_label,
        prometheus_pod_label=prometheus_pod_label,
        prometheus_gpu_namespace_label=prometheus_gpu_namespace_label,
        prometheus_gpu_pod_label=prometheus_gpu_pod_label,
        region=region,
    )


def deployment_slo_set(
    *, deployment: ModelDeployment, seconds: float | None, reason: str, actor_user, now: datetime | None = None
) -> SloChange | None:
    """Set a deployment's TTFT p95 objective; None returns it to the default. ScaleDeck's own
    setting, not the cluster's: nothing is written to Kubernetes, but the change is audited
    (SloChange: who, before, after, why). Returns the audit row, or None when nothing changed."""
    reason = (reason or "").strip()
    if seconds is not None:
        error = validate_slo(seconds)
        if error:
            raise ApplicationError(error, field="ttft_slo_seconds")
    if not reason:
        raise ApplicationError("a reason is required: it goes in the audit log", field="reason")
    if problem := reason_problem(reason):
        raise ApplicationError(problem, field="reason")
    with transaction.atomic():
        before = (
            ModelDeployment.objects.select_for_update().values_list("ttft_slo_seconds", flat=True).get(id=deployment.id)
        )
        if before == seconds:
            return None
        ModelDeployment.objects.filter(id=deployment.id).update(ttft_slo_seconds=seconds)
        return SloChange.objects.create(
            deployment=deployment,
            actor_user=actor_user if getattr(actor_user, "pk", None) else None,
            actor_label=actor_user.get_username()[:120],
            before_seconds=before,
            after_seconds=seconds,
            reason=reason,
            at=now or timezone.now(),
        )
