"""The installation's state as metrics, read from the database at scrape time.

Whichever process synced a cluster or applied an action, the database has the result: so
any web pod's /metrics shows sync age per cluster, pending actions, and scale actions by
outcome with their request-to-applied latency, without sharing files with the workers.
Four queries per scrape, however many clusters and actions there are.

Scale actions in a final state never change again, so their counts only grow: they are
exposed as counters (`scaledeck_scale_actions_total`) and a histogram
(`scaledeck_scale_action_latency_seconds`, from request to applied, succeeded actions only).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db.models import Count, F, FloatField, Func, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from fleet.models import Cluster
from scaling.models import ScaleAction

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600)


class SecondsBetween(Func):
    """`end - start` in seconds, computed by the database's own date functions. (Django's generic
    DateTime subtraction runs a Python function per row on SQLite: 5 s a scrape at 50,000 actions.)"""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL
        return super().as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - ", **extra
        )

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


class DatabaseState:
    """A prometheus-client collector (collect() yields metric families)."""

    def describe(self):
        return []  # computed at scrape time; nothing to check at registration

    def collect(self):
        up = GaugeMetricFamily("scaledeck_database_up", "1 when the scrape could read the database.")
        try:
            families = [*self._clusters(timezone.now()), *self._actions(), self._latency()]
        except DatabaseError as exc:
            # The counters are still worth a scrape; the alert on this gauge says why state is missing.
            logger.warning("metrics: cannot read the database: %s", type(exc).__name__)
            families = []
        up.add_metric([], 1.0 if families else 0.0)
        yield up
        yield from families

    def _clusters(self, now):
        age = GaugeMetricFamily(
            "scaledeck_cluster_sync_age_seconds",
            "Seconds since the cluster's last good sync (since it was added, if it never synced).",
            labels=["cluster"],
        )
        last = GaugeMetricFamily(
            "scaledeck_cluster_sync_last_duration_seconds",
            "How long the cluster's last sync took, seconds.",
            labels=["cluster"],
        )
        up = GaugeMetricFamily(
            "scaledeck_cluster_sync_up", "1 when the cluster's last sync succeeded.", labels=["cluster"]
        )
        rows = Cluster.objects.order_by("name").values_list(
            "name", "last_sync_ok_at", "created_at", "last_sync_duration_ms", "last_sync_status"
        )
        for name, ok_at, created_at, duration_ms, status in rows:
            age.add_metric([name], max(0.0, (now - (ok_at or created_at)).total_seconds()))
            if duration_ms is not None:
                last.add_metric([name], duration_ms / 1000)
            up.add_metric([name], 1.0 if status == Cluster.SyncStatus.OK else 0.0)
        yield from (age, last, up)

    def _actions(self):
        done = CounterMetricFamily(
            "scaledeck_scale_actions",
            "Scale, restore and quota actions that reached a final state, by status and target kind.",
            labels=["status", "target_kind"],
        )
        waiting = GaugeMetricFamily(
            "scaledeck_scale_actions_in_flight",
            "Actions pending or running now, by status and target kind.",
            labels=["status", "target_kind"],
        )
        rows = ScaleAction.objects.values_list("status", "target_kind").annotate(n=Count("id")).order_by()
        counts = {(status, kind or "none"): n for status, kind, n in rows}
        kinds = [kind for kind, _label in ScaleAction.TargetKind.choices]
        for status in ScaleAction.TERMINAL:
            for kind in kinds:  # every pair is a series from the start, so rate() works from the first action
                done.add_metric([status, kind], counts.pop((status, kind), 0))
        for (status, kind), n in sorted(counts.items()):
            family = waiting if status in (ScaleAction.Status.PENDING, ScaleAction.Status.RUNNING) else done
            family.add_metric([status, kind], n)
        for status in (ScaleAction.Status.PENDING, ScaleAction.Status.RUNNING):
            for kind in kinds:
                if (status, kind) not in counts:
                    waiting.add_metric([status, kind], 0)
        yield from (done, waiting)

    def _latency(self):
        latency = SecondsBetween(F("finished_at"), F("created_at"))
        applied = ScaleAction.objects.filter(status=ScaleAction.Status.SUCCEEDED, finished_at__isnull=False)
        buckets = {f"le_{i}": Count("id", filter=Q(latency__lte=bound)) for i, bound in enumerate(LATENCY_BUCKETS)}
        totals = applied.annotate(latency=latency).aggregate(count=Count("id"), total=Sum("latency"), **buckets)
        family = HistogramMetricFamily(
            "scaledeck_scale_action_latency_seconds",
            "From request to applied, for succeeded actions, seconds.",
        )
        cumulative = [(str(float(bound)), totals[f"le_{i}"]) for i, bound in enumerate(LATENCY_BUCKETS)]
        family.add_metric([], cumulative + [("+Inf", totals["count"])], sum_value=float(totals["total"] or 0.0))
        return family
