"""Cost math: pure, no ORM, no clock. Decimal in and out, exact fractions in between.

A MIG slice costs a share of its GPU (1/7 for a 1g slice of an A100 or H100), so rates are
carried as `Fraction`s and rounded once, at the edge, to `MONEY_PLACES` decimals: adding up
thousands of samples then stays right to the cent.

Rules:
- per-GPU price = instance price / GPUs in the instance (from the catalog row);
- a pod's hourly cost = its GPU requests (whole GPUs + MIG slices x slice fraction) x per-GPU price;
- cost over an interval = hourly x hours;
- a price is in effect from midnight UTC of its `effective_from` date until the next row's;
- a cluster's negotiated row, once in effect, wins over the public price;
- a spot or reserved node with no price for its capacity type is priced at on-demand (an
  upper bound, flagged by `PriceQuote.priced_as`); a node with no price at all has none:
  never zero.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

from fleet.mig import slice_fraction

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
ON_DEMAND = "on-demand"
SPOT = "spot"
RESERVED = "reserved"

MONEY_PLACES = 8  # stored amounts; shown with fewer
SECONDS_PER_HOUR = 3600
HOUR = timedelta(hours=1)

Number = Decimal | Fraction | int | str


def exact(value: Number) -> Fraction:
    """A Decimal, int, str or Fraction as an exact Fraction (floats refused: money is never a float)."""
    if isinstance(value, float):
        raise TypeError("money is never a float: pass a Decimal or a string")
    if isinstance(value, Fraction):
        return value
    return Fraction(Decimal(value) if isinstance(value, str) else value)


def quantize(value: Number, places: int = MONEY_PLACES) -> Decimal:
    """Round half-even to `places` decimals, computed from the exact value."""
    frac = exact(value)
    with localcontext() as ctx:
        ctx.prec = 60  # one division, then one rounding: exact for any price times any span
        result = Decimal(frac.numerator) / Decimal(frac.denominator)
        return result.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def usd_per_gpu_hour(instance_usd_per_hour: Number, gpu_count: int) -> Decimal:
    """Per-GPU price of an instance, rounded to MONEY_PLACES."""
    return quantize(per_gpu_rate(instance_usd_per_hour, gpu_count))


def per_gpu_rate(instance_usd_per_hour: Number, gpu_count: int) -> Fraction:
    if gpu_count <= 0:
        raise ValueError("an instance price needs a positive GPU count")
    return exact(instance_usd_per_hour) / gpu_count


def gpu_share(gpu_requests: Mapping[str, int], gpu_product: str) -> Fraction:
    """How many GPUs a pod's requests hold: whole GPUs plus each MIG slice's share of a GPU.

    `{"nvidia.com/gpu": 2}` -> 2; `{"nvidia.com/mig-3g.40gb": 1}` on an A100 -> 3/7.
    Requests for other resources are ignored.
    """
    share = Fraction(0)
    for resource, count in gpu_requests.items():
        if not count or count < 0:
            continue
        if resource == GPU_RESOURCE:
            share += count
        elif resource.startswith(MIG_RESOURCE_PREFIX):
            profile = resource.removeprefix(MIG_RESOURCE_PREFIX)
            try:
                share += count * slice_fraction(profile, gpu_product)
            except ValueError:
                continue  # not a MIG profile name: not a GPU request we can price
    return share


def hourly_rate(instance_usd_per_hour: Number, instance_gpu_count: int, share: Fraction) -> Fraction:
    """USD per hour for holding `share` GPUs of an instance."""
    return per_gpu_rate(instance_usd_per_hour, instance_gpu_count) * share


def pod_usd_per_hour(
    *, instance_usd_per_hour: Number, instance_gpu_count: int, gpu_requests: Mapping[str, int], gpu_product: str
) -> Decimal:
    """A pod's hourly cost on a node priced at `instance_usd_per_hour`."""
    return quantize(hourly_rate(instance_usd_per_hour, instance_gpu_count, gpu_share(gpu_requests, gpu_product)))


def seconds_between(start: datetime, end: datetime) -> Fraction:
    delta = end - start
    return Fraction(delta.days * 86400 + delta.seconds) + Fraction(delta.microseconds, 1_000_000)


def cost_over(rate_usd_per_hour: Number, start: datetime, end: datetime) -> Fraction:
    """Cost of a constant hourly rate over [start, end)."""
    if end <= start:
        return Fraction(0)
    return exact(rate_usd_per_hour) * seconds_between(start, end) / SECONDS_PER_HOUR


def hours_between(start: datetime, end: datetime) -> Fraction:
    return seconds_between(start, end) / SECONDS_PER_HOUR if end > start else Fraction(0)


def spot_savings(on_demand_usd_per_hour: Number | None, spot_usd_per_hour: Number | None) -> Decimal | None:
    """What spot saves per hour against on-demand for the same instance type and region."""
    if on_demand_usd_per_hour is None or spot_usd_per_hour is None:
        return None
    return quantize(exact(on_demand_usd_per_hour) - exact(spot_usd_per_hour))


def prorate(amount: Number, row_start: datetime, row_end: datetime, start: datetime, end: datetime) -> Fraction:
    """The part of `amount` (spread evenly over [row_start, row_end)) that falls in [start, end)."""
    lo, hi = max(row_start, start), min(row_end, end)
    if hi <= lo or row_end <= row_start:
        return Fraction(0)
    return exact(amount) * seconds_between(lo, hi) / seconds_between(row_start, row_end)


