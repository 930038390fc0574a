"""The 30-day error budget of a cluster read from Prometheus, from stored hours.

Judging 43,200 minutes per deployment on every pass costs Prometheus minutes at fleet scale
(measured: 3.6 s for 7 days of 10 deployments on a busy 2-core machine, so about 13 minutes
for 30 days of 500). So each clock hour is judged once, after it ends, and stored per
deployment (SloHour: minutes with requests, slow minutes); the budget adds up the stored hours
of the last 30 days and the hour so far (from the pass's own queries). A pass reads at most
FILL_HOURS_PER_PASS hours in one range query: the hours that ended since the last pass first,
else older ones back to 30 days, so a new cluster's last hours count at once and its past 30
days fill in within two hours without one pass asking for them all; until then the budget
covers what is stored. A failed read only delays the fill (the watermarks,
ClusterEvaluation.slo_hours_since / slo_hours_through, stay).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from django.db.models import Sum

from fleet.backends.base import BackendError
from fleet.backends.prometheus import alert_promql
from fleet.backends.prometheus.alert_signals import hour_minutes_queries
from fleet.backends.registry import prometheus_backend
from fleet.backends.signals import SLO_WINDOW_SECONDS, AlertSignals
from fleet.models import Cluster, ModelDeployment
from scaling.alerts.models import ClusterEvaluation, SloHour

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
WINDOW = timedelta(seconds=SLO_WINDOW_SECONDS)
FILL_HOURS_PER_PASS = 6


def _last_hour_end(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def slo_hours_fill(*, cluster: Cluster, deployments: list[ModelDeployment], now: datetime) -> int:
    """Judge and store the next hours not stored yet; returns the queries sent."""
    last = _last_hour_end(now)
    oldest = last - WINDOW + HOUR
    since, through = ClusterEvaluation.objects.filter(cluster=cluster).values_list(
        "slo_hours_since", "slo_hours_through"
    ).first() or (None, None)
    readable = [d for d in deployments if cluster.namespace_readable(d.namespace)]
    if not readable:
        return 0
    if through is None or since is None:
        first, stop = last - (FILL_HOURS_PER_PASS - 1) * HOUR, last
        since, through = first, stop
    elif last > through:  # hours that ended since: oldest of them first
        first, stop = through + HOUR, min(last, through + FILL_HOURS_PER_PASS * HOUR)
        through = stop
    elif since > oldest:  # back towards 30 days
        first, stop = max(oldest, since - FILL_HOURS_PER_PASS * HOUR), since - HOUR
        since = first
    else:
        return 0
    try:
        backend = prometheus_backend(cluster)
    except BackendError as exc:  # its token or password file cannot be read
        logger.warning("SLO hours of cluster %s not read (the budget waits): %s", cluster.name, exc)
        return 0
    try:
        queries = hour_minutes_queries(
            sorted({d.namespace for d in readable}),
            namespace_label=backend.namespace_label,
            pod_label=backend.pod_label,
            objectives={d.slo_seconds for d in readable},
        )
        answers = backend.range_vectors(queries, start=first, end=stop, step_seconds=3600)
    except BackendError as exc:
        logger.warning("SLO hours of cluster %s not read (the budget waits): %s", cluster.name, exc)
        return 0
    finally:
        backend.close()
    by_key = {(d.namespace, d.name): d for d in readable}
    counted: dict[tuple[int, int], list[int]] = {}  # (deployment id, epoch hour end) -> [minutes, slow]
    for name, series in answers.items():
        column, _, objective = name.partition(":")
        for labels, points in series:
            d = by_key.get((labels.get(backend.namespace_label), labels.get(alert_promql.ALERT_DEPLOYMENT_LABEL)))
            if d is None or d.slo_seconds != float(objective):
                continue
            for t, value in points.items():
                if value is not None:
                    counted.setdefault((d.id, t), [0, 0])[0 if column == "minutes" else 1] = round(value)
    SloHour.objects.bulk_create(
        [SloHour(deployment_id=dep_id, hour=datetime.fromtimestamp(t, now.tzinfo), minutes=m, slow_minutes=slow)
         for (dep_id, t), (m, slow) in counted.items() if m > 0],
        ignore_conflicts=True,
    )  # fmt: skip
    marks = {"slo_hours_since": since, "slo_hours_through": through}
    ClusterEvaluation.objects.update_or_create(
        cluster=cluster, defaults=marks, create_defaults={**marks, "status": "ok", "evaluated_at": now}
    )
    SloHour.objects.filter(deployment__cluster=cluster, hour__lte=last - WINDOW).delete()
    return len(queries)


def with_thirty_days(signals: AlertSignals, deployments: list[ModelDeployment], now: datetime) -> AlertSignals:
    """`signals` with each deployment's 30-day share of slow minutes: stored hours + the hour so far."""
    ids = {d.id: (d.namespace, d.name) for d in deployments}
    stored = {
        row["deployment_id"]: (row["minutes"], row["slow"])
        for row in SloHour.objects.filter(deployment_id__in=ids, hour__gt=_last_hour_end(now) - WINDOW)
        .values("deployment_id").annotate(minutes=Sum("minutes"), slow=Sum("slow_minutes")).order_by()
    }  # fmt: skip
    merged = dict(signals.deployments)
    for dep_id, key in ids.items():
        s = merged.get(key)
        if s is None:
            continue
        minutes, slow = stored.get(dep_id, (0, 0))
        minutes, slow = minutes + (s.hour_minutes or 0), slow + (s.hour_slow_minutes or 0)
        shares = {k: v for k, v in s.slow_minute_share.items() if k != SLO_WINDOW_SECONDS}
        if minutes > 0:
            shares[SLO_WINDOW_SECONDS] = slow / minutes
        merged[key] = dataclasses.replace(s, slow_minute_share=shares)
    return dataclasses.replace(signals, deployments=merged)
