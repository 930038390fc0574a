"""What-if: replay one traffic shape against candidate autoscaler policies, side by side.

Each candidate runs on its own copy of the same world (same nodes, quotas, neighbours and
seed), with only the deployment's autoscaler replaced. Traffic noise is counter-based, so
every candidate sees exactly the same arrivals; the differences in the summaries come from
the policy alone. Runs are limited to 24 hours, the span the per-minute history keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .autoscalers import Autoscaler
from .replay import Load, Outcome, PrescaleRule
from .traffic import Traffic
from .world import World, from_epoch

MAX_HOURS = 24.0


@dataclass(frozen=True)
class Policy:
    """A candidate autoscaler for one deployment. kind "none" runs a fixed `min_replicas`."""

    label: str
    kind: str = "keda"  # "keda" | "hpa" | "none"
    min_replicas: int = 1
    max_replicas: int = 10
    metric: str = "queue_depth"  # "queue_depth" | "gpu_utilization" | "cpu_utilization"
    target_value: float = 5.0
    polling_interval_s: int = 30
    cooldown_s: int = 300
    scale_down_stabilization_s: int = 300
    scale_down_max_pods: int | None = None
    scale_down_period_s: int = 60
    # Only the 1-second replay (`simulator.replay`) runs these two:
    prescale: tuple[PrescaleRule, ...] = ()  # floors by time of day
    warm_pool_nodes: int = 0  # spare nodes kept Ready by pause pods

    def make_autoscaler(self, namespace: str, name: str) -> Autoscaler | None:
        """The controller this policy describes; None for kind "none" (fixed replicas)."""
        if self.kind == "none":
            return None
        return Autoscaler(
            self.kind,
            namespace,
            name,
            name,
            self.min_replicas,
            self.max_replicas,
            self.metric,
            self.target_value,
            polling_interval_s=self.polling_interval_s,
            cooldown_s=self.cooldown_s,
            scale_down_stabilization_s=self.scale_down_stabilization_s,
            scale_down_max_pods=self.scale_down_max_pods,
            scale_down_period_s=self.scale_down_period_s,
        )


@dataclass(frozen=True)
class Summary:
    policy: Policy
    slo_ttft_p95_seconds: float
    slo_violation_minutes: int  # minutes with TTFT p95 over the SLO, or traffic and nothing serving
    gpu_hours: float  # GPU-equivalents held by the deployment's scheduled pods (a 1g slice = 1/7)
    cost_usd: float
    scale_reversals: int  # times desired replicas turned from rising to falling or back
    peak_replicas: int
    mean_ready_replicas: float
    requests_served: float
    requests_abandoned: float
    # per minute: "at" (datetimes) and arrivals_per_second, queue_depth, ttft_p95_seconds,
    # replicas_desired, replicas_ready, gpus_allocated, cost_per_hour_usd
    series: dict[str, list] = field(repr=False)


SERIES_KEPT = (
    "arrivals_per_second",
    "queue_depth",
    "ttft_p95_seconds",
    "replicas_desired",
    "replicas_ready",
    "gpus_allocated",
    "cost_per_hour_usd",
)


def _install(world: World, namespace: str, name: str, policy: Policy) -> None:
    dep = world.deployment(namespace, name)
    for key, autoscaler in list(world.autoscalers.items()):
        if autoscaler.namespace == namespace and autoscaler.target == name:
            del world.autoscalers[key]
    if policy.kind == "none":
        dep.replicas = policy.min_replicas
        return
    autoscaler = policy.make_autoscaler(namespace, name)
    dep.replicas = max(policy.min_replicas, min(policy.max_replicas, dep.replicas))
    autoscaler.desired_replicas = dep.replicas
    world.bump(autoscaler)
    world.autoscalers[f"{namespace}/{name}"] = autoscaler


def _reversals(values: list[int]) -> int:
    reversals, direction, previous = 0, 0, None
    for value in values:
        if previous is not None and value != previous:
            step = 1 if value > previous else -1
            if direction and step != direction:
                reversals += 1
            direction = step
        previous = value
    return reversals


def run_policy(
    base: dict,
    namespace: str,
    name: str,
    traffic: Traffic | None,
    policy: Policy,
    hours: float,
    slo_ttft_p95_seconds: float,
) -> Summary:
    world = World.from_dict(base)
    dep = world.deployment(namespace, name)
    if traffic is not None:
        dep.traffic = traffic
    _install(world, namespace, name, policy)
    start = world.t
    served, abandoned = dep.requests_total, dep.abandoned_total
    world.advance_to(from_epoch(start + round(hours * 3600)))
    rows = [r for r in world.history.rows(dep.key) if r["at"] > start]
    violations = sum(
        1
        for r in rows
        if (r["ttft_p95_seconds"] is None and (r["arrivals_per_second"] or 0) > 0)
        or (r["ttft_p95_seconds"] or 0) > slo_ttft_p95_seconds
    )
    desired = [r["replicas_desired"] or 0 for r in rows]
    series: dict[str, list] = {"at": [from_epoch(r["at"]) for r in rows]}
    for key in SERIES_KEPT:
        series[key] = [r[key] for r in rows]
    return Summary(
        policy=policy,
        slo_ttft_p95_seconds=slo_ttft_p95_seconds,
        slo_violation_minutes=violations,
        gpu_hours=round(sum(r["gpus_allocated"] or 0 for r in rows) / 60, 3),
        cost_usd=round(sum(r["cost_per_hour_usd"] or 0 for r in rows) / 60, 2),
        scale_reversals=_reversals(desired),
        peak_replicas=max(desired, default=0),
        mean_ready_replicas=round(sum(r["replicas_ready"] or 0 for r in rows) / max(1, len(rows)), 2),
        requests_served=round(dep.requests_total - served, 1),
        requests_abandoned=round(dep.abandoned_total - abandoned, 1),
        series=series,
    )


def replayed_summary(
    policy: Policy, outcome: Outcome, load: Load, *, warmup_seconds: int, slo_ttft_p95_seconds: float
) -> Summary:
    """A 1-second replay's outcome (`replay.replay`) as the Summary a World run gives, its series
    stamped with each scored minute's end. The replay keeps no queue, GPU or cost per minute."""
    minutes = len(outcome.ready_per_minute)
    first = load.start + warmup_seconds
    arrivals = load.arrivals
    series: dict[str, list] = {
        "at": [from_epoch(first + 60 * (m + 1)) for m in range(minutes)],
        "arrivals_per_second": [
            round(sum(arrivals[warmup_seconds + 60 * m : warmup_seconds + 60 * (m + 1)]) / 60.0, 2)
            for m in range(minutes)
        ],
        "ttft_p95_seconds": list(outcome.ttft_p95_per_minute),
        "replicas_desired": list(outcome.desired_per_minute),
        "replicas_ready": list(outcome.ready_per_minute),
    }
    return Summary(
        policy=policy,
        slo_ttft_p95_seconds=slo_ttft_p95_seconds,
        slo_violation_minutes=outcome.slo_violation_minutes,
        gpu_hours=outcome.gpu_hours,
        cost_usd=outcome.cost_usd,
        scale_reversals=_reversals(outcome.desired_per_minute),
        peak_replicas=outcome.peak_replicas,
        mean_ready_replicas=round(sum(outcome.ready_per_minute) / max(1, minutes), 2),
        requests_served=outcome.requests_served,
        requests_abandoned=outcome.requests_abandoned,
        series=series,
    )


def compare_policies(
    world_spec_or_world: World | dict | Callable[[], World],
    deployment: str | tuple[str, str],
    traffic: Traffic | None,
    candidates: list[Policy],
    hours: float,
    *,
    slo_ttft_p95_seconds: float = 2.0,
) -> list[Summary]:
    """One Summary per candidate, in order. `deployment` is "namespace/name" or a pair;
    `traffic` None keeps the deployment's own. The world given is never modified."""
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"hours must be within (0, {MAX_HOURS:g}]")
    if isinstance(world_spec_or_world, World):
        base = world_spec_or_world.to_dict()
    elif isinstance(world_spec_or_world, dict):
        base = world_spec_or_world
    else:
        base = world_spec_or_world().to_dict()
    namespace, name = deployment.split("/", 1) if isinstance(deployment, str) else deployment
    return [run_policy(base, namespace, name, traffic, p, hours, slo_ttft_p95_seconds) for p in candidates]
