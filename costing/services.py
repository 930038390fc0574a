"""Costing services: accruing what each cluster's GPUs cost (the price catalog's seed: costing/catalog.py).

Accrual is costing's own periodic task (`costing.tasks.accrue_all_clusters`, off the sync path:
a slow Prometheus delays the bill, never the sync). It bills the span from the cluster's
watermark to its last good sync (`cost_accrue_observed`), at the state that sync stored:
- every Running pod holding GPUs on a live node: its GPU share (MIG slices at their fraction of
  a GPU) x the node's per-GPU price;
- the GPUs no pod holds, as "unallocated" (capacity paid for and unused is waste), one holder per
  node pool (per node for a node in no pool): see `node_pool_key`;
- idle: a deployment that served no tokens or whose GPUs ran under
  `SCALEDECK_IDLE_UTILIZATION_THRESHOLD`; unknown metrics never count as idle;
- tokens: what each deployment's vLLM counters counted over exactly the accrued span
  (`token_increase`), shared among its pods by GPU share; a metrics backend without counters
  falls back to its current token rates times the span.
Samples are per UTC hour, extended in place while nothing changes, written in bulk.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fractions import Fraction

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from costing import pricing
from costing.models import CostSample, CostWatermark
from costing.samples import (
    cost_sample_new,
    cost_sample_rates,
    cost_sample_stretch,
    idle_threshold,
    node_pool_key,
    sample_key,
    sample_rate,
    sample_row_key,
)
from costing.selectors import price_book
from fleet.backends.base import DeploymentMetrics, DeploymentRef, MetricsBackend
from fleet.models import Cluster, GpuNode, Pod

logger = logging.getLogger(__name__)

DEFAULT_MAX_GAP_SECONDS = 3600
DEFAULT_MIN_INTERVAL_SECONDS = 60


# --------------------------------------------------------------------------- accrual


@dataclass(frozen=True)
class _Holder:
    """Something that holds GPUs of a node during the accrued span: a pod, or nobody."""

    kind: str
    node: GpuNode  # for unallocated GPUs of a pool, one of its nodes (they share instance type and price)
    share: Fraction
    pod: Pod | None = None
    pool: str | None = None  # unallocated GPUs of this node pool, all its nodes of `node`'s kind
    metrics: DeploymentMetrics | None = None
    token_fraction: Fraction = Fraction(0)  # this pod's part of its deployment's tokens
    # Its deployment's (prompt, generated) tokens per second over the accrued span, from the
    # counters; None when they could not be counted (then the metrics' current rates are used).
    counted_rates: tuple[Fraction | None, Fraction | None] | None = None


def _min_interval() -> timedelta:
    seconds = getattr(settings, "SCALEDECK_COST_MIN_INTERVAL_SECONDS", DEFAULT_MIN_INTERVAL_SECONDS)
    return timedelta(seconds=int(seconds))


def _max_gap() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "SCALEDECK_COST_MAX_GAP_SECONDS", DEFAULT_MAX_GAP_SECONDS)))


def _metrics_backend(cluster: Cluster, backend: MetricsBackend | None) -> MetricsBackend | None:
    if backend is not None:
        return backend
    try:
        from fleet.backends.registry import metrics_backend

        return metrics_backend(cluster)
    except Exception as exc:  # noqa: BLE001 - a metrics failure must never stop billing
        logger.warning("cost of %s: no metrics backend (%s)", cluster.name, str(exc)[:200])
        return None


def _deployment_metrics(
    cluster: Cluster, refs: Sequence[DeploymentRef], backend: MetricsBackend | None
) -> dict[tuple[str, str], DeploymentMetrics]:
    if not refs or backend is None:
        return {}
    try:
        found = backend.deployment_metrics(refs)
    except Exception as exc:  # noqa: BLE001 - a metrics failure must never stop billing
        logger.warning(
            "cost of %s: metrics unavailable (%s): idle GPUs and tokens not assessed for this span",
            cluster.name,
            str(exc)[:200],
        )
        return {}
    reasons = {m.unavailable_reason for m in found.values() if m.unavailable_reason}
    if reasons:
        logger.info(
            "cost of %s: metrics unavailable for some deployments (%s): not counted as idle",
            cluster.name,
            "; ".join(sorted(reasons))[:300],
        )
    return found


def _counted_rates(
    cluster: Cluster, refs: Sequence[DeploymentRef], backend: MetricsBackend | None, start: datetime, end: datetime
) -> dict[tuple[str, str], tuple[Fraction | None, Fraction | None]] | None:
    """Each deployment's tokens counted in [start, end], as average rates over that span.

    None when there is no backend or it cannot count (it failed): the caller then falls back to
    the current rates. A rate is None where the deployment's pods report nothing.
    """
    if not refs or backend is None:
        return None
    if backend.last_error is not None:
        return None  # its metrics queries just failed: do not wait for a second timeout
    try:
        counted = backend.token_increase(refs, start, end)
    except Exception as exc:  # noqa: BLE001 - a metrics failure must never stop billing
        logger.warning("cost of %s: tokens not counted (%s): using current rates", cluster.name, str(exc)[:200])
        return None
    seconds = pricing.seconds_between(start, end)

    def rate(tokens: float | None) -> Fraction | None:
        return None if tokens is None else Fraction(max(tokens, 0.0)) / seconds

    return {key: (rate(prompt), rate(generated)) for key, (prompt, generated) in counted.items()}


def _holders(cluster: Cluster, metrics: MetricsBackend | None) -> list[_Holder]:
    """Who holds which GPUs of the cluster's live nodes, from the state the sync stored."""
    nodes = {
        n.id: n for n in GpuNode.objects.alive().filter(cluster=cluster, gpu_count__gt=0).select_related("node_pool")
    }
    pods = [
        p
        for p in Pod.objects.alive()
        .filter(cluster=cluster, phase="Running", node_id__in=list(nodes))
        .select_related("deployment")
        .order_by("namespace", "name")
    ]
    shares = {p.id: pricing.gpu_share(p.gpu_requests or {}, nodes[p.node_id].gpu_product) for p in pods}
    pods = [p for p in pods if shares[p.id] > 0]

    by_deployment: dict[int, list[Pod]] = defaultdict(list)
    for p in pods:
        if p.deployment_id:
            by_deployment[p.deployment_id].append(p)
    refs = [
        DeploymentRef(
            namespace=group[0].deployment.namespace, name=group[0].deployment.name, pods=tuple(p.name for p in group)
        )
        for group in by_deployment.values()
    ]
    found = _deployment_metrics(cluster, refs, _metrics_backend(cluster, metrics) if refs else None)

    holders = []
    allocated: dict[int, Fraction] = defaultdict(Fraction)
    for p in pods:
        allocated[p.node_id] += shares[p.id]
        dep_metrics, token_fraction = None, Fraction(0)
        if p.deployment_id:
            dep_metrics = found.get((p.deployment.namespace, p.deployment.name))
            dep_share = sum(shares[q.id] for q in by_deployment[p.deployment_id])
            token_fraction = shares[p.id] / dep_share
        holders.append(
            _Holder(
                kind=CostSample.Kind.POD,
                node=nodes[p.node_id],
                share=shares[p.id],
                pod=p,
                metrics=dep_metrics,
                token_fraction=token_fraction,
            )
        )
    return holders + _unallocated(cluster, nodes.values(), allocated)


