"""Reading cost: current hourly cost of deployments and nodes, and accrued cost over a window.

Every selector runs a fixed number of queries whatever the number of rows. Money is Decimal;
None means "no price" (never zero). Windows are integrated exactly over [start, end): samples
that straddle a boundary are prorated (see `CostSample`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Case, DecimalField, F, Max, Min, Q, QuerySet, Sum, When
from django.utils import timezone

from accounts.scope import scope_queryset
from costing import pricing
from costing.models import CostSample, InstancePrice
from fleet.models import Cluster, GpuNode, ModelDeployment, Pod

RATE_PLACES = 6  # current $/hour: catalog prices have up to 6 decimals
UNALLOCATED = "(unallocated)"
NO_DEPLOYMENT = "(no deployment)"
GROUPS = ("deployment", "namespace", "node", "cluster")


# --------------------------------------------------------------------------- the price book


def price_book(instance_types: Iterable[str]) -> pricing.PriceBook:
    """Every catalog row (public and negotiated, all history) for these instance types: one query."""
    types = {t for t in instance_types if t}
    rows = InstancePrice.objects.filter(instance_type__in=types).values_list(
        "id", "instance_type", "region", "capacity_type", "usd_per_hour", "gpu_count", "effective_from", "cluster_id"
    )
    return pricing.PriceBook([pricing.PricePoint(*row) for row in rows] if types else [])


def price_list() -> QuerySet[InstancePrice]:
    """The catalog, newest first within each instance type, for the admin, the API and the page."""
    return InstancePrice.objects.select_related("cluster").order_by(
        "instance_type", "region", "capacity_type", "cluster__name", "-effective_from"
    )


def _ids(objects: Iterable) -> list[int]:
    return [o if isinstance(o, int) else o.pk for o in objects]


# --------------------------------------------------------------------------- current cost


def node_cost_per_hour(nodes: Iterable[GpuNode | int]) -> dict[int, Decimal | None]:
    """The hourly price of each node's whole instance now, idle GPUs included; None when unpriced.

    Spot nodes with no spot price in the catalog are priced at on-demand (an upper bound).
    """
    ids = _ids(nodes)
    if not ids:
        return {}
    rows = list(
        GpuNode.objects.filter(id__in=ids).values_list(
            "id", "instance_type", "region", "capacity_type", "cluster_id", "cluster__region"
        )
    )
    book = price_book(r[1] for r in rows)
    now = timezone.now()
    result: dict[int, Decimal | None] = dict.fromkeys(ids)
    for node_id, itype, region, capacity, cluster_id, cluster_region in rows:
        quote = book.quote(
            instance_type=itype, region=region or cluster_region, capacity_type=capacity, at=now, cluster_id=cluster_id
        )
        result[node_id] = pricing.quantize(quote.price.usd_per_hour, RATE_PLACES) if quote else None
    return result


@dataclass(frozen=True)
class _PricedPod:
    """A running pod's GPUs and the price its node pays now (None: the catalog has none)."""

    deployment_id: int
    gpu_requests: dict
    share: Fraction
    quote: pricing.PriceQuote | None


def _priced_pods(deployment_ids: list[int]) -> list[_PricedPod]:
    """The running GPU-holding pods of these deployments, priced now. Two queries."""
    pods = list(
        Pod.objects.filter(
            deployment_id__in=deployment_ids, gone_at__isnull=True, phase="Running", node__isnull=False
        ).values_list(
            "deployment_id",
            "gpu_requests",
            "node__instance_type",
            "node__region",
            "node__capacity_type",
            "node__gpu_product",
            "node__cluster_id",
            "node__cluster__region",
        )
    )
    book = price_book(p[2] for p in pods)
    now = timezone.now()
    priced = []
    for dep_id, requests, itype, region, capacity, product, cluster_id, cluster_region in pods:
        share = pricing.gpu_share(requests or {}, product)
        if share:
            quote = book.quote(
                instance_type=itype,
                region=region or cluster_region,
                capacity_type=capacity,
                at=now,
                cluster_id=cluster_id,
            )
            priced.append(_PricedPod(dep_id, requests or {}, share, quote))
    return priced


