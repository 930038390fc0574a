"""Spend over time for the costs page's stacked chart: USD per hour or day bucket, by namespace or
deployment, from the accrued samples (`costing.selectors` reads the same samples as window totals)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Count, Sum
from django.db.models.functions import TruncDay, TruncHour

from costing import pricing
from costing.selectors import GROUP_FIELDS, cost_samples, group_key
from fleet.models import Cluster


@dataclass(frozen=True)
class SpendSeries:
    """Spend per time bucket, one series per group, for a stacked chart.

    A value is None where nothing is known: no cost was accrued in that bucket at all (before
    accrual began, or while ScaleDeck was down), or the group's GPUs there had no price. A chart
    draws those as gaps, never as $0. A group with nothing in a bucket where others accrued cost
    held no GPUs then: that is a real $0.
    """

    buckets: list[datetime]
    series: dict[str, list[Decimal | None]]  # group key -> usd per bucket
    bucket: str  # "hour" | "day"


def spend_over_time(
    *,
    group_by: str,
    start: datetime,
    end: datetime,
    bucket: str = "hour",
    top: int = 8,
    cluster: Cluster | None = None,
) -> SpendSeries:
    """USD per hour or day bucket, stacked by namespace or deployment; the smaller groups are
    summed as "other". Buckets are whole hours/days (UTC): the chart shows spend, not a window
    integral, so boundary samples are not prorated here. One query."""
    if group_by not in ("namespace", "deployment"):
        raise ValueError(f"unknown group {group_by!r}")
    trunc = TruncDay("hour", tzinfo=UTC) if bucket == "day" else TruncHour("hour", tzinfo=UTC)
    fields = GROUP_FIELDS[group_by]
    rows = list(
        cost_samples(cluster)
        .filter(hour__gte=_floor(start, bucket), hour__lt=end)
        .annotate(bucket=trunc)
        .values("bucket", *fields)
        .annotate(sum_usd=Sum("usd"), priced=Count("usd"))
        .order_by()
    )
    # The same deployment name in two clusters is two deployments: say which.
    many_clusters = group_by == "deployment" and len({r["cluster_name"] for r in rows}) > 1
    accrued = {row["bucket"] for row in rows}
    per_group: dict[str, dict[datetime, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    unpriced: dict[str, set[datetime]] = defaultdict(set)  # buckets where a group's GPUs had no price at all
    for row in rows:
        key, cluster_name = group_key(group_by, row)
        if many_clusters:
            key = f"{key} ({cluster_name})"
        if row["priced"]:
            per_group[key][row["bucket"]] += pricing.exact(row["sum_usd"])
        else:
            unpriced[key].add(row["bucket"])
    buckets = _buckets(start, end, bucket)

    def spend(keys: list[str], at: datetime) -> Decimal | None:
        if at not in accrued:
            return None  # nothing accrued then: unknown, not free
        known = [per_group[k][at] for k in keys if at in per_group[k]]
        if not known and any(at in unpriced[k] for k in keys):
            return None
        return pricing.quantize(sum(known, Fraction(0)), 4)

    ranked = sorted(set(per_group) | set(unpriced), key=lambda k: (-sum(per_group[k].values()), k))
    keep, rest = ranked[:top], ranked[top:]
    series = {k: [spend([k], b) for b in buckets] for k in keep}
    if rest:
        series["other"] = [spend(rest, b) for b in buckets]
    return SpendSeries(buckets=buckets, series=series, bucket=bucket)


def _floor(moment: datetime, bucket: str) -> datetime:
    floored = pricing.hour_floor(moment)
    return floored.replace(hour=0) if bucket == "day" else floored


def _buckets(start: datetime, end: datetime, bucket: str) -> list[datetime]:
    step = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
    out, at = [], _floor(start, bucket)
    while at < end:
        out.append(at)
        at += step
    return out