def _unallocated(cluster: Cluster, nodes, allocated: dict[int, Fraction]) -> list[_Holder]:
    """The GPUs no pod holds: one holder per node pool and kind of node (instance type, region,
    capacity type: what sets the price), or per node for a node in no pool."""
    free: dict[tuple, Fraction] = defaultdict(Fraction)
    first: dict[tuple, GpuNode] = {}
    for node in sorted(nodes, key=lambda n: n.name):
        spare = Fraction(node.gpu_count) - allocated[node.id]
        if spare <= 0:
            continue
        pool = node.node_pool.name if node.node_pool_id else None
        key = (pool, node.instance_type, node.region or cluster.region, node.capacity_type) if pool else (node.id,)
        free[key] += spare
        first.setdefault(key, node)
    return [
        _Holder(kind=CostSample.Kind.UNALLOCATED, node=first[key], share=share, pool=key[0] if len(key) > 1 else None)
        for key, share in free.items()
    ]


def _with_counted_tokens(
    cluster: Cluster, holders: list[_Holder], metrics: MetricsBackend | None, start: datetime, end: datetime
) -> list[_Holder]:
    """The holders, each pod carrying its deployment's tokens as counted over [start, end)."""
    pods: dict[tuple[str, str], list[str]] = defaultdict(list)
    for h in holders:
        if h.pod is not None and h.pod.deployment_id:
            pods[(h.pod.deployment.namespace, h.pod.deployment.name)].append(h.pod.name)
    refs = [DeploymentRef(namespace=ns, name=name, pods=tuple(names)) for (ns, name), names in pods.items()]
    counted = _counted_rates(cluster, refs, _metrics_backend(cluster, metrics) if refs else None, start, end)
    if counted is None:
        return holders
    return [
        replace(h, counted_rates=counted.get((h.pod.deployment.namespace, h.pod.deployment.name)))
        if h.pod is not None and h.pod.deployment_id
        else h
        for h in holders
    ]