def deployment_cost_per_hour(deployments: Iterable[ModelDeployment | int]) -> dict[int, Decimal | None]:
    """What each deployment costs per hour now: its running pods' GPUs at their nodes' prices.

    0 for a deployment with no running pod; None when any of its GPU-holding pods sits on a
    node the catalog has no price for.
    """
    ids = _ids(deployments)
    if not ids:
        return {}
    totals: dict[int, Fraction | None] = dict.fromkeys(ids, Fraction(0))
    for pod in _priced_pods(ids):
        total = totals[pod.deployment_id]
        if total is not None:
            totals[pod.deployment_id] = None if pod.quote is None else total + pod.quote.gpu_rate * pod.share
    return {dep_id: None if total is None else pricing.quantize(total, RATE_PLACES) for dep_id, total in totals.items()}


def unpriced_nodes(*, cluster: Cluster | None = None) -> list[dict]:
    """Live GPU nodes the catalog has no price for, grouped by (instance type, region)."""
    qs = GpuNode.objects.alive().filter(gpu_count__gt=0)
    if cluster is not None:
        qs = qs.filter(cluster=cluster)
    rows = list(qs.values_list("instance_type", "region", "capacity_type", "cluster_id", "cluster__region"))
    book = price_book(r[0] for r in rows)
    now = timezone.now()
    missing: dict[tuple[str, str], int] = defaultdict(int)
    for itype, region, capacity, cluster_id, cluster_region in rows:
        region = region or cluster_region
        quote = book.quote(instance_type=itype, region=region, capacity_type=capacity, at=now, cluster_id=cluster_id)
        if quote is None:
            missing[(itype or "(no instance type label)", region or "(no region)")] += 1
    return [
        {"instance_type": itype, "region": region, "nodes": count} for (itype, region), count in sorted(missing.items())
    ]


# --------------------------------------------------------------------------- accrued cost over a window


@dataclass
class CostTotals:
    """Accrued cost of one group over a window. Amounts are exact Fractions until shown."""

    key: str
    cluster: str | None = None
    usd: Fraction = Fraction(0)
    priced_gpu_hours: Fraction = Fraction(0)
    unpriced_gpu_hours: Fraction = Fraction(0)
    gpu_hours: Fraction = Fraction(0)
    idle_gpu_hours: Fraction = Fraction(0)
    idle_usd: Fraction = Fraction(0)
    on_demand_usd: Fraction = Fraction(0)  # what the spot-priced part would have cost on-demand
    spot_usd: Fraction = Fraction(0)  # the spot-priced part, with an on-demand price to compare
    metered_gpu_hours: Fraction = Fraction(0)
    busy_gpu_hours: Fraction = Fraction(0)
    prompt_tokens: Fraction = Fraction(0)
    generation_tokens: Fraction = Fraction(0)

    def add(self, sums: dict) -> None:
        for name in _SUMMED:
            value = sums.get(name)
            if value is not None:
                setattr(self, name, getattr(self, name) + pricing.exact(value))

    # Shown values.
    @property
    def usd_decimal(self) -> Decimal:
        return pricing.quantize(self.usd)

    @property
    def spot_savings(self) -> Fraction:
        return self.on_demand_usd - self.spot_usd

    @property
    def tokens_generated(self) -> int:
        return round(self.generation_tokens)

    @property
    def tokens_prompt(self) -> int:
        return round(self.prompt_tokens)

    @property
    def utilization(self) -> float | None:
        """Mean GPU utilization over the GPU-hours where it was measured."""
        return float(self.busy_gpu_hours / self.metered_gpu_hours) if self.metered_gpu_hours else None

    @property
    def usd_per_gpu_hour(self) -> Decimal | None:
        return pricing.quantize(self.usd / self.priced_gpu_hours, RATE_PLACES) if self.priced_gpu_hours else None

    @property
    def usd_per_busy_gpu_hour(self) -> Decimal | None:
        """What each busy GPU-hour really cost: usd / (gpu_hours x utilization)."""
        if not self.priced_gpu_hours or not self.busy_gpu_hours or not self.metered_gpu_hours:
            return None
        utilization = self.busy_gpu_hours / self.metered_gpu_hours
        return pricing.quantize(self.usd / (self.priced_gpu_hours * utilization), RATE_PLACES)

    @property
    def usd_per_million_generated(self) -> Decimal | None:
        return pricing.per_million(self.usd, self.tokens_generated) if self.priced_gpu_hours else None

    @property
    def usd_per_million_prompt(self) -> Decimal | None:
        return pricing.per_million(self.usd, self.tokens_prompt) if self.priced_gpu_hours else None


