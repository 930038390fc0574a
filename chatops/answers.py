"""What `/scaledeck status [namespace/name]` and `/scaledeck why namespace/name` answer, as Slack text.

Read-only answers built from the same selectors as the pages and `GET /api/v1/summary/`.
"""

from __future__ import annotations

from datetime import datetime

from accounts.models import Role, role_at_least
from accounts.services import user_role
from chatops.summary import fleet_summary
from costing import selectors as costing_selectors
from fleet import selectors as fleet_selectors
from scaling import selectors as scaling_selectors

USAGE = (
    "Usage: `/scaledeck status [namespace/name]`, `/scaledeck why namespace/name` or "
    '`/scaledeck scale namespace/name N [for 2h] "reason"`.'
)


def answer(*, user, text: str, now: datetime) -> str:
    """The reply to one slash command from a linked user."""
    if not role_at_least(user_role(user), Role.VIEWER):
        return "Your ScaleDeck account has no role; ask an admin for one."
    words = text.split()
    if not words:
        return USAGE
    verb, args = words[0].lower(), words[1:]
    if verb == "status" and not args:
        return fleet_status(now=now)
    if verb in ("status", "why") and len(args) == 1:
        return deployment_why(args[0], now=now)
    return USAGE


def _money(value) -> str:
    return "unknown" if value is None else f"${value:,.2f}/h"


def fleet_status(*, now: datetime) -> str:
    lines = []
    for c in fleet_summary(now=now):
        breach = ", ".join(f"{b['deployment']} ({b['ttft_p95_seconds']:.2f} s > {b['objective_seconds']:.2f} s)"
                           for b in c.in_breach) or "none"
        spend = _money(c.spend_usd_per_hour)
        if c.unpriced_nodes:
            spend += f" (+{c.unpriced_nodes} unpriced node{'s' if c.unpriced_nodes > 1 else ''})"
        nxt = c.next_firings[0] if c.next_firings else None
        firing = f"{nxt['deployment']} to {nxt['min_replicas']} at {nxt['at']:%Y-%m-%d %H:%M} UTC" if nxt else "none"
        lines.append(
            f"*{c.cluster.name}*: {c.deployments} deployments, over TTFT objective: {breach}; "
            f"{c.pending_pods} pending pods; {len(c.overrides)} active overrides; next pre-scale: {firing}; "
            f"spend {spend}"
        )
    return "\n".join(lines) or "No clusters yet."


def find_deployment(ref: str):
    namespace, _, name = ref.partition("/")
    if not namespace or not name:
        return None, f"Name a deployment as namespace/name, not {ref[:80]!r}."
    rows = list(fleet_selectors.deployment_queryset().filter(namespace=namespace, name=name)[:2])
    if not rows:
        return None, f"No deployment {ref[:120]}."
    if len(rows) > 1:
        return None, f"{ref[:120]} exists in several clusters; the API tells them apart by id."
    return rows[0], ""


def deployment_why(ref: str, *, now: datetime) -> str:
    """Replicas, who owns them (autoscaler), active overrides and the metrics behind them."""
    deployment, problem = find_deployment(ref)
    if deployment is None:
        return problem
    (row,) = fleet_selectors.deployment_rows([deployment])
    overrides = scaling_selectors.active_overrides([deployment], now=now).get(deployment.id, [])
    a = row.autoscaler
    if a.kind == "none":
        owner = "no autoscaler: replicas are set by hand"
    elif a.kind == "conflict":
        owner = "several autoscalers fight over the replicas: " + ", ".join(x.name for x in a.conflicts)
    else:
        owner = f"{a.kind.upper()} {a.name}, {a.min_replicas}-{a.max_replicas} replicas on {a.metric or 'its metric'}"
        if a.paused:
            owner += f", paused at {a.paused_replicas}"
    m = row.metrics
    if m.unavailable_reason:
        metrics = f"metrics unavailable: {m.unavailable_reason}"
    else:
        ttft = "unknown" if m.ttft_p95_seconds is None else f"{m.ttft_p95_seconds:.2f} s"
        queue = "unknown" if m.queue_depth is None else f"{m.queue_depth:g} requests"
        metrics = f"TTFT p95 {ttft} (objective {deployment.slo_seconds:.2f} s), queue {queue}"
    held = "; ".join(f"{o.label} by {o.by} for {o.time_left}" for o in overrides) or "none"
    cost = costing_selectors.deployment_cost_per_hour([deployment]).get(deployment.id)
    return (
        f"*{deployment.cluster.name} {deployment.namespace}/{deployment.name}*: "
        f"{deployment.replicas_ready}/{deployment.replicas_desired} replicas ready. "
        f"Owner: {owner}. Overrides: {held}. {metrics}. Cost {_money(cost)}."
    )