@dataclass(frozen=True)
class _Priced:
    """A holder's rates during one segment (rates are exact; None when the catalog has no price)."""

    quote: pricing.PriceQuote | None
    rate: Fraction | None
    on_demand_rate: Fraction | None
    idle: bool

    @classmethod
    def of(cls, holder: _Holder, quote: pricing.PriceQuote | None, threshold: float) -> _Priced:
        m = holder.metrics
        if holder.kind == CostSample.Kind.UNALLOCATED:
            idle = True  # capacity paid for that nobody holds
        else:
            idle = m is not None and pricing.is_idle(
                utilization=m.gpu_utilization,
                prompt_tokens_per_second=m.prompt_tokens_per_second,
                generation_tokens_per_second=m.generation_tokens_per_second,
                threshold=threshold,
            )
        rate, on_demand = cost_sample_rates(quote, holder.share)
        return cls(quote, rate, on_demand, idle)


def _holder_node(holder: _Holder) -> tuple[GpuNode | None, str]:
    """(node, node_name) a holder's samples carry: its node, or for a pool's spare GPUs none and the pool's key."""
    if holder.pool is not None:
        return None, node_pool_key(holder.pool)
    return holder.node, holder.node.name


def _holder_key(holder: _Holder, priced: _Priced, at: datetime) -> tuple:
    pod = holder.pod
    node, node_name = _holder_node(holder)
    return sample_key(
        hour=pricing.hour_floor(at),
        kind=holder.kind,
        node_id=node.id if node else None,
        node_name=node_name,
        pod_id=pod.id if pod else None,
        deployment_id=pod.deployment_id if pod else None,
        price_id=priced.quote.price.id if priced.quote else None,
        gpus=pricing.quantize(holder.share),
        idle=priced.idle,
        on_demand_rate=sample_rate(priced.on_demand_rate),
    )


def _new_sample(cluster: Cluster, holder: _Holder, priced: _Priced, at: datetime) -> CostSample:
    pod, node = holder.pod, holder.node
    sample_node, node_name = _holder_node(holder)
    return cost_sample_new(
        at=at,
        share=holder.share,
        quote=priced.quote,
        rate=priced.rate,
        on_demand_rate=priced.on_demand_rate,
        idle=priced.idle,
        cluster=cluster,
        cluster_name=cluster.name,
        node=sample_node,
        node_name=node_name,
        kind=holder.kind,
        pod=pod,
        pod_name=pod.name if pod else "",
        deployment_id=pod.deployment_id if pod else None,
        deployment_name=pod.deployment.name if pod and pod.deployment else "",
        namespace=pod.namespace if pod else "",
        instance_type=node.instance_type,
        region=node.region or cluster.region,
        capacity_type=node.capacity_type,
    )


def _extend(row: CostSample, holder: _Holder, priced: _Priced, start: datetime, end: datetime) -> None:
    """Add [start, end) (which begins where the row ends) to the row."""
    cost_sample_stretch(row, end=end, share=holder.share, rate=priced.rate, on_demand_rate=priced.on_demand_rate)
    # Utilization and tokens vary from one accrual to the next: accumulated.
    m = holder.metrics
    if holder.counted_rates is not None:  # counted over the span: exact
        prompt_rate, generation_rate = holder.counted_rates
    elif m is not None:  # the current rates, as an estimate
        prompt_rate = None if m.prompt_tokens_per_second is None else Fraction(m.prompt_tokens_per_second)
        generation_rate = None if m.generation_tokens_per_second is None else Fraction(m.generation_tokens_per_second)
    else:
        prompt_rate = generation_rate = None
    seconds = pricing.seconds_between(start, end) * holder.token_fraction
    if prompt_rate:
        row.prompt_tokens += round(prompt_rate * seconds)
    if generation_rate:
        row.generation_tokens += round(generation_rate * seconds)
    if m is not None and m.gpu_utilization is not None:
        gpu_hours = holder.share * pricing.hours_between(start, end)
        row.metered_gpu_hours = pricing.quantize(pricing.exact(row.metered_gpu_hours) + gpu_hours)
        row.busy_gpu_hours = pricing.quantize(
            pricing.exact(row.busy_gpu_hours) + gpu_hours * Fraction(m.gpu_utilization)
        )