_SUMMED = (
    "usd",
    "priced_gpu_hours",
    "unpriced_gpu_hours",
    "gpu_hours",
    "idle_gpu_hours",
    "idle_usd",
    "on_demand_usd",
    "spot_usd",
    "metered_gpu_hours",
    "busy_gpu_hours",
    "prompt_tokens",
    "generation_tokens",
)
_MONEY = DecimalField(max_digits=30, decimal_places=8)
# Annotation names must not shadow the fields they sum (Django would then sum a sum).
_AGGREGATES = {
    f"sum_{name}": aggregate
    for name, aggregate in {
        "usd": Sum("usd"),
        "priced_gpu_hours": Sum(Case(When(usd__isnull=False, then=F("gpu_hours")), output_field=_MONEY)),
        "unpriced_gpu_hours": Sum(Case(When(usd__isnull=True, then=F("gpu_hours")), output_field=_MONEY)),
        "gpu_hours": Sum("gpu_hours"),
        "idle_gpu_hours": Sum("idle_gpu_hours"),
        "idle_usd": Sum(Case(When(idle=True, then=F("usd")), output_field=_MONEY)),
        "on_demand_usd": Sum(
            Case(When(priced_as="spot", on_demand_usd__isnull=False, then=F("on_demand_usd")), output_field=_MONEY)
        ),
        "spot_usd": Sum(Case(When(priced_as="spot", on_demand_usd__isnull=False, then=F("usd")), output_field=_MONEY)),
        "metered_gpu_hours": Sum("metered_gpu_hours"),
        "busy_gpu_hours": Sum("busy_gpu_hours"),
        "prompt_tokens": Sum("prompt_tokens"),
        "generation_tokens": Sum("generation_tokens"),
    }.items()
}
_ROW_FIELDS = (
    "start",
    "end",
    "usd",
    "gpu_hours",
    "idle",
    "idle_gpu_hours",
    "priced_as",
    "on_demand_usd",
    "metered_gpu_hours",
    "busy_gpu_hours",
    "prompt_tokens",
    "generation_tokens",
)


def _row_as_totals(row: dict) -> dict:
    """One sample's contribution to the summed fields (mirrors `_AGGREGATES`)."""
    priced = row["usd"] is not None
    spot_compared = row["priced_as"] == "spot" and row["on_demand_usd"] is not None
    return {
        "usd": row["usd"],
        "priced_gpu_hours": row["gpu_hours"] if priced else None,
        "unpriced_gpu_hours": None if priced else row["gpu_hours"],
        "gpu_hours": row["gpu_hours"],
        "idle_gpu_hours": row["idle_gpu_hours"],
        "idle_usd": row["usd"] if row["idle"] else None,
        "on_demand_usd": row["on_demand_usd"] if spot_compared else None,
        "spot_usd": row["usd"] if spot_compared else None,
        "metered_gpu_hours": row["metered_gpu_hours"],
        "busy_gpu_hours": row["busy_gpu_hours"],
        "prompt_tokens": row["prompt_tokens"],
        "generation_tokens": row["generation_tokens"],
    }


def _window(qs: QuerySet[CostSample], start: datetime, end: datetime, fields: tuple[str, ...]) -> dict[tuple, dict]:
    """Summed fields per group of `fields` over exactly [start, end). Two queries.

    Samples wholly inside are summed in the database; the few that straddle `start` or `end`
    (at most the samples of two hour buckets) are prorated here.
    """
    totals: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(_SUMMED, Fraction(0)))
    inside = qs.filter(start__gte=start, end__lte=end).values(*fields).annotate(**_AGGREGATES).order_by()
    for row in inside:
        bucket = totals[tuple(row[f] for f in fields)]
        for name in _SUMMED:
            value = row[f"sum_{name}"]
            if value is not None:
                bucket[name] += pricing.exact(value)
    straddling = qs.filter(start__lt=end, end__gt=start).filter(Q(start__lt=start) | Q(end__gt=end))
    for row in straddling.values(*fields, *_ROW_FIELDS).order_by():
        share = pricing.prorate(1, row["start"], row["end"], start, end)
        bucket = totals[tuple(row[f] for f in fields)]
        for name, value in _row_as_totals(row).items():
            if value is not None:
                bucket[name] += pricing.exact(value) * share
    return totals


