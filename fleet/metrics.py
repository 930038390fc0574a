"""Metrics read at request time, for pages and the API. The only caller of `metrics_backend()` above the backends.

- One backend call per cluster for any number of deployments (the backends batch by metric).
- Cached per cluster and deployment for SCALEDECK_METRICS_CACHE_SECONDS, failures included:
  a dead Prometheus costs one timeout per cache period, not one per page view or poll.
- A source that times out or cannot be reached is remembered per cluster for the same period,
  so every other read of that cluster (another set of deployments, the charts, the GPUs)
  answers "unavailable" at once: a page making two reads never waits two timeouts.
- `deployment_metrics` and `node_gpu_utilization` never raise: a failing source becomes
  "unknown, because <reason>". `deployment_series` raises BackendError only, with a one-line
  reason that pages show as "metrics unavailable: <reason>".
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from fleet.backends.base import BackendError, DeploymentMetrics, DeploymentRef, GpuUtilization, Series
from fleet.backends.registry import metrics_backend
from fleet.models import Cluster, GpuNode, ModelDeployment, Pod
from fleet.replica_history import replica_series

logger = logging.getLogger(__name__)

RANGES: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}
DEFAULT_RANGE = "1h"
NO_METRICS_REASON = "no metrics reported for this deployment"
_NICE_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def parse_range(value: str | None) -> tuple[str, int, str | None]:
    """`?range=` -> (key, seconds, problem). Anything unknown falls back to 1h with a message."""
    if value in (None, ""):
        return DEFAULT_RANGE, RANGES[DEFAULT_RANGE], None
    if value in RANGES:
        return value, RANGES[value], None
    shown = value if len(value) <= 20 else value[:20] + "…"
    return DEFAULT_RANGE, RANGES[DEFAULT_RANGE], f"unknown range {shown!r}: showing 1h (choose 1h, 6h or 24h)"


def step_for_range(seconds: int, *, max_points: int = 300) -> int:
    """A chart step for a time range: at most `max_points` points, never under 15 s (a scrape interval)."""
    raw = max(seconds, 1) / max_points
    for step in _NICE_STEPS:
        if step >= raw:
            return step
    return int(-(-raw // 3600) * 3600)


# --------------------------------------------------------------------------- current values


def _clusters_of(deployments: Sequence[ModelDeployment]) -> dict[int, Cluster]:
    """The clusters, from the select_related cache when the caller loaded them, else in one query."""
    loaded = {d.cluster_id: d.cluster for d in deployments if ModelDeployment.cluster.is_cached(d)}
    missing = {d.cluster_id for d in deployments} - set(loaded)
    if missing:
        loaded.update(Cluster.objects.in_bulk(missing))
    return loaded


def _pod_names(deployments: Sequence[ModelDeployment]) -> dict[int, tuple[str, ...]]:
    """Live pod names per deployment: from a `live_pods` prefetch when present, else in one query."""
    names: dict[int, list[str]] = defaultdict(list)
    unloaded = []
    for d in deployments:
        if hasattr(d, "live_pods"):
            names[d.id] = [p.name for p in d.live_pods]
        else:
            unloaded.append(d.id)
    if unloaded:
        rows = Pod.objects.alive().filter(deployment_id__in=unloaded).values_list("deployment_id", "name")
        for deployment_id, name in rows:
            names[deployment_id].append(name)
    return {d.id: tuple(sorted(names.get(d.id, ()))) for d in deployments}


def _ref_key(cluster_id: int, ref: DeploymentRef) -> str:
    digest = hashlib.blake2s("\x00".join((ref.namespace, ref.name, *ref.pods)).encode(), digest_size=12).hexdigest()
    return f"fleet:metrics:{cluster_id}:{digest}"


def _unavailable(exc: Exception, cluster: Cluster) -> str:
    if isinstance(exc, BackendError):
        reason = str(exc) or "metrics source unavailable"
        if exc.transient:
            _mark_down(cluster, reason)
        return reason
    logger.exception("metrics backend of cluster %s failed", cluster.name)
    return f"metrics backend error ({type(exc).__name__})"


def _down_key(cluster_id: int) -> str:
    return f"fleet:metrics-down:{cluster_id}"


def _mark_down(cluster: Cluster, reason: str) -> None:
    """Remember that the cluster's metrics source is down (timed out, refused, 5xx)."""
    cache.set(_down_key(cluster.id), reason, timeout=settings.SCALEDECK_METRICS_CACHE_SECONDS)


