"""Reads for the fleet pages and API: querysets that do not grow with rows, and what they show.

Metrics come from `fleet.metrics`. Costs are not fleet's: the pages show them through costing's
template tags (`cost_panels`), the API through the viewsets that combine both (costing, scaling).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from django.db.models import Count, Prefetch, Q, QuerySet

from fleet import lint, mig
from fleet.autoscalers import ReplicaOwner, replica_owner
from fleet.backends.base import DeploymentMetrics
from fleet.metrics import deployment_metrics
from fleet.models import Autoscaler, Cluster, Gpu, GpuNode, MigDevice, ModelDeployment, NodePool, Pod

# --------------------------------------------------------------------------- deployments


# What pages and metrics read of a deployment's pods: loading whole rows (and their nodes' JSON
# capacity) for 500 deployments would cost more than the rest of the overview together.
POD_FIELDS_SHOWN = (
    "id",
    "deployment_id",
    "cluster_id",
    "namespace",
    "name",
    "node_id",
    "phase",
    "ready",
    "started_at",
    "restarts",
    "waiting_reason",
    "gone_at",
)


def deployment_queryset(*, include_gone: bool = False) -> QuerySet[ModelDeployment]:
    """Deployments with their cluster, live autoscalers (`live_autoscalers`) and live pods (`live_pods`)."""
    rows = ModelDeployment.objects.all() if include_gone else ModelDeployment.objects.alive()
    return rows.select_related("cluster").prefetch_related(
        Prefetch("autoscalers", queryset=Autoscaler.objects.alive(), to_attr="live_autoscalers"),
        Prefetch(
            "pods",
            queryset=Pod.objects.alive()
            .select_related("node")
            .only(*POD_FIELDS_SHOWN, "node__id", "node__name")
            .order_by("name"),
            to_attr="live_pods",
        ),
    )


def deployment_owner(deployment: ModelDeployment) -> ReplicaOwner:
    """Who owns the replicas of a deployment from `deployment_queryset()` (its live autoscalers)."""
    return replica_owner(deployment.name, [a.facts() for a in deployment.live_autoscalers])


def slo_state(ttft_p95_seconds: float | None, slo_seconds: float) -> str:
    """ "ok" under 80% of the SLO, "near" up to it, "breach" over it, "unknown" without a value."""
    if ttft_p95_seconds is None:
        return "unknown"
    if ttft_p95_seconds > slo_seconds:
        return "breach"
    if ttft_p95_seconds > 0.8 * slo_seconds:
        return "near"
    return "ok"


@dataclass(frozen=True)
class DeploymentRow:
    deployment: ModelDeployment
    metrics: DeploymentMetrics
    owner: ReplicaOwner

    @property
    def slo_state(self) -> str:
        return slo_state(self.metrics.ttft_p95_seconds, self.deployment.slo_seconds)


def deployment_rows(deployments: Sequence[ModelDeployment]) -> list[DeploymentRow]:
    """Rows of `deployment_queryset()` with their current metrics (one call for all)."""
    metrics = deployment_metrics(deployments)
    return [
        DeploymentRow(
            deployment=d,
            metrics=metrics.get(d.id, DeploymentMetrics()),
            owner=deployment_owner(d),
        )
        for d in deployments
    ]


def unavailable_reasons(rows: Sequence[DeploymentRow]) -> list[tuple[str, int]]:
    """(reason, how many deployments) for rows whose metrics are unavailable, most common first."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.metrics.unavailable_reason:
            counts[r.metrics.unavailable_reason] = counts.get(r.metrics.unavailable_reason, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class WorstTtft:
    row: DeploymentRow
    ratio: float  # p95 / SLO


@dataclass(frozen=True)
class FleetTotals:
    deployments: int
    replicas_ready: int
    replicas_desired: int
    queue_depth: float | None  # None when no deployment reported it
    queue_unknown: int  # deployments whose queue is unknown
    worst_ttft: WorstTtft | None
    gpus_in_use: float  # whole GPUs + MIG slices as GPU fractions
    gpus_total: int


def gpu_usage(
    clusters: Iterable[Cluster] | None = None, *, deployment_ids: Sequence[int] | None = None
) -> tuple[float, int]:
    """(GPUs in use, physical GPUs) on live nodes; a held MIG slice counts as its share of a GPU.

    With `deployment_ids`, "in use" counts only what those deployments' pods hold (a filtered
    overview); the total stays the clusters' GPUs, the capacity they share."""
    gpus = Gpu.objects.filter(node__gone_at__isnull=True)
    slices = MigDevice.objects.filter(gpu__node__gone_at__isnull=True, pod__isnull=False)
    if clusters is not None:
        ids = [c.id for c in clusters]
        gpus = gpus.filter(node__cluster_id__in=ids)
        slices = slices.filter(gpu__node__cluster_id__in=ids)
    held = Q(pod__isnull=False, mig_enabled=False)
    if deployment_ids is not None:
        held &= Q(pod__deployment_id__in=list(deployment_ids))
        slices = slices.filter(pod__deployment_id__in=list(deployment_ids))
    counts = gpus.aggregate(total=Count("id"), whole=Count("id", filter=held))
    in_use = Fraction(counts["whole"] or 0)
    for row in slices.values("gpu__product", "profile").annotate(n=Count("id")):
        in_use += mig.slice_fraction(row["profile"], row["gpu__product"]) * row["n"]
    return float(in_use), counts["total"] or 0


def fleet_totals(rows: Sequence[DeploymentRow], clusters: Sequence[Cluster], *, filtered: bool = False) -> FleetTotals:
    """Totals of the rows shown. `filtered`: the rows are a selection (by namespace, name...), so the
    GPUs in use are those the rows' deployments hold, not every GPU held in the clusters."""
    queues = [r.metrics.queue_depth for r in rows if r.metrics.queue_depth is not None]
    ratios = [
        WorstTtft(r, r.metrics.ttft_p95_seconds / r.deployment.slo_seconds)
        for r in rows
        if r.metrics.ttft_p95_seconds is not None and r.deployment.slo_seconds > 0
    ]
    in_use, total = gpu_usage(clusters, deployment_ids=[r.deployment.id for r in rows] if filtered else None)
    return FleetTotals(
        deployments=len(rows),
        replicas_ready=sum(r.deployment.replicas_ready for r in rows),
        replicas_desired=sum(r.deployment.replicas_desired for r in rows),
        queue_depth=sum(queues) if queues else None,
        queue_unknown=len(rows) - len(queues),
        worst_ttft=max(ratios, key=lambda w: w.ratio) if ratios else None,
        gpus_in_use=in_use,
        gpus_total=total,
    )


def cluster_queryset() -> QuerySet[Cluster]:
    return Cluster.objects.order_by("name")


def deployment_findings(deployment: ModelDeployment, *, load_p95_seconds: float | None = None) -> list[lint.Finding]:
    """Config lint of a deployment from `deployment_queryset()` (uses its prefetched autoscalers);
    `load_p95_seconds`: its measured weights-loading p95 (fleet/cold_start.py), None without history."""
    shape = lint.DeploymentShape(
        gpu_resource=deployment.gpu_resource,
        gpu_per_replica=deployment.gpu_per_replica,
        replicas_desired=deployment.replicas_desired,
        liveness_initial_delay_seconds=deployment.liveness_initial_delay_seconds,
        termination_grace_seconds=deployment.termination_grace_seconds,
        max_unavailable=deployment.max_unavailable,
        autoscalers=tuple(a.facts() for a in deployment.live_autoscalers),
    )
    return lint.lint_deployment(shape, load_p95_seconds=load_p95_seconds)


# --------------------------------------------------------------------------- nodes


def node_queryset(*, include_gone: bool = False) -> QuerySet[GpuNode]:
    """Nodes with cluster and pool, in the order the nodes page groups them."""
    rows = GpuNode.objects.all() if include_gone else GpuNode.objects.alive()
    return rows.select_related("cluster", "node_pool").order_by("cluster__name", "node_pool__name", "name", "id")


def with_gpu_layout(nodes: QuerySet[GpuNode]) -> QuerySet[GpuNode]:
    """Adds each node's GPUs (`gpus.all()`), their MIG slices, and the pod and deployment holding each."""
    return nodes.prefetch_related(
        Prefetch(
            "gpus",
            queryset=Gpu.objects.select_related("pod__deployment").prefetch_related(
                Prefetch("mig_devices", queryset=MigDevice.objects.select_related("pod__deployment"))
            ),
        )
    )


def node_filter_choices() -> dict[str, list[str]]:
    """Values to offer in the nodes filter form: one small query each."""
    live = GpuNode.objects.alive()
    return {
        "cluster": list(Cluster.objects.order_by("name").values_list("name", flat=True)),
        "node_pool": list(NodePool.objects.alive().order_by("name").values_list("name", flat=True).distinct()),
        "gpu_model": [p for p in live.order_by("gpu_product").values_list("gpu_product", flat=True).distinct() if p],
    }
