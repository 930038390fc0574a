"""One evaluation pass: per cluster, read signals in one batch, judge them, open and resolve alerts.

Never page twice for one firing, whatever runs concurrently (two workers, a beat and a manual
`alerts_tick`): an alert is opened by INSERTing its row under a partial unique constraint (one
firing row per fingerprint) and closed by a conditional UPDATE (`state=firing` -> resolved);
only the evaluator whose write took effect queues the notifications, in the same transaction.

Missing data is not good news. When Prometheus cannot answer, the cluster's evaluation turns
`unknown` (shown on the alerts page) and its firing alerts stay firing. A deployment or node
with no series at all keeps its alerts too; they resolve when data says the breach is over,
or when the deployment or node is gone.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from fleet.backends.base import BackendError
from fleet.backends.registry import metrics_backend
from fleet.backends.signals import AlertSignals
from fleet.models import Cluster, GpuNode, ModelDeployment
from scaling.alerts import rules
from scaling.alerts.budget import slo_hours_fill, with_thirty_days
from scaling.alerts.delivery import Notification, alert_body, deliveries_create_many, link_base_url
from scaling.alerts.models import (
    DEFAULT_ATTAINMENT,
    Alert,
    AlertSilence,
    ClusterEvaluation,
    Receiver,
    SloTarget,
)

logger = logging.getLogger(__name__)


@dataclass
class PassResult:
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)
    unknown_clusters: list[str] = field(default_factory=list)
    seconds_by_cluster: dict[str, float] = field(default_factory=dict)


def fingerprint(cluster_id: int, finding: rules.Finding) -> str:
    subject = f"d{finding.deployment_id}" if finding.deployment_id is not None else f"n{cluster_id}/{finding.node_name}"
    return f"{finding.rule}:{subject}"


def _base_url() -> str:
    return link_base_url()


def _record(cluster: Cluster, *, now: datetime, status: str, reason: str = "", started: float, queries: int = 0):
    previous = ClusterEvaluation.objects.filter(cluster=cluster).values_list("status", "unknown_since").first()
    unknown_since = None
    if status == ClusterEvaluation.Status.UNKNOWN:
        unknown_since = previous[1] if previous and previous[0] == status and previous[1] else now
    ClusterEvaluation.objects.update_or_create(cluster=cluster, defaults={
        "status": status, "reason": reason[:500], "evaluated_at": now, "unknown_since": unknown_since,
        "duration_ms": round((time.perf_counter() - started) * 1000), "queries": queries,
    })  # fmt: skip


def cluster_findings(
    signals: AlertSignals, deployments: list[ModelDeployment], node_names: set[str]
) -> list[rules.Finding]:
    """Pure judgement for the cluster's deployments and GPU nodes (no queries). A Prometheus
    shared by several clusters also answers for nodes that are not this cluster's: left out."""
    found: list[rules.Finding] = []
    for d in deployments:
        s = signals.deployments.get((d.namespace, d.name))
        if s is None:
            continue
        target = getattr(d, "slo_target", None)
        max_replicas, queue_target = rules.autoscaler_limits(d.autoscalers.all())
        found += rules.deployment_findings(
            deployment_id=d.id, signals=s, objective=d.slo_seconds,
            attainment=target.attainment if target else DEFAULT_ATTAINMENT,
            at_max_replicas=max_replicas is not None and d.replicas_desired >= max_replicas,
            queue_target_value=queue_target,
        )  # fmt: skip
    for node_name, s in signals.nodes.items():
        if node_name in node_names:
            found += rules.node_findings(node_name=node_name, signals=s)
    return found


def _record_budgets(deployments: list[ModelDeployment], signals: AlertSignals, now: datetime) -> None:
    """The error budget left and the 1 h burn of every deployment, in one upsert."""
    rows = []
    for d in deployments:
        s = signals.deployments.get((d.namespace, d.name))
        target = getattr(d, "slo_target", None)
        attainment = target.attainment if target else DEFAULT_ATTAINMENT
        rows.append(SloTarget(
            deployment=d, attainment=attainment, evaluated_at=now,
            budget_remaining=rules.budget_remaining(s, attainment) if s else None,
            attained=rules.attained(s) if s else None,
            burn_rate_1h=rules.burn_rate(s.slow_minute_share.get(3600), attainment) if s else None,
        ))  # fmt: skip
    SloTarget.objects.bulk_create(rows, update_conflicts=True, unique_fields=["deployment"],
                                  update_fields=["budget_remaining", "attained", "burn_rate_1h",
                                                 "evaluated_at"])  # fmt: skip


def _silenced(fingerprints: list[str], now: datetime) -> set[str]:
    return set(AlertSilence.objects.filter(fingerprint__in=fingerprints, until__gt=now)
               .values_list("fingerprint", flat=True))  # fmt: skip


def _notify(alerts: list[Alert], *, event: str, receivers: list[Receiver], result: PassResult) -> None:
    queued = []
    for alert in alerts:
        if alert.silenced:
            continue
        queued.append(Notification(
            event=event, dedup_key=f"alert:{alert.id}:{event.removeprefix('alert_')}",
            body=alert_body(alert, event=event, base_url=_base_url()), severity=alert.severity,
            namespace=alert.deployment.namespace if alert.deployment else None,
        ))  # fmt: skip
    result.deliveries += deliveries_create_many(queued, receivers=receivers)