def _down_reason(cluster: Cluster) -> str | None:
    return cache.get(_down_key(cluster.id))


def deployment_metrics(deployments: Iterable[ModelDeployment]) -> dict[int, DeploymentMetrics]:
    """Current metrics per deployment id. Never raises; unknown values are None with a reason."""
    deployments = list(deployments)
    if not deployments:
        return {}
    clusters = _clusters_of(deployments)
    pods = _pod_names(deployments)
    by_cluster: dict[int, list[ModelDeployment]] = defaultdict(list)
    for d in deployments:
        by_cluster[d.cluster_id].append(d)

    out: dict[int, DeploymentMetrics] = {}
    for cluster_id, members in by_cluster.items():
        cluster = clusters[cluster_id]
        refs = {d.id: DeploymentRef(namespace=d.namespace, name=d.name, pods=pods[d.id]) for d in members}
        keys = {d_id: _ref_key(cluster_id, ref) for d_id, ref in refs.items()}
        cached = cache.get_many(list(keys.values()))
        todo = {d_id: ref for d_id, ref in refs.items() if keys[d_id] not in cached}
        for d_id in refs:
            if keys[d_id] in cached:
                out[d_id] = cached[keys[d_id]]
        if not todo:
            continue
        down = _down_reason(cluster)
        if down is not None:  # known down: answer now, without caching (the marker expires)
            for d_id in todo:
                out[d_id] = DeploymentMetrics(unavailable_reason=down)
            continue
        try:
            backend = metrics_backend(cluster)
            answer = backend.deployment_metrics(list(todo.values()))
        except Exception as exc:  # a backend must never take a page down
            reason = _unavailable(exc, cluster)
            answer = {(r.namespace, r.name): DeploymentMetrics(unavailable_reason=reason) for r in todo.values()}
        else:
            if backend.last_error is not None:  # deployment_metrics never raises: was the source down?
                _unavailable(backend.last_error, cluster)
        fresh = {}
        for d_id, ref in todo.items():
            value = answer.get((ref.namespace, ref.name)) or DeploymentMetrics(unavailable_reason=NO_METRICS_REASON)
            out[d_id] = fresh[keys[d_id]] = value
        cache.set_many(fresh, timeout=settings.SCALEDECK_METRICS_CACHE_SECONDS)
    return out


# --------------------------------------------------------------------------- chart series


