"""The deployment page's scaling timeline (an HTMX fragment, loaded after the page)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.errors import ApplicationError
from fleet.models import EventKind, ModelDeployment
from scaling.timeline import deployment_timeline, timeline_range, timeline_row

SHOWN = 100  # the latest rows of the range; the API pages through all of them


@require_GET
def deployment_timeline_fragment(request, deployment_id: int):
    """The latest SHOWN rows of the range (default: the last 24 hours), oldest first."""
    deployment = get_object_or_404(ModelDeployment, id=deployment_id)
    error = ""
    try:
        start, end = timeline_range(start=request.GET.get("start"), end=request.GET.get("end"), now=timezone.now())
    except ApplicationError as exc:
        error = exc.message
        start, end = timeline_range(start=None, end=None, now=timezone.now())
    # Newest first, one row more than shown (to know there are more), then back to time order:
    # no COUNT and no deep OFFSET, whatever the number of stored events.
    latest = list(deployment_timeline(deployment=deployment, start=start, end=end).reverse()[: SHOWN + 1])
    labels = dict(EventKind.choices)
    shown = [{**timeline_row(row), "label": labels.get(row[1], row[1])} for row in reversed(latest[:SHOWN])]
    return render(
        request,
        "scaling/_timeline.html",
        {
            "deployment": deployment,
            "rows": shown,
            "more": len(latest) > SHOWN,
            "start": start,
            "end": end,
            "error": error,
        },
    )
