"""The scaling timeline of one deployment: why it took as long as it did, as one ordered story.

It interleaves what the cluster said (fleet.ScalingEvent: autoscaler rescales and the metric
crossing behind them, pods created / failing to schedule / scheduled / pulling / started /
ready / deleted, NodeClaims launched and nodes registered / ready; and from Prometheus, the queue
crossing the autoscaler's target and each new pod's first token served, scaling/timeline_signals.py)
with what ScaleDeck did
(ScaleAction: who asked for what, and how it ended). Node-level rows join a deployment through
the nodes its pods were scheduled on, so the node launched for its pending pods shows up.

One UNION query, ordered by time and paginated in the database: a deployment with 10,000
stored events costs a COUNT and one page, whatever the page (bench/timeline.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import CharField, F, IntegerField, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import ApplicationError
from fleet.models import EventKind, ModelDeployment, ScalingEvent
from scaling.models import ScaleAction

DEFAULT_RANGE = timedelta(hours=24)
FIELDS = ("at", "kind", "object", "message", "source", "seq")


def timeline_range(*, start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end] from ISO 8601 strings; end defaults to now, start to 24 h before end."""

    def parse(value: str | None, name: str) -> datetime | None:
        if value is None or value.strip() == "":
            return None
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise ApplicationError(
                f"{shown!r} is not a date and time (ISO 8601, e.g. 2025-03-01T03:00:00Z)", field=name
            )
        return parsed if parsed.tzinfo else timezone.make_aware(parsed, timezone.utc)

    stop = parse(end, "end") or now
    begin = parse(start, "start") or stop - DEFAULT_RANGE
    if begin > stop:
        raise ApplicationError("the start is after the end", field="start")
    return begin, stop


def deployment_timeline(*, deployment: ModelDeployment, start: datetime, end: datetime) -> QuerySet:
    """Rows {at, kind, object, message, source} of the deployment in [start, end], oldest first
    (a lazy queryset: slicing it pages in the database)."""
    nodes = (
        ScalingEvent.objects.filter(deployment=deployment, kind=EventKind.POD_SCHEDULED)
        .exclude(node_name="")
        .values("node_name")
    )
    events = (
        ScalingEvent.objects.filter(
            Q(deployment=deployment)
            | Q(cluster_id=deployment.cluster_id, deployment__isnull=True, node_name__in=nodes),
            at__gte=start,
            at__lte=end,
        )
        .annotate(
            object=Concat(F("object_kind"), Value("/"), F("object_name"), output_field=CharField()),
            seq=F("id"),
        )
        .order_by()
        .values_list(*FIELDS)
    )
    actions = (
        ScaleAction.objects.filter(
            deployment=deployment,
            operation__in=(ScaleAction.Operation.SCALE, ScaleAction.Operation.RESTORE),
            created_at__gte=start,
            created_at__lte=end,
        )
        .annotate(
            at=F("created_at"),
            object=Concat(Value("ScaleAction #"), F("id"), output_field=CharField()),
            message=Concat(
                F("actor_label"), Value(" ("), F("status"), Value("): "), F("reason"), output_field=CharField()
            ),
            seq=Value(0, output_field=IntegerField()),
        )
        .annotate(kind=Value(EventKind.SCALE_ACTION, output_field=CharField()))
        .order_by()
        .values_list("at", "kind", "object", "message", "source", "seq")
    )
    return events.union(actions, all=True).order_by("at", "seq")


def timeline_row(row: tuple) -> dict:
    at, kind, obj, message, source, _seq = row
    return {"at": at, "kind": kind, "object": obj, "message": message, "source": source}
