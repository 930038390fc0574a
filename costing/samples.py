"""The shape of a cost sample, shared by live accrual (`costing.services.cost_accrue`) and the
backfilled history of a simulated cluster (`costing.backfill`): who holds the GPUs (a pod, or a
node pool's spare GPUs), at which rate, stretched over a span at that constant rate, and when
allocated GPU-hours count as idle."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.conf import settings

from costing import pricing
from costing.models import CostSample

DEFAULT_IDLE_UTILIZATION_THRESHOLD = 0.10
NODE_POOL_PREFIX = "nodepool/"


def node_pool_key(pool: str) -> str:
    """The `node_name` of a sample billed to a node pool rather than to one node.

    Unallocated GPUs are keyed by their node pool, in live accrual as in the backfilled history
    of a simulated cluster (which knows pools minute by minute, not nodes), so the same spare
    capacity is one row wherever it is listed. The pool is also where it is decided: Karpenter
    consolidates and sizes a NodePool, not one node.
    """
    return NODE_POOL_PREFIX + pool


def idle_threshold() -> float:
    """GPU utilization (0-1) under which allocated GPU-hours count as idle."""
    return float(getattr(settings, "SCALEDECK_IDLE_UTILIZATION_THRESHOLD", DEFAULT_IDLE_UTILIZATION_THRESHOLD))


def sample_rate(value: Fraction | None) -> Decimal | None:
    """A rate in USD per hour as stored (10 decimal places); None stays None (no price)."""
    return None if value is None else pricing.quantize(value, 10)


def cost_sample_rates(quote: pricing.PriceQuote | None, share: Fraction) -> tuple[Fraction | None, Fraction | None]:
    """USD per hour for holding `share` GPUs at `quote`, and at its on-demand price; None when unknown."""
    rate = quote.gpu_rate * share if quote else None
    on_demand = quote.on_demand_gpu_rate * share if quote and quote.on_demand else None
    return rate, on_demand


def cost_sample_new(
    *,
    at: datetime,
    share: Fraction,
    quote: pricing.PriceQuote | None,
    rate: Fraction | None,
    on_demand_rate: Fraction | None,
    idle: bool,
    **holder,
) -> CostSample:
    """An empty sample from `at`, in `at`'s UTC hour; `holder` names who holds the GPUs, and where."""
    return CostSample(
        **holder,
        price_id=quote.price.id if quote else None,
        priced_as=quote.priced_as if quote else "",
        hour=pricing.hour_floor(at),
        start=at,
        end=at,
        gpus=pricing.quantize(share),
        idle=idle,
        usd_per_hour=sample_rate(rate),
        on_demand_usd_per_hour=sample_rate(on_demand_rate),
        gpu_hours=0,
        idle_gpu_hours=0,
        metered_gpu_hours=0,
        busy_gpu_hours=0,
        prompt_tokens=0,
        generation_tokens=0,
    )


def cost_sample_stretch(
    row: CostSample, *, end: datetime, share: Fraction, rate: Fraction | None, on_demand_rate: Fraction | None
) -> None:
    """Stretch a sample to `end` at its constant rate (utilization and tokens are the caller's)."""
    row.end = end
    # Amounts from the row's whole span at its constant rate: exact, no drift from adding up.
    span_hours = pricing.hours_between(row.start, row.end)
    row.gpu_hours = pricing.quantize(share * span_hours)
    row.idle_gpu_hours = row.gpu_hours if row.idle else Decimal(0)
    row.usd = pricing.quantize(rate * span_hours) if rate is not None else None
    row.on_demand_usd = pricing.quantize(on_demand_rate * span_hours) if on_demand_rate is not None else None


def sample_key(*, hour, kind, node_id, node_name, pod_id, deployment_id, price_id, gpus, idle, on_demand_rate) -> tuple:
    """What must stay the same for a sample to be extended: who, where, at which rate, idle or not."""
    return (hour, kind, node_id, node_name, pod_id, deployment_id, price_id, gpus, idle, on_demand_rate)


def sample_row_key(row: CostSample) -> tuple:
    """`sample_key` of a stored sample."""
    return sample_key(
        hour=row.hour,
        kind=row.kind,
        node_id=row.node_id,
        node_name=row.node_name,
        pod_id=row.pod_id,
        deployment_id=row.deployment_id,
        price_id=row.price_id,
        gpus=row.gpus,
        idle=row.idle,
        on_demand_rate=row.on_demand_usd_per_hour,
    )
