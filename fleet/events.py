"""Scaling events: storing what a sync saw (deduplicated) and pruning them after their retention.

A sync hands over every Event, pod condition and NodeClaim condition its backend read; most of
them were stored by an earlier sync already. One SELECT finds those (by uid, within the time
span of the batch), one bulk INSERT adds the rest. A NodeClaim's Launched fact is first seen
before Karpenter names its node: the node name is filled in when a later sync learns it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from fleet.autoscalers import kubernetes_kind
from fleet.backends.base import BackendError, KnownOwners, ScalingEventFacts
from fleet.models import Autoscaler, Cluster, EventKind, ModelDeployment, Pod, ScalingEvent

logger = logging.getLogger(__name__)

# Same instant: the cause before its effect (the metric before the rescale, a pod created before
# it fails to schedule). Kinds not listed keep the order the backend gave.
KIND_ORDER = {kind: i for i, kind in enumerate(EventKind.values)}


def retention_days() -> int:
    return int(getattr(settings, "SCALEDECK_EVENT_RETENTION_DAYS", 14))


def scaling_events_store(
    *,
    cluster: Cluster,
    facts: Iterable[ScalingEventFacts],
    deployments: dict[tuple[str, str], ModelDeployment],
    now: datetime,
) -> int:
    """Store the facts not stored yet; returns how many rows were added. Facts older than the
    retention are dropped (the prune would take them next anyway)."""
    horizon = now - timedelta(days=retention_days())
    fresh = sorted((f for f in facts if f.at >= horizon), key=lambda f: (f.at, KIND_ORDER.get(f.kind, 99)))
    if not fresh:
        return 0
    known = {
        (uid, count): (pk, node_name)
        for pk, uid, count, node_name in ScalingEvent.objects.filter(
            cluster=cluster, at__gte=fresh[0].at, at__lte=fresh[-1].at
        ).values_list("id", "uid", "count", "node_name")
    }
    to_create, named = [], []
    seen = set()
    for f in fresh:
        key = (f.uid[:300], f.count)
        if key in seen:
            continue
        seen.add(key)
        if key in known:
            pk, node_name = known[key]
            if f.node_name and not node_name:
                named.append(ScalingEvent(id=pk, node_name=f.node_name[:253]))
            continue
        deployment = deployments.get((f.namespace, f.deployment)) if f.deployment else None
        to_create.append(
            ScalingEvent(
                cluster=cluster,
                uid=key[0],
                count=f.count,
                at=f.at,
                kind=f.kind if f.kind in KIND_ORDER else EventKind.OTHER,
                reason=f.reason[:100],
                namespace=f.namespace[:63],
                object_kind=f.object_kind[:40],
                object_name=f.object_name[:253],
                message=f.message[:500],
                source=f.source[:16],
                deployment=deployment,
                node_name=f.node_name[:253],
                node_pool=f.node_pool[:253],
            )
        )
    if to_create:
        ScalingEvent.objects.bulk_create(to_create, batch_size=1000, ignore_conflicts=True)
    if named:
        ScalingEvent.objects.bulk_update(named, ["node_name"], batch_size=1000)
    return len(to_create)


def scaling_events_prune(*, now: datetime) -> int:
    """Delete events older than SCALEDECK_EVENT_RETENTION_DAYS; returns how many."""
    deleted, _ = ScalingEvent.objects.filter(at__lt=now - timedelta(days=retention_days())).delete()
    return deleted


def watched_cluster_events_record(*, cluster: Cluster, now: datetime, backend=None) -> str:
    """The beat's turn for a cluster its watcher keeps current (no full sync): list only the
    Events and NodeClaims (two list calls) and store them, so its timeline and cold starts go on.
    Owners come from the rows the watcher keeps (three queries). A failure is logged and said,
    never raised: the watcher's lease and the cost accrual do not depend on it."""
    from fleet.backends.registry import cluster_backend

    backend = backend or cluster_backend(cluster)
    deployments = {(d.namespace, d.name): d for d in ModelDeployment.objects.alive().filter(cluster=cluster)}
    known = KnownOwners(
        deployments=frozenset(deployments),
        pods={
            (ns, name): owner
            for ns, name, owner in Pod.objects.alive()
            .filter(cluster=cluster, owner_kind="Deployment")
            .values_list("namespace", "name", "owner_name")
        },
        autoscalers={
            (kubernetes_kind(kind), ns, name): target
            for kind, ns, name, target in Autoscaler.objects.alive()
            .filter(cluster=cluster)
            .values_list("kind", "namespace", "name", "target_name")
        },
    )
    try:
        facts, warnings = backend.scaling_events(known)
    except BackendError as exc:
        logger.warning("cluster %s: events not read: %s", cluster.name, exc)
        return f"events not read: {exc}"
    for warning in warnings:
        logger.warning("cluster %s: %s", cluster.name, warning)
    added = scaling_events_store(cluster=cluster, facts=facts, deployments=deployments, now=now)
    return f"{added} new event(s)"
