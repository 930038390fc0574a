from __future__ import annotations

import django_filters
from django.core.paginator import Paginator
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.htmx import filter_errors, render_filtered, wants_fragment
from fleet import selectors
from fleet.filters import DeploymentFilterSet

REFRESH_SECONDS = 10
# The tiles cover every deployment; the table shows them a page at a time, so a poll of a
# 500-deployment fleet renders 100 rows, not 500.
DEPLOYMENTS_PER_PAGE = 100


class OverviewFilterSet(DeploymentFilterSet):
    """The page's Name box finds a part of the name in any case (`llama` finds Llama-3-8B); the API's
    `?name=` stays an exact match, which scripts rely on."""

    name = django_filters.CharFilter(lookup_expr="icontains")


@require_GET
def overview(request):
    """The fleet at a glance: tiles, every deployment, each cluster's freshness.

    Polled by HTMX every 10 s while the tab is visible: the poll gets `fleet/_overview_live.html`
    (the table, plus the tiles and freshness bar as out-of-band swaps).
    """
    filterset = OverviewFilterSet(request.GET, queryset=selectors.deployment_queryset(include_gone=True))
    errors = filter_errors(filterset)
    deployments = [] if errors else list(filterset.qs)
    clusters = list(selectors.cluster_queryset())
    cluster_filter = filterset.form.cleaned_data.get("cluster") if not errors else None
    shown_clusters = [c for c in clusters if c.name in cluster_filter] if cluster_filter else clusters
    rows = selectors.deployment_rows(deployments)
    # Narrowed within the clusters shown: the GPU tile then counts only these deployments' GPUs.
    narrowed = any(request.GET.get(k) for k in ("namespace", "name", "model"))
    page = Paginator(rows, DEPLOYMENTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "filter_errors": errors,
        "rows": page.object_list,
        "deployments": deployments,  # priced at once by costing's `deployments_cost_now` tag
        "page": page,
        "query": query.urlencode(),
        "totals": selectors.fleet_totals(rows, shown_clusters, filtered=narrowed),
        "metrics_problems": selectors.unavailable_reasons(rows),
        "clusters": shown_clusters,
        "all_cluster_names": [c.name for c in clusters],
        "refreshed_at": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
        "filtered": narrowed or bool(request.GET.get("cluster")),
        "narrowed": narrowed,
    }
    template = "fleet/_overview_live.html" if wants_fragment(request) else "fleet/overview.html"
    return render_filtered(request, template, context)
