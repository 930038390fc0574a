"""Timeline rows only Prometheus can tell, stored beside the cluster's own events.

* `first_token`: when a new pod served its first token, i.e. became useful -- the first step at
  which the pod's vLLM TTFT request count is above zero, for pods that turned Ready in the last
  LOOKBACK and have no such row yet;
* `metric_above_target` / `metric_below_target`: when the requests waiting per pod crossed the
  queue target of the deployment's autoscaler (a KEDA/HPA metric on
  `vllm:num_requests_waiting`; other metrics are not read), at STEP_SECONDS resolution.

Each pass (beat, every minute: `scaling.tasks.timeline_signals_tick`) re-reads the last LOOKBACK
in one batch of two range queries per cluster; the steps are aligned to the clock, so a crossing
read twice has the same time and uid, and `fleet.events.scaling_events_store` stores it once.
Stored as ScalingEvent rows (source "prometheus"), the timeline stays one paginated database
query. Simulated clusters tell both themselves (fleet/backends/simulated/events.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fleet.backends.base import BackendError, ScalingEventFacts
from fleet.backends.prometheus import alert_promql, promql
from fleet.backends.registry import prometheus_backend
from fleet.events import scaling_events_store
from fleet.models import Cluster, EventKind, ModelDeployment, ScalingEvent
from scaling.alerts.rules import autoscaler_limits

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(hours=2)
STEP_SECONDS = 15
SOURCE = "prometheus"


def _fact(*, at: int, kind: str, reason: str, namespace: str, object_kind: str, name: str, message: str,
          deployment: str, uid: str) -> ScalingEventFacts:  # fmt: skip
    return ScalingEventFacts(
        uid=uid, count=1, at=datetime.fromtimestamp(at, UTC), kind=kind, reason=reason, namespace=namespace,
        object_kind=object_kind, object_name=name, message=message, source=SOURCE, deployment=deployment,
    )  # fmt: skip


def first_token_facts(
    series: list[tuple[dict[str, str], dict[int, float | None]]], waiting: dict[tuple[str, str], tuple[str, int]],
    *, namespace_label: str, pod_label: str,
) -> list[ScalingEventFacts]:  # fmt: skip
    """`waiting`: (namespace, pod) -> (deployment, Ready at, epoch seconds). The first step at or
    after the pod was Ready whose request count is above zero."""
    facts = []
    for labels, points in series:
        key = (labels.get(namespace_label), labels.get(pod_label))
        if key not in waiting:
            continue
        deployment, ready_at = waiting[key]
        first = next((t for t in sorted(points) if (points[t] or 0) > 0), None)
        if first is None:
            continue
        at = max(first, ready_at)
        facts.append(_fact(at=at, kind=EventKind.FIRST_TOKEN, reason="FirstToken", namespace=key[0],
                           object_kind="Pod", name=key[1], deployment=deployment,
                           message=f"first token served, {at - ready_at} s after Ready",
                           uid=f"prom:first-token:{key[0]}/{key[1]}"))  # fmt: skip
    return facts


def crossing_facts(
    series: list[tuple[dict[str, str], dict[int, float | None]]], targets: dict[tuple[str, str], float],
    *, namespace_label: str,
) -> list[ScalingEventFacts]:  # fmt: skip
    """A row at each step where the requests waiting per pod went over its target or back to it
    or under; steps without a value keep the last known side."""
    facts = []
    for labels, points in series:
        key = (labels.get(namespace_label), labels.get(alert_promql.ALERT_DEPLOYMENT_LABEL))
        target = targets.get(key)
        if target is None:
            continue
        above = None
        for t in sorted(points):
            value = points[t]
            if value is None:
                continue
            now_above = value > target
            if above is not None and now_above != above:
                kind = EventKind.METRIC_ABOVE_TARGET if now_above else EventKind.METRIC_BELOW_TARGET
                side = "over" if now_above else "back at or under"
                facts.append(_fact(
                    at=t, kind=kind, reason="QueueOverTarget" if now_above else "QueueUnderTarget",
                    namespace=key[0], object_kind="Deployment", name=key[1], deployment=key[1],
                    message=f"{value:.1f} requests waiting per pod, {side} the autoscaler's target of {target:g}",
                    uid=f"prom:queue:{key[0]}/{key[1]}:{t}:{kind}",
                ))  # fmt: skip
            above = now_above
    return facts


def timeline_signals_record(*, cluster: Cluster, now: datetime) -> int:
    """Read the last LOOKBACK of the cluster's Prometheus and store the new rows; returns how many.
    Raises BackendError when Prometheus cannot answer (nothing is stored then)."""
    if not cluster.prometheus_url:
        return 0
    deployments = {(d.namespace, d.name): d for d in ModelDeployment.objects.alive().filter(cluster=cluster)
                   .prefetch_related("autoscalers") if cluster.namespace_readable(d.namespace)}  # fmt: skip
    targets = {key: target for key, d in deployments.items()
               if (target := autoscaler_limits(d.autoscalers.all())[1]) is not None}  # fmt: skip
    since = now - LOOKBACK
    told = set(ScalingEvent.objects.filter(cluster=cluster, kind=EventKind.FIRST_TOKEN, at__gte=since - LOOKBACK)
               .values_list("namespace", "object_name"))  # fmt: skip
    waiting = {
        (ns, pod): (dep_name, int(at.timestamp()))
        for ns, pod, dep_name, at in ScalingEvent.objects.filter(
            cluster=cluster, kind=EventKind.POD_READY, at__gte=since, deployment__isnull=False,
        ).values_list("namespace", "object_name", "deployment__name", "at")
        if (ns, pod) not in told and (ns, dep_name) in deployments
    }  # fmt: skip
    if not waiting and not targets:
        return 0
    backend = prometheus_backend(cluster)  # BackendError when its token or password file cannot be read
    queries = {}
    if waiting:
        sel = promql.pod_selector(waiting, namespace_label=backend.namespace_label, pod_label=backend.pod_label)
        queries["first_tokens"] = promql.first_tokens_by_pod(sel)
    if targets:
        ns = alert_promql.alert_namespaces(backend.namespace_label, sorted({n for n, _ in targets}))
        queries["queue"] = alert_promql.queue_per_pod_by_deployment(ns, backend.namespace_label, backend.pod_label)
    end = int(now.timestamp()) // STEP_SECONDS * STEP_SECONDS
    start = int(since.timestamp()) // STEP_SECONDS * STEP_SECONDS
    try:
        answers = backend.range_vectors(
            queries,
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC),
            step_seconds=STEP_SECONDS,
        )
    finally:
        backend.close()
    facts = first_token_facts(answers.get("first_tokens", []), waiting, namespace_label=backend.namespace_label,
                              pod_label=backend.pod_label)  # fmt: skip
    facts += crossing_facts(answers.get("queue", []), targets, namespace_label=backend.namespace_label)
    return scaling_events_store(cluster=cluster, facts=facts, deployments=deployments, now=now)


def timeline_signals_all(*, now: datetime) -> dict[str, int | str]:
    """Every cluster with a Prometheus: rows added, or why none could be read."""
    outcome: dict[str, int | str] = {}
    for cluster in Cluster.objects.exclude(prometheus_url=""):
        try:
            outcome[cluster.name] = timeline_signals_record(cluster=cluster, now=now)
        except BackendError as exc:
            logger.warning("timeline signals of cluster %s not read: %s", cluster.name, exc)
            outcome[cluster.name] = str(exc)
    return outcome
