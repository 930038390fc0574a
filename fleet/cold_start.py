"""Cold starts, measured from the stored scaling events (not assumed).

Per deployment, over the last 7 days: pod created -> Ready, split into scheduling wait
(created -> scheduled; waiting for a node is here), image pull (scheduled -> image pulled) and
container start -> Ready (loading the weights). Per node pool: NodeClaim launched -> node Ready.
Only pods seen from creation to Ready count; a part whose events expired or never came (no
Pulled event) is left out of that part's figures, not counted as zero.

`cold_start_stats` is pure (times in, figures out); the selectors read the events of many
deployments or pools in one query each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from fleet.models import EventKind, ModelDeployment, ScalingEvent

WINDOW = timedelta(days=7)
POD_KINDS = (
    EventKind.POD_CREATED,
    EventKind.POD_SCHEDULED,
    EventKind.IMAGE_PULLED,
    EventKind.CONTAINER_STARTED,
    EventKind.POD_READY,
)
NODE_KINDS = (EventKind.NODECLAIM_LAUNCHED, EventKind.NODE_READY)


@dataclass(frozen=True)
class ColdStart:
    """The API's `cold_start`: seconds, None without samples."""

    samples: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    max_seconds: float | None = None
    scheduling_p95_seconds: float | None = None
    pull_p95_seconds: float | None = None
    load_p95_seconds: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NodeStart:
    """NodeClaim launched -> node Ready for one pool, seconds."""

    pool: str
    samples: int
    p50_seconds: float | None
    p95_seconds: float | None
    max_seconds: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 3)


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None and b >= a else None


def cold_start_stats(pods: Iterable[dict[str, datetime]]) -> ColdStart:
    """Figures from each pod's first time of each kind ({"pod_created": t, "pod_ready": t, ...})."""
    total, scheduling, pull, load = [], [], [], []
    for times in pods:
        created, ready = times.get(EventKind.POD_CREATED), times.get(EventKind.POD_READY)
        whole = _seconds(created, ready)
        if whole is None:
            continue
        total.append(whole)
        scheduled = times.get(EventKind.POD_SCHEDULED)
        pulled = times.get(EventKind.IMAGE_PULLED)
        started = times.get(EventKind.CONTAINER_STARTED) or pulled
        for part, value in (
            (scheduling, _seconds(created, scheduled)),
            (pull, _seconds(scheduled, pulled)),
            (load, _seconds(started, ready)),
        ):
            if value is not None:
                part.append(value)
    if not total:
        return ColdStart()
    return ColdStart(
        samples=len(total),
        p50_seconds=percentile(total, 0.5),
        p95_seconds=percentile(total, 0.95),
        max_seconds=max(total),
        scheduling_p95_seconds=percentile(scheduling, 0.95),
        pull_p95_seconds=percentile(pull, 0.95),
        load_p95_seconds=percentile(load, 0.95),
    )


def _first_times(rows: Iterable[tuple]) -> dict:
    """(group, object, kind, at) rows, oldest first -> group -> object -> kind -> first time.
    A pod becoming Ready again later (a restart) is not a cold start: only the first counts."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    for group, obj, kind, at in rows:
        out[group][obj].setdefault(kind, at)
    return out


def deployment_cold_starts(deployments: Sequence[ModelDeployment], *, now: datetime) -> dict[int, ColdStart]:
    """Cold start figures of each deployment over the last 7 days, in one query."""
    rows = (
        ScalingEvent.objects.filter(
            deployment__in=[d.id for d in deployments],
            kind__in=POD_KINDS,
            at__gte=now - WINDOW,
            at__lte=now,
        )
        .order_by("at", "id")
        .values_list("deployment_id", "object_name", "kind", "at")
    )
    by_deployment = _first_times(rows)
    return {
        d.id: cold_start_stats(
            times for times in by_deployment.get(d.id, {}).values() if EventKind.POD_CREATED in times
        )
        for d in deployments
    }


def node_starts(*, cluster_ids: Sequence[int], now: datetime) -> dict[tuple[int, str], NodeStart]:
    """NodeClaim launched -> node Ready per (cluster id, pool) over the last 7 days, in one query."""
    rows = (
        ScalingEvent.objects.filter(
            cluster_id__in=cluster_ids,
            deployment__isnull=True,
            kind__in=NODE_KINDS,
            at__gte=now - WINDOW,
            at__lte=now,
        )
        .order_by("at", "id")
        .values_list("cluster_id", "node_pool", "object_name", "kind", "at")
    )
    per_pool: dict[tuple[int, str], list[float]] = defaultdict(list)
    claims = _first_times(((cluster, pool), name, kind, at) for cluster, pool, name, kind, at in rows)
    for key, by_claim in claims.items():
        for times in by_claim.values():
            seconds = _seconds(times.get(EventKind.NODECLAIM_LAUNCHED), times.get(EventKind.NODE_READY))
            if seconds is not None:
                per_pool[key].append(seconds)
    return {
        key: NodeStart(
            pool=key[1],
            samples=len(values),
            p50_seconds=percentile(values, 0.5),
            p95_seconds=percentile(values, 0.95),
            max_seconds=max(values),
        )
        for key, values in per_pool.items()
    }
