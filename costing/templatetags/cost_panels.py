"""Cost panels and cost columns other apps' pages include, so cost shows where a decision is taken
(the scale controls, the overview, the nodes page) without those pages' views knowing how cost is
computed: fleet's pages show costing's figures through these tags, and fleet imports no costing.

A page's list is priced at once (`deployments_cost_now`, `nodes_cost_now`: one set of queries for
all its rows), then each row reads its figure with `|cost_of:row`; never one query per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CostsNow:
    """$/hour now of each row of a list (by id; None where its nodes have no price), and their sum."""

    per_id: Mapping[int, Decimal | None]

    @property
    def total(self) -> Decimal | None:
        """The sum of the priced rows; None when no row is priced (unknown, never $0)."""
        known = [c for c in self.per_id.values() if c is not None]
        return sum(known, Decimal(0)) if known else None

    @property
    def unknown(self) -> int:
        """How many rows have no price."""
        return sum(1 for c in self.per_id.values() if c is None)


@register.simple_tag
def deployments_cost_now(deployments) -> CostsNow:
    """`{% deployments_cost_now deployments as costs %}`: what each deployment costs per hour now."""
    deployments = list(deployments)
    costs = selectors.deployment_cost_per_hour(deployments)
    return CostsNow({d.id: costs.get(d.id) for d in deployments})


@register.simple_tag
def deployment_cost_per_hour(deployment) -> Decimal | None:
    """`{% deployment_cost_per_hour deployment as cost %}`: one deployment's $/hour now; None when unpriced."""
    return selectors.deployment_cost_per_hour([deployment]).get(deployment.id)


@register.simple_tag
def nodes_cost_now(nodes) -> CostsNow:
    """`{% nodes_cost_now nodes as costs %}`: each node's whole instance per hour now."""
    nodes = list(nodes)
    costs = selectors.node_cost_per_hour(nodes)
    return CostsNow({n.id: costs.get(n.id) for n in nodes})


@register.filter
def cost_of(costs: CostsNow, row) -> Decimal | None:
    """`{{ costs|cost_of:deployment }}`: that row's $/hour from a list priced at once."""
    return costs.per_id.get(row.id)