def hour_floor(moment: datetime) -> datetime:
    """Start of the UTC hour holding `moment`."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def effective_at(day: date) -> datetime:
    """A price dated `day` is in effect from midnight UTC that day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def split_interval(start: datetime, end: datetime, cuts: Iterable[datetime] = ()) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at every UTC hour boundary and at every cut strictly inside it."""
    if end <= start:
        return []
    points = {start, end}
    boundary = hour_floor(start) + HOUR
    while boundary < end:
        points.add(boundary)
        boundary += HOUR
    points.update(c for c in cuts if start < c < end)
    ordered = sorted(points)
    return list(zip(ordered, ordered[1:], strict=False))


def is_idle(
    *,
    utilization: float | None,
    prompt_tokens_per_second: float | None,
    generation_tokens_per_second: float | None,
    threshold: float,
) -> bool:
    """Idle: it served no tokens at all, or its GPUs were busy less than `threshold` (0-1).

    Unknown metrics never make anything idle: a missing Prometheus is not evidence of waste.
    """
    served_nothing = (
        prompt_tokens_per_second is not None
        and generation_tokens_per_second is not None
        and prompt_tokens_per_second <= 0
        and generation_tokens_per_second <= 0
    )
    if served_nothing:
        return True
    return utilization is not None and utilization < threshold


def per_million(usd: Number | None, tokens: int | None) -> Decimal | None:
    """USD per 1M tokens; None when no tokens (an embedding model generates none)."""
    if usd is None or not tokens or tokens <= 0:
        return None
    return quantize(exact(usd) * 1_000_000 / tokens, 4)


# --------------------------------------------------------------------------- the price book


@dataclass(frozen=True)
class PricePoint:
    """One catalog row, as plain values."""

    id: int | None
    instance_type: str
    region: str
    capacity_type: str
    usd_per_hour: Decimal
    gpu_count: int
    effective_from: date
    cluster_id: int | None = None

    @property
    def starts(self) -> datetime:
        return effective_at(self.effective_from)

    @property
    def gpu_rate(self) -> Fraction:
        return per_gpu_rate(self.usd_per_hour, self.gpu_count)


@dataclass(frozen=True)
class PriceQuote:
    """The price a node pays at one moment, and the on-demand price it is compared with."""

    price: PricePoint
    priced_as: str  # capacity type of `price`: "on-demand" for a spot node with no spot price
    on_demand: PricePoint | None

    @property
    def gpu_rate(self) -> Fraction:
        return self.price.gpu_rate

    @property
    def on_demand_gpu_rate(self) -> Fraction | None:
        return self.on_demand.gpu_rate if self.on_demand else None


@dataclass
class PriceBook:
    """Catalog rows indexed for lookups at any moment. Build it from one query's rows."""

    points: Sequence[PricePoint]
    _index: dict[tuple, list[PricePoint]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[tuple, list[PricePoint]] = defaultdict(list)
        for p in self.points:
            index[(p.instance_type, p.region, p.capacity_type, p.cluster_id)].append(p)
        for rows in index.values():
            rows.sort(key=lambda p: p.effective_from)
        self._index = dict(index)

    def _in_effect(self, key: tuple, at: datetime) -> PricePoint | None:
        rows = self._index.get(key)
        if not rows:
            return None
        starts = [p.starts for p in rows]
        i = bisect.bisect_right(starts, at)
        return rows[i - 1] if i else None

    def lookup(
        self, *, instance_type: str, region: str, capacity_type: str, at: datetime, cluster_id: int | None = None
    ) -> PricePoint | None:
        """The row in effect at `at`: the cluster's negotiated one if any is in effect, else the public one."""
        if cluster_id is not None:
            negotiated = self._in_effect((instance_type, region, capacity_type, cluster_id), at)
            if negotiated is not None:
                return negotiated
        return self._in_effect((instance_type, region, capacity_type, None), at)

    def quote(
        self, *, instance_type: str, region: str, capacity_type: str, at: datetime, cluster_id: int | None = None
    ) -> PriceQuote | None:
        """What a node of this kind pays at `at`; None when the catalog has no price for it."""
        if not instance_type:
            return None
        kwargs = {"instance_type": instance_type, "region": region, "at": at, "cluster_id": cluster_id}
        on_demand = self.lookup(capacity_type=ON_DEMAND, **kwargs)
        own = self.lookup(capacity_type=capacity_type or ON_DEMAND, **kwargs)
        if own is not None:
            return PriceQuote(price=own, priced_as=own.capacity_type, on_demand=on_demand)
        if on_demand is not None:
            return PriceQuote(price=on_demand, priced_as=ON_DEMAND, on_demand=on_demand)
        return None

    def changes_between(
        self, *, instance_type: str, region: str, start: datetime, end: datetime, cluster_id: int | None = None
    ) -> set[datetime]:
        """Moments strictly inside (start, end) at which any price of this instance type changes."""
        cuts = set()
        for (itype, reg, _cap, cid), rows in self._index.items():
            if itype != instance_type or reg != region or cid not in (None, cluster_id):
                continue
            cuts.update(p.starts for p in rows if start < p.starts < end)
        return cuts