def _open(cluster: Cluster, new: dict[str, rules.Finding], by_id: dict[int, ModelDeployment], now: datetime,
          receivers: list[Receiver], result: PassResult) -> None:  # fmt: skip
    """Insert every new firing at once; rows that another evaluator inserted first are skipped by
    the unique constraint, and only the rows carrying this pass's claim are notified about."""
    if not new:
        return
    claim = uuid.uuid4().hex
    silenced = _silenced(list(new), now)
    with transaction.atomic():
        Alert.objects.bulk_create([
            Alert(cluster=cluster, rule=f.rule, severity=f.severity, fingerprint=key,
                  deployment=by_id.get(f.deployment_id), node_name=f.node_name, summary=f.summary[:500],
                  started_at=now, last_seen_at=now, silenced=key in silenced, claim=claim)
            for key, f in new.items()
        ], ignore_conflicts=True)  # fmt: skip
        mine = list(Alert.objects.filter(claim=claim, state=Alert.State.FIRING).select_related("deployment", "cluster"))
        _notify(mine, event="alert_firing", receivers=receivers, result=result)
    result.opened += [a.id for a in mine]


def _resolve(alerts: list[Alert], now: datetime, receivers: list[Receiver], result: PassResult) -> None:
    """One conditional UPDATE for all; notify only about the rows this pass moved."""
    if not alerts:
        return
    claim = uuid.uuid4().hex
    silenced = _silenced([a.fingerprint for a in alerts], now)
    with transaction.atomic():
        Alert.objects.filter(id__in=[a.id for a in alerts], state=Alert.State.FIRING).update(
            state=Alert.State.RESOLVED, ended_at=now, claim=claim
        )
        mine = list(Alert.objects.filter(claim=claim).select_related("deployment", "cluster"))
        for alert in mine:
            alert.silenced = alert.silenced or alert.fingerprint in silenced
        _notify(mine, event="alert_resolved", receivers=receivers, result=result)
    result.resolved += [a.id for a in mine]


def _signals(cluster: Cluster, objectives: dict[tuple[str, str], float], now: datetime) -> AlertSignals:
    """One batch from the cluster's Prometheus, or a simulated cluster's world (same signals)."""
    backend = metrics_backend(cluster)
    try:
        return backend.alert_signals(objectives, now)
    finally:
        backend.close()


def cluster_alerts_evaluate(*, cluster: Cluster, now: datetime, result: PassResult) -> None:
    started = time.perf_counter()
    deployments = list(
        ModelDeployment.objects.alive()
        .filter(cluster=cluster)
        .select_related("slo_target")
        .prefetch_related("autoscalers")
    )
    simulated = not cluster.prometheus_url and cluster.backend == Cluster.Backend.SIMULATED
    if not cluster.prometheus_url and not simulated:
        _record(cluster, now=now, status=ClusterEvaluation.Status.NOT_EVALUATED, started=started,
                reason="no Prometheus configured for this cluster: alert rules are not evaluated")  # fmt: skip
        return
    objectives = {(d.namespace, d.name): d.slo_seconds for d in deployments
                  if cluster.namespace_readable(d.namespace)}  # fmt: skip
    try:
        signals = _signals(cluster, objectives, now)
    except BackendError as exc:
        _record(cluster, now=now, status=ClusterEvaluation.Status.UNKNOWN, reason=str(exc), started=started)
        result.unknown_clusters.append(cluster.name)
        logger.warning("alert evaluation of cluster %s unknown: %s", cluster.name, exc)
        return
    hour_queries = 0
    if not simulated:  # a simulated world's history answers the 30 days itself
        hour_queries = slo_hours_fill(cluster=cluster, deployments=deployments, now=now)
        signals = with_thirty_days(signals, deployments, now)
    live_nodes = set(GpuNode.objects.filter(cluster=cluster, gone_at__isnull=True).values_list("name", flat=True))
    findings = cluster_findings(signals, deployments, live_nodes)
    _record_budgets(deployments, signals, now)
    by_id = {d.id: d for d in deployments}
    wanted = {fingerprint(cluster.id, f): f for f in findings}
    firing = {a.fingerprint: a for a in Alert.objects.filter(cluster=cluster, state=Alert.State.FIRING)
              .select_related("deployment", "cluster")}  # fmt: skip
    receivers = list(Receiver.objects.all())
    _open(cluster, {k: f for k, f in wanted.items() if k not in firing}, by_id, now, receivers, result)
    seen = [a.id for key, a in firing.items() if key in wanted]
    Alert.objects.filter(id__in=seen, state=Alert.State.FIRING).update(last_seen_at=now)
    over = []
    for key, alert in firing.items():
        if key in wanted:
            continue
        if alert.deployment_id is not None:
            dep = by_id.get(alert.deployment_id)
            measured = dep is not None and (dep.namespace, dep.name) in signals.deployments
            gone = dep is None
        else:
            measured = alert.node_name in signals.nodes
            gone = alert.node_name not in live_nodes and not measured
        if measured or gone:
            over.append(alert)
    _resolve(over, now, receivers, result)
    _record(
        cluster, now=now, status=ClusterEvaluation.Status.OK, started=started, queries=signals.queries + hour_queries
    )
    result.seconds_by_cluster[cluster.name] = time.perf_counter() - started


def alerts_evaluate(*, now: datetime | None = None) -> PassResult:
    """Evaluate every cluster once. Returns what was opened, resolved and queued."""
    now = now or timezone.now()
    result = PassResult()
    for cluster in Cluster.objects.all():
        cluster_alerts_evaluate(cluster=cluster, now=now, result=result)
    return result
