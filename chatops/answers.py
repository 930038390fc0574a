"""What `/scaledeck status [namespace/name]` and `/scaledeck why namespace/name` answer, as Slack text.

Read-only answers built from the same selectors as the pages and `GET /api/v1/summary/`.

Slack waits 3 seconds. Everything here reads the database except the metrics, which come from
each cluster's Prometheus, bounded only by that cluster's timeout (3 s by default, per cluster,
one cluster after another). So with a time budget (`within`), the metrics the answer needs are
read first, in a thread: if they are not all in by then, `answer` returns None and the caller
posts the answer later from the worker. The read still running finishes on its own (the
backend's timeout ends it) and leaves what it learnt -- the values, or "Prometheus is down" --
in fleet.metrics' cache, so the worker's answer does not wait for it again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime

from django.db import connections

from accounts.models import Role, role_at_least
from accounts.scope import scope_queryset
from accounts.services import user_role
from chatops.models import SlackUserLink
from chatops.summary import fleet_summary
from costing import selectors as costing_selectors
from fleet import metrics as fleet_metrics
from fleet import selectors as fleet_selectors
from fleet.models import ModelDeployment
from scaling.services.why import deployment_scaling_why
from scaling.why_views import BINDING_WORDS

# Of Slack's 3 s, what the metrics may take; the rest is the database, the reply and the network.
ANSWER_BUDGET_SECONDS = 2.0
# At most this many Prometheus reads for Slack at once: a dead Prometheus and a flood of commands
# fill it, and further commands wait their budget in its queue, then are answered later.
_METRICS_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-metrics")

USAGE = (
    "Usage: `/scaledeck status [namespace/name]`, `/scaledeck why namespace/name` or "
    '`/scaledeck scale namespace/name N [for 2h] "reason"`.'
)


def answer(*, link: SlackUserLink, text: str, now: datetime, within: float | None = None) -> str | None:
    """The reply to one slash command from a linked Slack user, within the link's scope.

    With `within` (seconds), None when the metrics the reply needs are not read in that time."""
    if not role_at_least(user_role(link.user), Role.VIEWER):
        return "Your ScaleDeck account has no role; ask an admin for one."
    words = text.split()
    if not words:
        return USAGE
    verb, args = words[0].lower(), words[1:]
    if verb == "status" and not args:
        deployments = scope_queryset(fleet_selectors.deployment_queryset(), link)
        if within is not None and not metrics_read_within(list(deployments), within):
            return None
        return fleet_status(now=now, scope=link)
    if verb in ("status", "why") and len(args) == 1:
        deployment, problem = find_deployment(args[0], scope=link)
        if deployment is None:
            return problem
        if within is not None and not metrics_read_within([deployment], within):
            return None
        return deployment_why(deployment, now=now)
    return USAGE


def _read_metrics(deployments: list[ModelDeployment]) -> None:
    try:
        fleet_metrics.deployment_metrics(deployments)  # never raises; caches what it read
    finally:
        connections.close_all()  # this thread's own, if anything opened one


def metrics_read_within(deployments: list[ModelDeployment], seconds: float) -> bool:
    """Whether the metrics of `deployments` are read (and cached) within `seconds`.

    Only clusters with a Prometheus URL are read here: the simulated backend reads the database
    in-process and answers at once. `deployments` come from `deployment_queryset()`, with their
    cluster and pods loaded, so the thread reads no database: only the cache and Prometheus."""
    remote = [d for d in deployments if d.cluster.prometheus_url]
    if not remote:
        return True
    try:
        _METRICS_READERS.submit(_read_metrics, remote).result(timeout=max(seconds, 0.0))
    except FutureTimeout:
        return False
    return True


def _money(value) -> str:
    return "unknown" if value is None else f"${value:,.2f}/h"


def fleet_status(*, now: datetime, scope: SlackUserLink) -> str:
    lines = []
    clusters = scope_queryset(fleet_selectors.cluster_queryset(), scope)
    for c in fleet_summary(now=now, clusters=clusters, namespaces=scope.namespaces):
        breach = (
            ", ".join(
                f"{b['deployment']} ({b['ttft_p95_seconds']:.2f} s > {b['objective_seconds']:.2f} s)"
                for b in c.in_breach
            )
            or "none"
        )
        spend = _money(c.spend_usd_per_hour)
        if c.unpriced_nodes:
            spend += f" (+{c.unpriced_nodes} unpriced node{'s' if c.unpriced_nodes > 1 else ''})"
        nxt = c.next_firings[0] if c.next_firings else None
        firing = f"{nxt['deployment']} to {nxt['min_replicas']} at {nxt['at']:%Y-%m-%d %H:%M} UTC" if nxt else "none"
        lines.append(
            f"*{c.cluster.name}*: {c.deployments} deployments, over TTFT objective: {breach}; "
            f"{c.pending_pods} pending pods; {len(c.overrides)} active overrides; next pre-scale: {firing}; "
            f"spend {spend}" + _unknown_text(c)
        )
    return "\n".join(lines) or "No clusters yet."


def _unknown_text(c) -> str:
    if not c.ttft_unknown:
        return ""
    why = f"metrics unavailable: {c.metrics_unavailable}" if c.metrics_unavailable else "no TTFT reported"
    return f"; TTFT unknown for {c.ttft_unknown} deployment{'s' if c.ttft_unknown > 1 else ''} ({why})"


def find_deployment(ref: str, *, scope: SlackUserLink):
    """(deployment, "") or (None, what is wrong). Outside the link's scope is "no deployment", as
    a scoped token gets 404."""
    namespace, _, name = ref.partition("/")
    if not namespace or not name:
        return None, f"Name a deployment as namespace/name, not {ref[:80]!r}."
    deployments = scope_queryset(fleet_selectors.deployment_queryset(), scope)
    rows = list(deployments.filter(namespace=namespace, name=name)[:2])
    if not rows:
        return None, f"No deployment {ref[:120]}."
    if len(rows) > 1:
        return None, f"{ref[:120]} exists in several clusters; the API tells them apart by id."
    return rows[0], ""


def deployment_why(deployment: ModelDeployment, *, now: datetime) -> str:
    """Replicas, who owns them (autoscaler), active overrides and the metrics behind them."""
    (row,) = fleet_selectors.deployment_rows([deployment])
    why, overrides = deployment_scaling_why(deployment=deployment, metrics=row.metrics, now=now)
    replicas_owner, a = row.owner, row.owner.autoscaler
    if replicas_owner.conflicts:
        owner = "several autoscalers fight over the replicas: " + ", ".join(x.name for x in replicas_owner.conflicts)
    elif a is None:
        owner = "no autoscaler: replicas are set by hand"
    else:
        owner = (
            f"{replicas_owner.badge} {a.name}, {a.min_replicas}-{a.max_replicas} replicas on {a.metric or 'its metric'}"
        )
        if replicas_owner.paused:
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
        f"{deployment.replicas_ready}/{deployment.replicas_desired} replicas ready. {_why_text(why)} "
        f"Owner: {owner}. Overrides: {held}. {metrics}. Cost {_money(cost)}."
    )


def _why_text(why) -> str:
    """The deployment page's "why this many replicas" panel, in two sentences."""
    text = f"Set by {BINDING_WORDS.get(why.binding, why.binding)}"
    if why.metric and why.metric_value is not None:
        text += f"; the metric ({why.metric}) is at {why.metric_value:.4g}"
        if why.target_value is not None:
            text += f" against a target of {why.target_value:.4g}"
        if why.implied_replicas is not None:
            text += f", asking for {why.implied_replicas} replica{'s' if why.implied_replicas != 1 else ''}"
    blockers = "; ".join(b.rstrip(".") for b in why.blockers) or "nothing: more load would get more replicas"
    return f"{text}. More replicas blocked by: {blockers}."