def cost_samples(cluster: Cluster | None = None) -> QuerySet[CostSample]:
    """Every accrued sample, or one cluster's."""
    qs = CostSample.objects.all()
    return qs.filter(cluster=cluster) if cluster is not None else qs


def group_key(group_by: str, values: dict) -> tuple[str, str | None]:
    """(key, cluster) for one group: `namespace/name` for deployments, the name otherwise."""
    if group_by == "cluster":
        return values["cluster_name"], values["cluster_name"]
    if group_by == "node":
        return values["node_name"], values["cluster_name"]
    unallocated = values["kind"] == CostSample.Kind.UNALLOCATED
    if group_by == "namespace":
        return (UNALLOCATED if unallocated else values["namespace"]), None
    if unallocated:
        return UNALLOCATED, values["cluster_name"]
    return f"{values['namespace']}/{values['deployment_name'] or NO_DEPLOYMENT}", values["cluster_name"]


GROUP_FIELDS = {
    "deployment": ("cluster_name", "kind", "namespace", "deployment_name"),
    "namespace": ("kind", "namespace"),
    "node": ("cluster_name", "node_name"),
    "cluster": ("cluster_name",),
}


def cost_by_group(
    *, group_by: str, start: datetime, end: datetime, cluster: Cluster | None = None, token=None
) -> list[CostTotals]:
    """Accrued cost per deployment, namespace (team), node or cluster over exactly [start, end).

    Deployments and nodes are told apart by cluster (`CostTotals.cluster`); namespaces are
    summed across clusters (a team is a team). Unallocated GPUs of nodes are one group,
    "(unallocated)". Ordered by cost, most expensive first. A scoped API `token` sums only the samples
    of its clusters and namespaces: a team's token sees its own share of a node or a cluster, never
    the others'.
    """
    if group_by not in GROUP_FIELDS:
        raise ValueError(f"unknown group {group_by!r}")
    fields = GROUP_FIELDS[group_by]
    merged: dict[tuple[str, str | None], CostTotals] = {}
    for values, sums in _window(scope_queryset(cost_samples(cluster), token), start, end, fields).items():
        key, cluster_name = group_key(group_by, dict(zip(fields, values, strict=True)))
        totals = merged.setdefault((key, cluster_name), CostTotals(key=key, cluster=cluster_name))
        totals.add(sums)
    return sorted(merged.values(), key=lambda t: (-t.usd, t.key, t.cluster or ""))


def cost_total(*, start: datetime, end: datetime, cluster: Cluster | None = None) -> CostTotals:
    totals = CostTotals(key="total")
    for sums in _window(cost_samples(cluster), start, end, ()).values():
        totals.add(sums)
    return totals


def cost_by_capacity_type(*, start: datetime, end: datetime, cluster: Cluster | None = None) -> list[CostTotals]:
    """Spend per node capacity type (on-demand, spot, reserved), with what spot saved."""
    rows = []
    for values, sums in _window(cost_samples(cluster), start, end, ("capacity_type",)).items():
        totals = CostTotals(key=values[0] or "unknown")
        totals.add(sums)
        rows.append(totals)
    return sorted(rows, key=lambda t: t.key)


def idle_spenders(
    *, start: datetime, end: datetime, limit: int = 10, cluster: Cluster | None = None
) -> list[CostTotals]:
    """Who paid most for idle GPUs: deployments that served nothing or ran under the utilization
    threshold, and each node pool's unallocated GPUs (`key` "(unallocated) nodepool/<pool>"; a node
    in no pool is listed by its name), live and backfilled hours in one row."""
    fields = ("cluster_name", "kind", "namespace", "deployment_name", "node_name")
    qs = cost_samples(cluster).filter(idle=True)
    merged: dict[tuple, CostTotals] = {}
    for values, sums in _window(qs, start, end, fields).items():
        v = dict(zip(fields, values, strict=True))
        if v["kind"] == CostSample.Kind.UNALLOCATED:
            key = f"{UNALLOCATED} {v['node_name']}"
        else:
            key = f"{v['namespace']}/{v['deployment_name'] or NO_DEPLOYMENT}"
        totals = merged.setdefault((key, v["cluster_name"]), CostTotals(key=key, cluster=v["cluster_name"]))
        totals.add(sums)
    ranked = sorted(merged.values(), key=lambda t: (-t.idle_usd, -t.idle_gpu_hours, t.key))
    return [t for t in ranked if t.idle_gpu_hours > 0][:limit]


