"""The fleet at a glance for bots: one call answers `/status` (`GET /api/v1/summary/`).

Per cluster: deployments whose TTFT p95 is over their objective, pending pods, active
overrides, the next pre-scale firings and what the cluster's GPU nodes cost per hour. The number
of queries does not grow with clusters, deployments or rules: every read below is one query for
the whole fleet, grouped in Python.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Count

from costing import selectors as costing_selectors
from fleet import selectors as fleet_selectors
from fleet.models import Cluster, GpuNode, Pod
from scaling import selectors as scaling_selectors
from scaling import windows
from scaling.models import PrescaleRule

FIRINGS_SHOWN = 5  # per cluster, soonest first


@dataclass
class ClusterSummary:
    cluster: Cluster
    deployments: int = 0
    in_breach: list[dict] = field(default_factory=list)
    ttft_unknown: int = 0
    metrics_unavailable: str = ""  # why metrics are missing, the most common reason first; "" when all reported
    pending_pods: int = 0
    overrides: list[dict] = field(default_factory=list)
    next_firings: list[dict] = field(default_factory=list)
    spend_usd_per_hour: Decimal | None = Decimal(0)
    unpriced_nodes: int = 0


def _ref(deployment) -> str:
    return f"{deployment.namespace}/{deployment.name}"


def fleet_summary(*, now: datetime, clusters=None, namespaces: Sequence[str] = ()) -> list[ClusterSummary]:
    """One ClusterSummary per cluster (all clusters, or the queryset given), by name.

    `namespaces` (a token scoped to some namespaces) limits every figure to them; the spend is
    then what their deployments cost per hour, not the whole nodes' price, which would tell a
    team what the other teams run."""
    clusters = list(clusters if clusters is not None else fleet_selectors.cluster_queryset())
    by_id = {c.id: ClusterSummary(cluster=c) for c in clusters}
    if not by_id:
        return []

    deployment_qs = fleet_selectors.deployment_queryset().filter(cluster_id__in=list(by_id))
    if namespaces:
        deployment_qs = deployment_qs.filter(namespace__in=namespaces)
    deployments = list(deployment_qs)
    rows = fleet_selectors.deployment_rows(deployments)
    unavailable: dict[int, Counter] = defaultdict(Counter)
    for row in rows:
        summary = by_id[row.deployment.cluster_id]
        summary.deployments += 1
        state = row.slo_state
        if state == "breach":
            summary.in_breach.append(
                {
                    "deployment": _ref(row.deployment),
                    "deployment_id": row.deployment.id,
                    "ttft_p95_seconds": row.metrics.ttft_p95_seconds,
                    "objective_seconds": row.deployment.slo_seconds,
                }
            )
        elif state == "unknown":
            summary.ttft_unknown += 1
        if row.metrics.unavailable_reason:
            unavailable[row.deployment.cluster_id][row.metrics.unavailable_reason] += 1
    for cluster_id, reasons in unavailable.items():
        by_id[cluster_id].metrics_unavailable = reasons.most_common(1)[0][0]

    pods = Pod.objects.alive().filter(cluster_id__in=list(by_id), phase="Pending")
    if namespaces:
        pods = pods.filter(namespace__in=namespaces)
    pending = pods.values("cluster_id").annotate(n=Count("id"))
    for row in pending:
        by_id[row["cluster_id"]].pending_pods = row["n"]

    deployment_by_id = {d.id: d for d in deployments}
    for deployment_id, overrides in scaling_selectors.active_overrides(deployments, now=now).items():
        deployment = deployment_by_id[deployment_id]
        for o in overrides:
            by_id[deployment.cluster_id].overrides.append(
                {
                    "deployment": _ref(deployment),
                    "deployment_id": deployment_id,
                    "override": o.label,
                    "by": o.by,
                    "until": o.until,
                    "seconds_left": o.seconds_left,
                }
            )

    _add_next_firings(by_id, now=now, namespaces=namespaces)
    if namespaces:
        _add_deployment_spend(by_id, rows)
    else:
        _add_spend(by_id)
    return list(by_id.values())


def _add_next_firings(by_id: dict[int, ClusterSummary], *, now: datetime, namespaces: Sequence[str]) -> None:
    rules = PrescaleRule.objects.filter(
        enabled=True, deployment__cluster_id__in=list(by_id), deployment__gone_at__isnull=True
    ).select_related("deployment")
    if namespaces:
        rules = rules.filter(deployment__namespace__in=namespaces)
    upcoming: dict[int, list[dict]] = defaultdict(list)
    for rule in rules:
        try:
            at = windows.next_firings(rule.cron, rule.timezone, now, 1)
        except (windows.WindowError, ValueError):
            continue  # a rule that cannot fire has no next firing; the rules page says why
        if at:
            upcoming[rule.deployment.cluster_id].append(
                {
                    "at": at[0],
                    "rule_id": rule.id,
                    "deployment": _ref(rule.deployment),
                    "min_replicas": rule.min_replicas,
                    "duration_minutes": rule.duration_minutes,
                }
            )
    for cluster_id, firings in upcoming.items():
        by_id[cluster_id].next_firings = sorted(firings, key=lambda f: (f["at"], f["rule_id"]))[:FIRINGS_SHOWN]


def _add_deployment_spend(by_id: dict[int, ClusterSummary], rows) -> None:
    """What the deployments shown cost per hour (their GPUs' share of their nodes)."""
    costs = costing_selectors.deployment_cost_per_hour([row.deployment for row in rows])
    for row in rows:
        cost = costs.get(row.deployment.id)
        if cost is not None:  # unpriced: its nodes' instance types are not in the catalog
            by_id[row.deployment.cluster_id].spend_usd_per_hour += cost


def _add_spend(by_id: dict[int, ClusterSummary]) -> None:
    """Whole GPU instances, idle GPUs included: what the cluster costs, not what deployments use."""
    nodes = list(GpuNode.objects.alive().filter(cluster_id__in=list(by_id), gpu_count__gt=0).only("id", "cluster_id"))
    costs = costing_selectors.node_cost_per_hour(nodes)
    for node in nodes:
        summary = by_id[node.cluster_id]
        cost = costs.get(node.id)
        if cost is None:
            summary.unpriced_nodes += 1
        else:
            summary.spend_usd_per_hour += cost
