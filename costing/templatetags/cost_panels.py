"""Cost panels other apps' pages include, so cost shows where a decision is taken (the scale controls)
without those pages' views knowing how cost is computed."""

from __future__ import annotations

from decimal import Decimal

from django import template

from costing import selectors

register = template.Library()

HOURS_PER_DAY = 24


@register.inclusion_tag("costing/_deployment_cost.html")
def deployment_cost(deployment) -> dict:
    """What the deployment costs now: $/hour, $/GPU-hour (or $/slice-hour), per replica, per 1M tokens."""
    return {"cost": selectors.deployment_cost_now(deployment), "deployment": deployment}


@register.inclusion_tag("costing/_scale_change_cost.html")
def scale_change_cost(preview) -> dict:
    """What a requested scale change would cost, from its dry run (`scaling.services.DryRunPreview`)."""
    before = getattr(preview, "cost_per_hour_usd_before", None)
    after = getattr(preview, "cost_per_hour_usd_after", None)
    change = None if before is None or after is None else Decimal(after) - Decimal(before)
    return {
        "preview": preview,
        "known": change is not None,
        "sign": "−" if change is not None and change < 0 else "+",
        "change_per_hour": None if change is None else abs(change),
        "change_per_day": None if change is None else abs(change) * HOURS_PER_DAY,
    }