def cost_accrue(*, cluster: Cluster, now: datetime | None, metrics: MetricsBackend | None = None) -> int:
    """Accrue the cost of what ran on `cluster` between its watermark and `now`.

    The first call only sets the watermark; a call less than `SCALEDECK_COST_MIN_INTERVAL_SECONDS`
    (default 60) after the watermark waits for a later one. A gap longer than `SCALEDECK_COST_MAX_GAP_SECONDS`
    (workers or syncs were down) is billed only for its last part, at the current state, and
    logged. Safe under retries and concurrent workers: the span is claimed with one conditional
    UPDATE of the watermark, in the same transaction as the samples; the loser writes nothing.
    Returns the number of samples written or extended.
    """
    now = now or timezone.now()
    watermark, created = CostWatermark.objects.get_or_create(cluster=cluster, defaults={"accrued_until": now})
    if created:
        return 0
    previous = watermark.accrued_until
    if previous is None:
        CostWatermark.objects.filter(id=watermark.id, accrued_until__isnull=True).update(accrued_until=now)
        return 0
    if now <= previous:
        return 0  # a duplicate or late call: this span is already accrued
    if now - previous < _min_interval():
        # Syncs run every few seconds; accruing at most once a minute bounds the writes. The span
        # is not lost: the next accrual starts from the same watermark.
        return 0

    start = previous
    if now - previous > _max_gap():
        start = now - _max_gap()
        logger.warning(
            "cost of %s: no accrual for %s (syncs or workers were down); billing only the last %s "
            "at the current state, %s from %s not accrued",
            cluster.name,
            now - previous,
            _max_gap(),
            start - previous,
            previous.isoformat(),
        )

    metrics = _metrics_backend(cluster, metrics)
    holders = _with_counted_tokens(cluster, _holders(cluster, metrics), metrics, start, now)
    book = price_book({h.node.instance_type for h in holders})
    cuts: set[datetime] = set()
    for instance_type, region in {(h.node.instance_type, h.node.region or cluster.region) for h in holders}:
        cuts |= book.changes_between(
            instance_type=instance_type, region=region, start=start, end=now, cluster_id=cluster.id
        )
    # Samples that ended exactly at the watermark may be extended; after a skipped gap none can.
    open_rows = {}
    if start == previous:
        open_rows = {sample_row_key(r): r for r in CostSample.objects.filter(cluster=cluster, end=previous)}
    new_rows: list[CostSample] = []
    extended: dict[int, CostSample] = {}
    threshold = idle_threshold()
    unpriced: set[str] = set()

    for seg_start, seg_end in pricing.split_interval(start, now, cuts):
        still_open = {}
        for h in holders:
            region = h.node.region or cluster.region
            quote = book.quote(
                instance_type=h.node.instance_type,
                region=region,
                capacity_type=h.node.capacity_type,
                at=seg_start,
                cluster_id=cluster.id,
            )
            if quote is None:
                unpriced.add(f"{h.node.instance_type or '(no instance type)'} in {region}")
            priced = _Priced.of(h, quote, threshold)
            key = _holder_key(h, priced, seg_start)
            row = open_rows.get(key)
            if row is None:
                row = _new_sample(cluster, h, priced, seg_start)
                new_rows.append(row)
            elif row.pk is not None:
                extended[row.pk] = row
            _extend(row, h, priced, seg_start, seg_end)
            still_open[key] = row
        open_rows = still_open

    if unpriced:
        logger.warning(
            "cost of %s: no price for %s: GPU-hours recorded without a cost (add the price in the admin)",
            cluster.name,
            ", ".join(sorted(unpriced)),
        )
    with transaction.atomic():
        claimed = CostWatermark.objects.filter(id=watermark.id, accrued_until=previous).update(accrued_until=now)
        if claimed != 1:
            return 0  # another worker accrued this span first
        CostSample.objects.bulk_create(new_rows, batch_size=500)
        CostSample.objects.bulk_update(
            list(extended.values()),
            [
                "end",
                "gpu_hours",
                "idle_gpu_hours",
                "usd",
                "on_demand_usd",
                "metered_gpu_hours",
                "busy_gpu_hours",
                "prompt_tokens",
                "generation_tokens",
            ],
            batch_size=200,
        )
    return len(new_rows) + len(extended)


def cost_accrue_observed(*, cluster: Cluster, metrics: MetricsBackend | None = None) -> int:
    """Accrue `cluster` up to its last good sync (or its watcher's last good renewal): never past
    what was observed, so while syncs fail nothing more is billed, and the gap is billed at the
    state seen when they succeed again (within `SCALEDECK_COST_MAX_GAP_SECONDS`). Re-run, or run
    after a crash, it bills nothing twice: `cost_accrue` claims each span once. A cluster never
    synced is not billed; its first good sync starts the bill (the first call sets the watermark).
    """
    last_ok = Cluster.objects.filter(id=cluster.id).values_list("last_sync_ok_at", flat=True).first()
    if last_ok is None:
        return 0
    return cost_accrue(cluster=cluster, now=last_ok, metrics=metrics)
