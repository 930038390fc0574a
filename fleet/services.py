"""Fleet services: registering clusters and refreshing them (sync + cost accrual)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from config.errors import ApplicationError
from fleet.models import Cluster
from fleet.sync import SyncResult, cluster_sync

NAMESPACE_MAX = 63


def cluster_refresh(*, cluster: Cluster) -> SyncResult:
    """One sync of a cluster, then the cost of what ran since the previous one.

    What the periodic task and `manage.py cluster_sync` run. Accrual is skipped when the
    sync failed: a cluster we cannot see is not billed on guesses.
    """
    result = cluster_sync(cluster=cluster)
    if result.ok:
        from costing.services import cost_accrue

        cost_accrue(cluster=cluster, now=result.taken_at)
    return result


def _validate_namespaces(namespaces: list[str]) -> list[str]:
    import re

    pattern = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    for ns in namespaces:
        if len(ns) > NAMESPACE_MAX or not pattern.match(ns):
            raise ApplicationError(f"{ns!r} is not a valid namespace name", field="namespaces")
    return sorted(set(namespaces))


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
    region: str = "",
) -> Cluster:
    """Register a cluster. Checks what can be checked without contacting it."""
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator, validate_slug

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
            URLValidator(schemes=["http", "https"])(prometheus_url)
        except ValidationError:
            raise ApplicationError(f"{prometheus_url!r} is not an http(s) URL", field="prometheus_url")
    return Cluster.objects.create(
        name=name,
        backend=backend,
        kubeconfig_path=str(Path(kubeconfig_path).resolve()) if kubeconfig_path else "",
        kube_context=kube_context,
        in_cluster=in_cluster,
        namespaces=_validate_namespaces(namespaces or []),
        prometheus_url=prometheus_url,
        region=region,
    )