def accrued_span(*, cluster: Cluster | None = None) -> tuple[datetime | None, datetime | None]:
    """First and last moment any cost was accrued (to say how fresh the numbers are)."""
    agg = cost_samples(cluster).aggregate(first=Min("start"), last=Max("end"))
    return agg["first"], agg["last"]


# --------------------------------------------------------------------------- per token


def deployment_cost_per_million_tokens(deployment: ModelDeployment, *, hours: int = 24) -> dict | None:
    """USD per 1M generated (and per 1M prompt) tokens over the last `hours` of accrued samples.

    {"usd_per_million_generated": Decimal | None, "usd_per_million_prompt": Decimal | None,
    "window_hours": Decimal, "usd": Decimal, "tokens_generated": int, "tokens_prompt": int};
    each per-million figure is None when no such tokens were counted (an embedding model
    generates none) or when the deployment's nodes have no price. None when nothing accrued.
    """
    end = timezone.now()
    start = end - timedelta(hours=hours)
    qs = CostSample.objects.filter(deployment_id=deployment.pk)
    totals = CostTotals(key=str(deployment))
    for sums in _window(qs, start, end, ()).values():
        totals.add(sums)
    if not totals.gpu_hours:
        return None
    span = qs.filter(start__lt=end, end__gt=start).aggregate(first=Min("start"), last=Max("end"))
    first, last = max(span["first"], start), min(span["last"], end)
    return {
        "usd_per_million_generated": totals.usd_per_million_generated,
        "usd_per_million_prompt": totals.usd_per_million_prompt,
        "window_hours": pricing.quantize(pricing.hours_between(first, last), 2),
        "usd": totals.usd_decimal if totals.priced_gpu_hours else None,
        "tokens_generated": totals.tokens_generated,
        "tokens_prompt": totals.tokens_prompt,
    }


# --------------------------------------------------------------------------- next to the scale controls


@dataclass(frozen=True)
class DeploymentCostNow:
    """What a deployment costs now, as the scale panel shows it. None: no price (never zero)."""

    usd_per_hour: Decimal | None
    replicas: int  # running pods holding GPUs
    gpus: Decimal  # GPUs they hold, a MIG slice at its share of a GPU
    usd_per_gpu_hour: Decimal | None  # one whole GPU of its nodes
    slice_profile: str  # "3g.40gb" when it runs on MIG slices, else ""
    usd_per_slice_hour: Decimal | None  # one of those slices
    usd_per_replica_hour: Decimal | None
    per_million: dict | None  # `deployment_cost_per_million_tokens`


def deployment_cost_now(deployment: ModelDeployment) -> DeploymentCostNow:
    """$/hour of a deployment's running pods, $/GPU-hour (and $/slice-hour) of the GPUs they hold,
    $/hour per replica, and what 1M tokens cost over the last day. Five queries."""
    pods = _priced_pods([deployment.pk])
    priced = all(p.quote is not None for p in pods)
    total = sum((p.quote.gpu_rate * p.share for p in pods), Fraction(0)) if priced else None
    gpus = sum((p.share for p in pods), Fraction(0))
    profile = (
        deployment.gpu_resource.removeprefix(pricing.MIG_RESOURCE_PREFIX)
        if (deployment.gpu_resource.startswith(pricing.MIG_RESOURCE_PREFIX))
        else ""
    )
    slices = sum(p.gpu_requests.get(deployment.gpu_resource, 0) for p in pods) if profile else 0

    def rate(value: Fraction | None) -> Decimal | None:
        return None if value is None else pricing.quantize(value, RATE_PLACES)

    return DeploymentCostNow(
        usd_per_hour=rate(total),
        replicas=len(pods),
        gpus=pricing.quantize(gpus, 4),
        usd_per_gpu_hour=rate(total / gpus) if total is not None and gpus else None,
        slice_profile=profile,
        usd_per_slice_hour=rate(total / slices) if total is not None and slices else None,
        usd_per_replica_hour=rate(total / len(pods)) if total is not None and pods else None,
        per_million=deployment_cost_per_million_tokens(deployment),
    )
