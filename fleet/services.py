"""Fleet services: registering clusters and refreshing them (sync + cost accrual)."""

from __future__ import annotations

import re
from pathlib import Path

from django.db import transaction

from config.errors import ApplicationError
from fleet.models import Cluster, ModelDeployment, validate_service_url
from fleet.slo import validate_slo
from fleet.sync import SyncResult, cluster_sync
from ops import metrics

NAMESPACE_MAX = 63


def cluster_refresh(*, cluster: Cluster) -> SyncResult:
    """One sync of a cluster, then the cost of what ran since the previous one.

    What the periodic task and `manage.py cluster_sync` run. Accrual is skipped when the
    sync failed: a cluster we cannot see is not billed on guesses.
    """
    result = cluster_sync(cluster=cluster)
    metrics.sync_observed(cluster=cluster.name, seconds=result.duration_ms / 1000, ok=result.ok)
    if result.ok:
        from costing.services import cost_accrue

        cost_accrue(cluster=cluster, now=result.taken_at)
    return result


def _validate_namespaces(namespaces: list[str]) -> list[str]:
    pattern = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    for ns in namespaces:
        if len(ns) > NAMESPACE_MAX or not pattern.match(ns):
            raise ApplicationError(f"{ns!r} is not a valid namespace name", field="namespaces")
    return sorted(set(namespaces))


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _validate_prometheus(*, token_file: str, user: str, password_file: str, timeout: float, labels: dict) -> None:
    """Secrets stay in files (only their paths are stored); check the files are there now."""
    if token_file and user:
        raise ApplicationError("use a bearer token or basic auth for Prometheus, not both", field="prometheus")
    for path, what in ((token_file, "prometheus_token_file"), (password_file, "prometheus_password_file")):
        if path and not Path(path).is_file():
            raise ApplicationError(f"{path} does not exist", field=what)
    if password_file and not user:
        raise ApplicationError("a Prometheus password file needs a user", field="prometheus_user")
    if not 0 < timeout <= 60:
        raise ApplicationError(f"Prometheus timeout {timeout} s must be between 0 and 60 s", field="prometheus_timeout")
    for field, label in labels.items():
        if not LABEL_NAME.match(label):
            raise ApplicationError(f"{label!r} is not a Prometheus label name", field=field)


def cluster_watched_accrue(*, cluster: Cluster) -> str:
    """The beat's turn for a cluster whose watcher (`cluster_watch`) holds the lease: the
    watcher keeps the inventory current, so no full sync; only the cost of what ran, billed up
    to the watcher's last good renewal (none while its watches fail)."""
    if cluster.last_sync_status == Cluster.SyncStatus.OK and cluster.last_sync_ok_at is not None:
        from costing.services import cost_accrue

        cost_accrue(cluster=cluster, now=cluster.last_sync_ok_at)
    return f"{cluster.name}: kept current by its watcher ({cluster.watch_holder}); no full sync"


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
    """Register a cluster. Checks what can be checked without contacting it."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_slug

    try:
        validate_slug(name)
    except ValidationError:
        raise ApplicationError(f"{name!r} is not a valid cluster name (letters, digits, - and _)", field="name")
    if Cluster.objects.filter(name=name).exists():
        raise ApplicationError(f"a cluster named {name!r} already exists", field="name")
    if backend not in Cluster.Backend.values:
        raise ApplicationError(f"unknown backend {backend!r}", field="backend")
    if backend == Cluster.Backend.KUBERNETES and not in_cluster:
        if not kubeconfig_path:
            raise ApplicationError("a Kubernetes cluster needs --kubeconfig or --in-cluster", field="kubeconfig")
        if not Path(kubeconfig_path).is_file():
            raise ApplicationError(f"kubeconfig {kubeconfig_path} does not exist", field="kubeconfig")
    if prometheus_url:
        try:
            validate_service_url(prometheus_url)
        except ValidationError as exc:
            raise ApplicationError(exc.messages[0], field="prometheus_url") from None
    _validate_prometheus(
        token_file=prometheus_bearer_token_file,
        user=prometheus_basic_auth_user,
        password_file=prometheus_basic_auth_password_file,
        timeout=prometheus_timeout_seconds,
        labels={
            "prometheus_namespace_label": prometheus_namespace_label,
            "prometheus_pod_label": prometheus_pod_label,
            "prometheus_gpu_namespace_label": prometheus_gpu_namespace_label,
            "prometheus_gpu_pod_label": prometheus_gpu_pod_label,
        },
    )
    return Cluster.objects.create(
        name=name,
        backend=backend,
        kubeconfig_path=str(Path(kubeconfig_path).resolve()) if kubeconfig_path else "",
        kube_context=kube_context,
        in_cluster=in_cluster,
        namespaces=_validate_namespaces(namespaces or []),
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


def deployment_slo_set(*, deployment: ModelDeployment, seconds: float | None) -> None:
    """Set a deployment's TTFT p95 objective; None returns it to the default. ScaleDeck's own
    setting, not the cluster's: nothing is written to Kubernetes."""
    if seconds is not None:
        error = validate_slo(seconds)
        if error:
            raise ApplicationError(error, field="ttft_slo_seconds")
    ModelDeployment.objects.filter(id=deployment.id).update(ttft_slo_seconds=seconds)
