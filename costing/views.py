"""The costs page: spend over time, per-GPU cost against utilization, idle waste, spot savings.

One view renders the whole page, or only its body for HTMX, or any of its tables as CSV
(`?format=csv&table=...`). Everyone logged in can read costs (login is enforced by middleware).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.charts.costs import spend_figure, spend_unit
from core.htmx import wants_fragment
from costing import pricing, selectors, services, spend
from fleet.models import ModelDeployment

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_RANGE = "24h"
PAGE_GROUPS = ("namespace", "deployment")
DEFAULT_GROUP = "namespace"
PLACES = 4


@dataclass
class Table:
    """A table as the page shows it and as CSV downloads it: headers carry the units."""

    name: str
    title: str
    headers: list[str]
    kinds: list[str]  # per column: text | usd | usd_opt | rate | num | int | pct
    rows: list[list]
    empty: str = "No cost accrued in this range yet."

    @property
    def html_rows(self) -> list[list[tuple[str, object]]]:
        return [list(zip(self.kinds, row, strict=True)) for row in self.rows]


def _num(value, places: int = PLACES) -> Decimal | None:
    return None if value is None else pricing.quantize(value, places)


def _percent(value: float | None) -> Decimal | None:
    return None if value is None else pricing.quantize(pricing.exact(Decimal(str(value))) * 100, 1)


def _tables(*, group: str, start, end) -> dict[str, Table]:
    by_group = selectors.cost_by_group(group_by=group, start=start, end=end)
    by_deployment = (
        by_group if group == "deployment" else selectors.cost_by_group(group_by="deployment", start=start, end=end)
    )
    idle = selectors.idle_spenders(start=start, end=end, limit=10)
    capacity = selectors.cost_by_capacity_type(start=start, end=end)
    group_label = "Namespace" if group == "namespace" else "Deployment"

    with_cluster = group != "namespace"  # namespaces (teams) are summed across clusters
    spend = Table(
        name="spend",
        title=f"Spend by {group}",
        headers=[
            group_label,
            *(["Cluster"] if with_cluster else []),
            "Spend (USD)",
            "GPU-hours",
            "Idle GPU-hours",
            "Generated tokens",
            "USD per 1M generated tokens",
            "Prompt tokens",
            "USD per 1M prompt tokens",
            "Unpriced GPU-hours",
        ],
        kinds=["text", *(["text"] if with_cluster else []), "usd", "num", "num", "int", "rate", "int", "rate", "num"],
        rows=[
            [
                t.key,
                *([t.cluster or ""] if with_cluster else []),
                _num(t.usd) if t.priced_gpu_hours else None,
                _num(t.gpu_hours),
                _num(t.idle_gpu_hours),
                t.tokens_generated,
                t.usd_per_million_generated,
                t.tokens_prompt,
                t.usd_per_million_prompt,
                _num(t.unpriced_gpu_hours),
            ]
            for t in by_group
        ],
    )
    gpu = Table(
        name="gpu",
        title="What a GPU-hour costs, and what a busy one really costs",
        headers=[
            "Deployment",
            "Cluster",
            "GPU-hours",
            "Spend (USD)",
            "USD per GPU-hour",
            "GPU utilization (%)",
            "USD per busy GPU-hour",
        ],
        kinds=["text", "text", "num", "usd", "rate", "pct", "rate"],
        rows=[
            [
                t.key,
                t.cluster or "",
                _num(t.gpu_hours),
                _num(t.usd) if t.priced_gpu_hours else None,
                t.usd_per_gpu_hour,
                _percent(t.utilization),
                t.usd_per_busy_gpu_hour,
            ]
            for t in by_deployment
            if t.key != selectors.UNALLOCATED
        ],
    )
    idle_table = Table(
        name="idle",
        title="Top idle spenders",
        headers=["Who", "Cluster", "Idle GPU-hours", "Idle spend (USD)"],
        kinds=["text", "text", "num", "usd"],
        rows=[[t.key, t.cluster or "", _num(t.idle_gpu_hours), _num(t.idle_usd)] for t in idle],
        empty="No idle GPU-hours in this range.",
    )
    capacity_table = Table(
        name="capacity",
        title="Spot vs on-demand",
        headers=["Capacity type", "Spend (USD)", "GPU-hours", "Same hours on-demand (USD)", "Spot savings (USD)"],
        kinds=["text", "usd", "num", "usd_opt", "usd_opt"],
        rows=[
            [
                t.key,
                _num(t.usd) if t.priced_gpu_hours else None,
                _num(t.gpu_hours),
                _num(t.on_demand_usd) if t.key == "spot" else None,
                _num(t.spot_savings) if t.key == "spot" else None,
            ]
            for t in capacity
        ],
    )
    return {t.name: t for t in (spend, gpu, idle_table, capacity_table)}


def _bucket(range_key: str) -> str:
    return "day" if range_key == "30d" else "hour"


def _chart(*, group: str, start, end, range_key: str) -> dict:
    """Spend per hour (per day for 30 days) as stacked bars; whether any bucket is a gap."""
    series = spend.spend_over_time(group_by=group, start=start, end=end, bucket=_bucket(range_key))
    gaps = any(v is None for values in series.series.values() for v in values)
    figure = spend_figure(series.buckets, series.series, bucket=series.bucket)
    return {"figure": figure, "empty": not series.series, "gaps": gaps}


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # names come from the cluster: never let a spreadsheet run them
    return str(value)


def _csv_response(table: Table, *, range_key: str) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="scaledeck-{table.name}-{range_key}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return response


@require_GET
def costs(request: HttpRequest) -> HttpResponse:
    notices = []
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        notices.append(f"Unknown range {range_key!r}: showing the last {DEFAULT_RANGE}. Use 24h, 7d or 30d.")
        range_key = DEFAULT_RANGE
    group = request.GET.get("group", DEFAULT_GROUP)
    if group not in PAGE_GROUPS:
        notices.append(f"Unknown grouping {group!r}: grouping by {DEFAULT_GROUP}. Use namespace or deployment.")
        group = DEFAULT_GROUP
    end = timezone.now()
    start = end - RANGES[range_key]
    tables = _tables(group=group, start=start, end=end)

    if request.GET.get("format") == "csv":
        name = request.GET.get("table", "spend")
        if name not in tables:
            return HttpResponseBadRequest(
                f"Unknown table {name!r}: use one of {', '.join(tables)}.", content_type="text/plain"
            )
        return _csv_response(tables[name], range_key=range_key)

    total = selectors.cost_total(start=start, end=end)
    first, last = selectors.accrued_span()
    context = {
        "notices": notices,
        "range_key": range_key,
        "ranges": list(RANGES),
        "group": group,
        "groups": PAGE_GROUPS,
        "start": start,
        "end": end,
        "tables": tables,
        "chart": _chart(group=group, start=start, end=end, range_key=range_key),
        "chart_unit": spend_unit(_bucket(range_key)),
        "idle_threshold": services.idle_threshold(),
        "total_usd": _num(total.usd) if total.priced_gpu_hours else None,
        "total_gpu_hours": _num(total.gpu_hours),
        "idle_gpu_hours": _num(total.idle_gpu_hours),
        "idle_usd": _num(total.idle_usd),
        "spot_savings": _num(total.spot_savings),
        "unpriced_gpu_hours": _num(total.unpriced_gpu_hours),
        "unpriced_nodes": selectors.unpriced_nodes(),
        "accrued_until": last,
        "accrued_since": first,
    }
    template = "costing/_costs_body.html" if wants_fragment(request) else "costing/costs.html"
    return render(request, template, context)


@require_GET
def deployment_cost_per_million(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Fragment: what 1M tokens of one deployment cost over the last 24 h, for the deployment page's
    Cost tile. Asked once the charts are in: summing a day of samples is the slowest part of that
    box, and the charts should not wait for it."""
    deployment = get_object_or_404(ModelDeployment, id=deployment_id)
    per_million = selectors.deployment_cost_per_million_tokens(deployment)
    return render(request, "costing/_cost_per_million.html", {"cost_per_million": per_million})
