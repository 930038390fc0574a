"""Cost history for a simulated cluster, built from the per-minute history its world keeps.

Live accrual (`costing.services.cost_accrue`) bills a cluster from its first sync on, so a new
demo would open on an empty cost page. `cost_backfill_simulated` writes the hours before that
from the simulated world's history, as the same `CostSample`s (per UTC hour, one row per
holder while its rate and idleness stay the same, catalog prices in effect at each moment,
MIG slices at their share of a GPU, NULL usd where the catalog has no price), ending exactly
where live accrual begins.

The history is per deployment and per node pool, minute by minute, where live accrual sees
pods on nodes. What that changes:
- Samples name a node pool, not a node or a pod: `node` and `pod` are empty and `node_name`
  is "nodepool/<pool>", so a per-node view shows the backfilled hours under the pool. Live
  accrual keys unallocated GPUs the same way (`services.node_pool_key`): one row for them.
- A deployment's GPUs in a minute are its scheduled pods (the minute's `gpus_allocated` over
  one replica's share, to the nearest 1/60 of a pod: `gpus_allocated` is stored to 1/1000 of a
  GPU, too coarse for 3/7) x one replica's share, as `pricing.gpu_share` prices a pod. That
  counts pods still pulling their image, which live accrual bills from Running on: for the
  minute or two of a pull those GPUs are the deployment's instead of unallocated.
- A pool's GPUs are its Ready nodes at the end of each minute x the GPUs of one of its nodes
  now. Nodes still launching are not billed (nor are they live: they advertise no GPUs yet);
  a node repartitioning its MIG slices is not Ready, so it is not billed here, though live
  accrual bills it. Whatever the pool's deployments do not hold is unallocated (idle).
- A pool's instance type, capacity type, region and GPU model are those of its nodes now (the
  most common, if they differ); a pool with no node left is not billed. A deployment belongs
  to the pool its pods run on now; one with no scheduled pod now is not attributed, and the
  GPUs it held show as its pool's unallocated ones (the pool is still billed whole).
- Idle, per minute, is decided as live accrual decides it: no tokens served, or GPU
  utilization under `SCALEDECK_IDLE_UTILIZATION_THRESHOLD`; utilization (the minute's mean) is
  known only while a replica is ready. Tokens are the minute increments of the cumulative
  counters, exact; a minute cut by the window's start is prorated.
- The world closes a minute at its end: the part of a minute between the last closed one and
  the watermark (under a minute, since the history is read at the current time) is billed at
  the last closed minute's state.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from django.db import transaction

from core.errors import ApplicationError
from costing import pricing
from costing.models import CostSample, CostWatermark
from costing.samples import cost_sample_new, cost_sample_rates, cost_sample_stretch, idle_threshold, node_pool_key
from costing.selectors import price_book
from fleet.backends.base import BackendError
from fleet.backends.registry import simulated_world_metrics
from fleet.models import Cluster, GpuNode, ModelDeployment, Pod

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
POD_STEPS_PER_MINUTE = 60  # `gpus_allocated` averages whole pods over steps that divide a minute


@dataclass(frozen=True)
class _Pool:
    name: str
    instance_type: str
    region: str
    capacity_type: str
    gpus_per_node: int
    gpu_product: str


@dataclass(frozen=True)
class _Holding:
    """Who held how many GPUs of a pool during one minute, and what they did with them."""

    kind: str
    pool: _Pool
    share: Fraction
    idle: bool
    deployment: ModelDeployment | None = None
    utilization: Fraction | None = None
    prompt_tokens: int = 0
    generation_tokens: int = 0


@dataclass
class _Open:
    """A sample being built; utilization and tokens are summed exactly and rounded once."""

    row: CostSample
    metered: Fraction = field(default_factory=Fraction)
    busy: Fraction = field(default_factory=Fraction)
    prompt: Fraction = field(default_factory=Fraction)
    generation: Fraction = field(default_factory=Fraction)

    def finish(self) -> CostSample:
        self.row.metered_gpu_hours = pricing.quantize(self.metered)
        self.row.busy_gpu_hours = pricing.quantize(self.busy)
        self.row.prompt_tokens = round(self.prompt)
        self.row.generation_tokens = round(self.generation)
        return self.row


def cost_backfill_simulated(*, cluster: Cluster, hours: int = 24) -> int:
    """Write the cost of the `hours` before live accrual began on a simulated cluster.

    The window ends at the cluster's cost watermark (or, before any accrual, at the end of the
    history, and the watermark is set there): live accrual goes on from exactly that moment.
    It starts `hours` earlier, or where the history starts. Idempotent: nothing is written when
    the cluster already has samples before the watermark. Returns the number of samples written.
    """
    if cluster.backend != Cluster.Backend.SIMULATED:
        raise ApplicationError(
            f"{cluster.name} is not a simulated cluster: it keeps no history to bill", field="cluster"
        )
    if hours <= 0:
        raise ApplicationError("hours must be positive", field="hours")
    source = simulated_world_metrics(cluster)
    if source is None:
        raise ApplicationError(
            f"{cluster.name} reads its metrics from Prometheus, not from its simulated world", field="cluster"
        )
    mark = CostWatermark.objects.filter(cluster=cluster).values_list("accrued_until", flat=True).first()
    if _accrued_before(cluster, mark):
        logger.info("cost of %s: history already accrued, not backfilled again", cluster.name)
        return 0

    pools = _pools(cluster)
    deployments = _deployment_pools(cluster, pools)
    pool_rows = source.node_pool_history()
    history: dict[int, dict[datetime, dict]] = {}
    for dep in deployments:
        try:
            history[dep.id] = {r["at"]: r for r in source.deployment_minutes(dep.namespace, dep.name)}
        except BackendError as exc:
            logger.warning("cost of %s: no history for %s (%s): its GPUs count as unallocated", cluster.name, dep, exc)
    minutes = sorted({r["at"] for rows in pool_rows.values() for r in rows})
    if not minutes:
        return 0
    end = mark or minutes[-1]
    start = end - timedelta(hours=hours)

    book = price_book({p.instance_type for p in pools.values()})
    cuts: set[datetime] = set()
    for pool in pools.values():
        cuts |= book.changes_between(
            instance_type=pool.instance_type, region=pool.region, start=start, end=end, cluster_id=cluster.id
        )
    by_minute = {name: {r["at"]: r for r in rows} for name, rows in pool_rows.items()}
    threshold = idle_threshold()
    opened: list[_Open] = []
    current: dict[tuple, _Open] = {}
    unpriced: set[str] = set()
    previous: dict[int, dict] = {}

    spans: list[tuple[datetime, datetime, datetime | None]] = [(at - MINUTE, at, at) for at in minutes]
    if end > minutes[-1]:
        spans.append((minutes[-1], end, None))  # not closed yet: at the last closed minute's state
    holdings: list[_Holding] = []
    for lo, hi, at in spans:
        if at is not None:
            holdings = _holdings(at, pools, deployments, history, by_minute, previous, threshold)
        lo, hi = max(lo, start), min(hi, end)
        if hi <= lo:
            continue
        for seg_start, seg_end in pricing.split_interval(lo, hi, cuts):
            part = pricing.seconds_between(seg_start, seg_end) / 60  # of a minute's tokens
            for h in holdings:
                pool = h.pool
                quote = book.quote(
                    instance_type=pool.instance_type,
                    region=pool.region,
                    capacity_type=pool.capacity_type,
                    at=seg_start,
                    cluster_id=cluster.id,
                )
                if quote is None:
                    unpriced.add(f"{pool.instance_type or '(no instance type)'} in {pool.region}")
                rate, on_demand = cost_sample_rates(quote, h.share)
                key = (
                    pricing.hour_floor(seg_start),
                    h.kind,
                    pool.name,
                    h.deployment.id if h.deployment else None,
                    quote.price.id if quote else None,
                    h.share,
                    h.idle,
                    on_demand,
                )
                sample = current.get(key)
                if sample is None or sample.row.end != seg_start:
                    sample = _Open(
                        cost_sample_new(
                            at=seg_start,
                            share=h.share,
                            quote=quote,
                            rate=rate,
                            on_demand_rate=on_demand,
                            idle=h.idle,
                            **_who(cluster, h),
                        )
                    )
                    opened.append(sample)
                    current[key] = sample
                cost_sample_stretch(sample.row, end=seg_end, share=h.share, rate=rate, on_demand_rate=on_demand)
                if h.utilization is not None:
                    gpu_hours = h.share * pricing.hours_between(seg_start, seg_end)
                    sample.metered += gpu_hours
                    sample.busy += gpu_hours * h.utilization
                sample.prompt += h.prompt_tokens * part
                sample.generation += h.generation_tokens * part

    if unpriced:
        logger.warning(
            "cost of %s: no price for %s: GPU-hours recorded without a cost (add the price in the admin)",
            cluster.name,
            ", ".join(sorted(unpriced)),
        )
    return _write(cluster, [s.finish() for s in opened], end)


def _accrued_before(cluster: Cluster, moment: datetime | None) -> bool:
    samples = CostSample.objects.filter(cluster=cluster)
    return (samples.filter(start__lt=moment) if moment else samples).exists()


def _write(cluster: Cluster, rows: list[CostSample], end: datetime) -> int:
    """Store the samples and make live accrual begin at `end`, unless someone got there first."""
    with transaction.atomic():
        watermark, _ = CostWatermark.objects.select_for_update().get_or_create(
            cluster=cluster, defaults={"accrued_until": end}
        )
        # Checked again under the lock: a concurrent backfill, or an accrual, may have written.
        if _accrued_before(cluster, end):
            return 0
        if watermark.accrued_until != end and not CostSample.objects.filter(cluster=cluster).exists():
            # Only the first accrual ran (it bills nothing, it only sets the watermark): live
            # accrual starts where the history ends. With samples after `end`, it already does.
            CostWatermark.objects.filter(id=watermark.id).update(accrued_until=end)
        CostSample.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _pools(cluster: Cluster) -> dict[str, _Pool]:
    """Each node pool as its live GPU nodes describe it (the most common kind of node, if mixed)."""
    kinds: dict[str, Counter] = defaultdict(Counter)
    rows = (
        GpuNode.objects.alive()
        .filter(cluster=cluster, gpu_count__gt=0, node_pool__isnull=False)
        .values_list("node_pool__name", "instance_type", "region", "capacity_type", "gpu_count", "gpu_product")
    )
    for name, instance_type, region, capacity_type, gpu_count, product in rows:
        kinds[name][(instance_type, region or cluster.region, capacity_type, gpu_count, product)] += 1
    return {name: _Pool(name, *counter.most_common(1)[0][0]) for name, counter in kinds.items()}


def _deployment_pools(cluster: Cluster, pools: dict[str, _Pool]) -> dict[ModelDeployment, _Pool]:
    """The pool each live deployment's pods run on now (the one holding most of them)."""
    counts: dict[int, Counter] = defaultdict(Counter)
    pods = Pod.objects.alive().filter(cluster=cluster, deployment__isnull=False, node__node_pool__isnull=False)
    for deployment_id, pool in pods.values_list("deployment_id", "node__node_pool__name"):
        if pool in pools:
            counts[deployment_id][pool] += 1
    result = {}
    for dep in ModelDeployment.objects.alive().filter(cluster=cluster).order_by("namespace", "name"):
        if counts[dep.id]:
            result[dep] = pools[counts[dep.id].most_common(1)[0][0]]
        else:
            logger.info("cost of %s: %s runs no pod now: its past GPUs count as unallocated", cluster.name, dep)
    return result