def deployment_series(
    deployment: ModelDeployment, range_seconds: int, *, now: datetime | None = None
) -> dict[str, Series]:
    """Range series for a deployment's charts, ending now. Raises BackendError (only) when unavailable.

    The backend selects every pod the deployment ran in the range by its namespace and name,
    not today's pods, so the answer does not depend on them. The end is aligned to the step, so
    every viewer within one step shares one cached answer. Desired and ready replicas the
    backend does not know (no kube-state-metrics) are filled from ScaleDeck's own records.
    """
    step = step_for_range(range_seconds)
    now = now or timezone.now()
    end = datetime.fromtimestamp(int(now.timestamp()) // step * step, tz=now.tzinfo)
    start = end - timedelta(seconds=range_seconds)
    ref = DeploymentRef(namespace=deployment.namespace, name=deployment.name, pods=())
    key = f"{_ref_key(deployment.cluster_id, ref)}:series:{range_seconds}:{step}:{int(end.timestamp())}"
    hit = cache.get(key)
    if hit is not None:
        if isinstance(hit, str):
            raise BackendError(hit)
        return hit
    down = _down_reason(deployment.cluster)
    if down is not None:
        raise BackendError(down, transient=True)
    try:
        series = metrics_backend(deployment.cluster).deployment_series(ref, start=start, end=end, step_seconds=step)
    except Exception as exc:
        reason = _unavailable(exc, deployment.cluster)
        cache.set(key, reason, timeout=settings.SCALEDECK_METRICS_CACHE_SECONDS)
        raise BackendError(reason) from exc
    series = _with_recorded_replicas(deployment, series)
    cache.set(key, series, timeout=settings.SCALEDECK_METRICS_CACHE_SECONDS)
    return series


def _with_recorded_replicas(deployment: ModelDeployment, series: dict[str, Series]) -> dict[str, Series]:
    """Desired/ready replicas point by point: the backend's value where it has one, else the
    count the sync recorded (`fleet.replica_history`). One query, skipped when not needed."""
    names = ("replicas_desired", "replicas_ready")
    timestamps = next((s.timestamps for s in series.values() if s.timestamps), ())
    if not timestamps or all(n in series and None not in series[n].values for n in names):
        return series
    recorded = dict(zip(names, replica_series(deployment, timestamps), strict=True))
    out = dict(series)
    for name in names:
        known = series.get(name)
        if known is None or known.timestamps != recorded[name].timestamps:
            out[name] = recorded[name]
            continue
        values = tuple(v if v is not None else r for v, r in zip(known.values, recorded[name].values, strict=True))
        out[name] = Series(name, known.unit, known.timestamps, values)
    return out


# --------------------------------------------------------------------------- GPUs


@dataclass
class NodeGpuReadings:
    """Per-GPU readings of some nodes: `gpus[node_id]` lists them; `unavailable[cluster name]` says why not."""

    gpus: dict[int, list[GpuUtilization]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    as_of: datetime | None = None

    def whole_gpu(self, node_id: int, gpu_index: int) -> GpuUtilization | None:
        for reading in self.gpus.get(node_id, ()):
            if reading.gpu_index == gpu_index and reading.mig_profile is None:
                return reading
        return None

    def mig_slices(self, node_id: int, gpu_index: int) -> list[GpuUtilization]:
        """The GPU's MIG readings, ordered by profile then GPU-instance id.

        The instance id is DCGM's GPU_I_ID, not a slot index: it says nothing about which stored
        MigDevice a reading belongs to (see `fleet.views.nodes.match_mig_readings`).
        """
        return sorted(
            (r for r in self.gpus.get(node_id, ()) if r.gpu_index == gpu_index and r.mig_profile is not None),
            key=lambda r: (r.mig_profile or "", r.mig_instance_id if r.mig_instance_id is not None else -1),
        )


def node_gpu_utilization(nodes: Iterable[GpuNode]) -> NodeGpuReadings:
    """Per-GPU (and per-MIG-slice) utilization of the given nodes, one backend call per cluster. Never raises."""
    nodes = list(nodes)
    readings = NodeGpuReadings(as_of=timezone.now())
    by_cluster: dict[int, list[GpuNode]] = defaultdict(list)
    for n in nodes:
        by_cluster[n.cluster_id].append(n)
    clusters = {n.cluster_id: n.cluster for n in nodes if GpuNode.cluster.is_cached(n)}
    missing = set(by_cluster) - set(clusters)
    if missing:
        clusters.update(Cluster.objects.in_bulk(missing))
    for cluster_id, members in by_cluster.items():
        cluster = clusters[cluster_id]
        names = sorted(n.name for n in members)
        digest = hashlib.blake2s("\x00".join(names).encode(), digest_size=12).hexdigest()
        key = f"fleet:gpu-util:{cluster_id}:{digest}"
        hit = cache.get(key)
        if hit is None:
            hit = _down_reason(cluster)
        if hit is None:
            try:
                hit = list(metrics_backend(cluster).gpu_utilization(names))
            except Exception as exc:
                hit = _unavailable(exc, cluster)
            cache.set(key, hit, timeout=settings.SCALEDECK_METRICS_CACHE_SECONDS)
        if isinstance(hit, str):
            readings.unavailable[cluster.name] = hit
            continue
        node_ids = {n.name: n.id for n in members}
        for reading in hit:
            node_id = node_ids.get(reading.node_name)
            if node_id is not None:
                readings.gpus.setdefault(node_id, []).append(reading)
    return readings
