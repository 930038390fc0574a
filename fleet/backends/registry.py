"""Which backend serves a Cluster row. The only place that maps rows to backend objects.

Secrets (Prometheus token and password) are read here from the files the Cluster row names,
so they never sit in the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from django.utils import timezone

from fleet.backends.base import (
    BackendError,
    ClusterBackend,
    DeploymentMetrics,
    DeploymentRef,
    GpuUtilization,
    MetricsBackend,
    Series,
    WatchLease,
)
from fleet.backends.signals import AlertSignals
from fleet.models import Cluster
from fleet.secret_files import secret_dirs, secret_path_error

if TYPE_CHECKING:
    from fleet.backends.kubernetes.backend import KubernetesClusterBackend
    from fleet.backends.observed import ObservedPrometheusBackend
    from fleet.backends.simulated.metrics import SimulatedMetricsBackend


def _read_secret(path: str, what: str) -> str:
    # Checked again on every read: the row may have been edited, or a link swapped, since it was set.
    refusal = secret_path_error(path, what=f"{what} file")
    if refusal:
        raise BackendError(refusal)
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise BackendError(f"{what} file {path} cannot be read: {exc.strerror}") from None


def cluster_backend(cluster: Cluster) -> ClusterBackend:
    if cluster.backend == Cluster.Backend.SIMULATED:
        from fleet.backends.simulated.cluster import SimulatedClusterBackend
        from fleet.world_store import DbWorldStore

        return SimulatedClusterBackend(DbWorldStore(cluster), clock=timezone.now)
    return _kubernetes_backend(cluster)


def _kubernetes_backend(cluster: Cluster) -> KubernetesClusterBackend:
    from fleet.backends.kubernetes.backend import KubernetesClusterBackend

    return KubernetesClusterBackend(
        kubeconfig_path=cluster.kubeconfig_path,
        context=cluster.kube_context,
        in_cluster=cluster.in_cluster,
        timeout_seconds=cluster.request_timeout_seconds,
        namespaces=tuple(cluster.namespaces or ()),
        secret_dirs=secret_dirs(),
    )


def cluster_watch_lease(cluster: Cluster) -> WatchLease | None:
    """The Kubernetes Lease a watcher of `cluster` holds besides the database lease: only where it
    reaches the cluster in-cluster (its pod runs there, so the Lease is in its own namespace)."""
    if cluster.backend == Cluster.Backend.SIMULATED or not cluster.in_cluster:
        return None
    return _kubernetes_backend(cluster)


class UnavailableMetricsBackend:
    """For a cluster with no metrics source: every value unknown, with the reason."""

    def __init__(self, reason: str):
        self.reason = reason
        self.last_error: BackendError | None = None  # the reason is in every answer instead

    def deployment_metrics(self, refs: Sequence[DeploymentRef]) -> dict[tuple[str, str], DeploymentMetrics]:
        return {(r.namespace, r.name): DeploymentMetrics(unavailable_reason=self.reason) for r in refs}

    def deployment_series(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int
    ) -> dict[str, Series]:
        raise BackendError(self.reason)

    def gpu_utilization(self, node_names: Sequence[str]) -> list[GpuUtilization]:
        raise BackendError(self.reason)

    def token_increase(
        self, refs: Sequence[DeploymentRef], start: datetime, end: datetime
    ) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        raise BackendError(self.reason)

    def deployment_history(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int = 60
    ) -> dict[int, dict[str, float | None]]:
        raise BackendError(self.reason)

    def instant_vectors(self, queries, at: datetime) -> dict:
        raise BackendError(self.reason)

    def alert_signals(self, objectives: Mapping[tuple[str, str], float], at: datetime) -> AlertSignals:
        raise BackendError(self.reason)

    def close(self) -> None:
        """Nothing to close: no connection was made."""


def prometheus_backend(cluster: Cluster) -> ObservedPrometheusBackend:
    """The cluster's Prometheus, for callers that speak PromQL themselves (the SLO hours, the
    timeline's readings). Raises BackendError naming why there is none: no URL, or a token or
    password file that cannot be read."""
    from fleet.backends.observed import ObservedPrometheusBackend  # times and counts the queries

    if not cluster.prometheus_url:
        raise BackendError(f"no Prometheus URL configured for cluster {cluster.name}")
    token = (
        _read_secret(cluster.prometheus_bearer_token_file, "Prometheus token")
        if cluster.prometheus_bearer_token_file
        else ""
    )
    basic = None
    if cluster.prometheus_basic_auth_user:
        password = (
            _read_secret(cluster.prometheus_basic_auth_password_file, "Prometheus password")
            if cluster.prometheus_basic_auth_password_file
            else ""
        )
        basic = (cluster.prometheus_basic_auth_user, password)
    return ObservedPrometheusBackend(
        cluster_name=cluster.name,
        url=cluster.prometheus_url,
        bearer_token=token,
        basic_auth=basic,
        timeout_seconds=cluster.prometheus_timeout_seconds,
        namespace_label=cluster.prometheus_namespace_label,
        pod_label=cluster.prometheus_pod_label,
        gpu_namespace_label=cluster.prometheus_gpu_namespace_label,
        gpu_pod_label=cluster.prometheus_gpu_pod_label,
        clock=timezone.now,
    )


def metrics_backend(cluster: Cluster) -> MetricsBackend:
    """The cluster's metrics source: its Prometheus, its simulated world, or none (every value
    unknown, with the reason)."""
    if cluster.prometheus_url:
        try:
            return prometheus_backend(cluster)
        except BackendError as exc:
            return UnavailableMetricsBackend(str(exc))
    world = simulated_world_metrics(cluster)
    return world if world is not None else UnavailableMetricsBackend("no Prometheus URL configured for this cluster")


def simulated_world_metrics(cluster: Cluster) -> SimulatedMetricsBackend | None:
    """The metrics of a simulated cluster's world, with its recorded minutes (what cost backfill
    bills from); None for a cluster that is not simulated or reads its metrics from Prometheus."""
    if cluster.backend != Cluster.Backend.SIMULATED or cluster.prometheus_url:
        return None
    from fleet.backends.simulated.metrics import SimulatedMetricsBackend
    from fleet.world_store import DbWorldStore

    return SimulatedMetricsBackend(DbWorldStore(cluster), clock=timezone.now)