def _holdings(
    at: datetime,
    pools: dict[str, _Pool],
    deployments: dict[ModelDeployment, _Pool],
    history: dict[int, dict[datetime, dict]],
    by_minute: dict[str, dict[datetime, dict]],
    previous: dict[int, dict],
    threshold: float,
) -> list[_Holding]:
    """Who held which GPUs of each pool in the minute ending at `at`. `previous` is each
    deployment's last minute seen (for its counters' increments); this call updates it."""
    holdings: list[_Holding] = []
    allocated: dict[str, Fraction] = defaultdict(Fraction)
    for dep, pool in deployments.items():
        row = history.get(dep.id, {}).get(at)
        if row is None:
            continue
        prompt = _increment(row, previous.get(dep.id), "prompt_tokens")
        generation = _increment(row, previous.get(dep.id), "generation_tokens")
        previous[dep.id] = row
        replica = pricing.gpu_share({dep.gpu_resource: dep.gpu_per_replica}, pool.gpu_product)
        if not replica or not row.get("gpus_allocated"):
            continue
        pods = Fraction(round(row["gpus_allocated"] / float(replica) * POD_STEPS_PER_MINUTE), POD_STEPS_PER_MINUTE)
        share = pods * replica
        if share <= 0:
            continue
        allocated[pool.name] += share
        serving = bool(row.get("replicas_ready")) and row.get("gpu_utilization") is not None
        utilization = row["gpu_utilization"] if serving else None
        idle = pricing.is_idle(
            utilization=utilization,
            prompt_tokens_per_second=row["prompt_tokens_per_second"],
            generation_tokens_per_second=row["generation_tokens_per_second"],
            threshold=threshold,
        )
        holdings.append(
            _Holding(
                kind=CostSample.Kind.POD,
                pool=pool,
                share=share,
                idle=idle,
                deployment=dep,
                utilization=None if utilization is None else pricing.exact(str(utilization)),
                prompt_tokens=prompt,
                generation_tokens=generation,
            )
        )
    for pool in pools.values():
        minute = by_minute.get(pool.name, {}).get(at)
        if minute is None:
            continue
        free = Fraction(minute["nodes_ready"] * pool.gpus_per_node) - allocated[pool.name]
        if free > 0:
            holdings.append(_Holding(kind=CostSample.Kind.UNALLOCATED, pool=pool, share=free, idle=True))
    return holdings


def _increment(row: dict, before: dict | None, counter: str) -> int:
    """Tokens counted during the row's minute, from the cumulative counter."""
    total = row[f"{counter}_total"]
    if before is not None:
        return total - before[f"{counter}_total"]
    return round(row[f"{counter}_per_second"] * 60)  # the first minute: its stored increment


def _who(cluster: Cluster, h: _Holding) -> dict:
    pool, dep = h.pool, h.deployment
    return {
        "cluster": cluster,
        "cluster_name": cluster.name,
        "node": None,
        "node_name": node_pool_key(pool.name),
        "kind": h.kind,
        "pod": None,
        "pod_name": "",
        "deployment": dep,
        "deployment_name": dep.name if dep else "",
        "namespace": dep.namespace if dep else "",
        "instance_type": pool.instance_type,
        "region": pool.region,
        "capacity_type": pool.capacity_type,
    }
