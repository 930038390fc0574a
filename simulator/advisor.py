"""The policy advisor: the cheapest autoscaling policy that keeps TTFT within the SLO.

Every candidate is replayed (`replay.replay`) on the same load, warm (a warm-up as long as the
longest cold start is replayed first and not scored). The search:

1. Baselines: the seed's ScaledObject (`avg(vllm:num_requests_waiting)` threshold 8, polling
   30 s, cooldown 180 s, 1-8 replicas) and static replicas, bisected to the fewest that meet
   the objective (`static_peak`).
2. A coarse grid: KEDA on queue depth (target, floor, polling, scale-down stabilization), KEDA
   on the averaged queue, HPA on GPU utilization, and HPA on CPU (the common mistake: a GPU
   server's CPU stays idle, so it never scales).
3. Refinement around the three best and the two cheapest near misses on the Pareto front
   (`_to_refine`): targets and floors nudged, faster polling, slower scale down, pre-scale floors
   from the traffic's daily profile (per UTC hour, led by the cold start), and a warm pool of
   one spare node.

The recommendation is the fewest GPU-hours among candidates that meet the attainment target
(fewer violation minutes break ties); when none does, the one with the best attainment, and
`meets_objective` says so. Candidates run in worker processes (fork, or forkserver from a
threaded process such as a Celery worker), two at a time on this machine's two cores.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from .replay import DeploymentModel, Load, Outcome, PrescaleRule, ReplayCache, replay
from .whatif import Policy

SEED_POLICY = Policy(
    "keda seed: avg queue > 8, poll 30 s, cooldown 180 s, 1-8",
    "keda",
    1,
    8,
    "queue_depth_avg",
    8.0,
    polling_interval_s=30,
    cooldown_s=180,
)
UTILIZATION_HEADROOM = 0.85  # a replica planned at 85 % of its saturation rate
T = TypeVar("T")


@dataclass(frozen=True)
class Objective:
    ttft_p95_seconds: float
    attainment: float = 0.99


@dataclass(frozen=True)
class Tried:
    policy: Policy
    outcome: Outcome

    def meets(self, objective: Objective) -> bool:
        return self.outcome.attainment >= objective.attainment

    def as_json(self) -> dict:
        o = self.outcome
        return {
            "label": self.policy.label,
            "policy": policy_json(self.policy),
            "slo_violation_minutes": o.slo_violation_minutes,
            "attainment": round(o.attainment, 4),
            "gpu_hours": o.gpu_hours,
            "cost_usd": o.cost_usd,
        }


@dataclass(frozen=True)
class Advice:
    objective: Objective
    hours: float
    recommended: Tried
    keda_seed: Tried
    static_peak: Tried
    candidates: list[Tried]
    meets_objective: bool
    # where the traffic and the model came from: {"traffic": ..., "model": ..., "notes": [...]}
    source: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "source": self.source,
            "objective": {"ttft_p95_seconds": self.objective.ttft_p95_seconds, "attainment": self.objective.attainment},
            "hours": self.hours,
            "recommended": self.recommended.as_json(),
            "baselines": {"keda_seed": self.keda_seed.as_json(), "static_peak": self.static_peak.as_json()},
            "candidates": [t.as_json() for t in self.candidates],
        }


class Cancelled(Exception):
    """The caller asked to stop; nothing is recommended."""


def _clock(second: int) -> str:
    return f"{second // 3600 % 24:02d}:{second // 60 % 60:02d}"


def policy_json(policy: Policy) -> dict:
    """A policy as the command and the API print it (times in seconds, pre-scale in UTC)."""
    if policy.kind == "none":
        out: dict = {"kind": "static", "replicas": policy.min_replicas}
    else:
        out = {
            "kind": policy.kind,
            "metric": policy.metric,
            "target": policy.target_value,
            "min_replicas": policy.min_replicas,
            "max_replicas": policy.max_replicas,
            "polling_interval_seconds": policy.polling_interval_s,
            "cooldown_seconds": policy.cooldown_s,
            "scale_down_stabilization_seconds": policy.scale_down_stabilization_s,
            "scale_down_max_pods_per_period": policy.scale_down_max_pods,
            "scale_down_period_seconds": policy.scale_down_period_s,
        }
    out["prescale"] = [
        {"from_utc": _clock(r.start_second), "to_utc": _clock(r.end_second), "replicas": r.replicas}
        for r in policy.prescale
    ]
    out["warm_pool_nodes"] = policy.warm_pool_nodes
    return out


def _label(policy: Policy) -> str:
    if policy.kind == "none":
        base = f"static {policy.min_replicas}"
    elif policy.metric.startswith("queue_depth"):
        what = "avg queue" if policy.metric == "queue_depth_avg" else "queue"
        base = (
            f"{policy.kind} {what} > {policy.target_value:g}/replica, {policy.min_replicas}-{policy.max_replicas}, "
            f"poll {policy.polling_interval_s} s, down after {policy.scale_down_stabilization_s} s"
        )
    else:
        what = "GPU" if policy.metric == "gpu_utilization" else "CPU"
        base = (
            f"{policy.kind} {what} {policy.target_value:.0%}, {policy.min_replicas}-{policy.max_replicas}, "
            f"poll {policy.polling_interval_s} s, down after {policy.scale_down_stabilization_s} s"
        )
    if policy.scale_down_max_pods:
        base += f", -{policy.scale_down_max_pods} pod/{policy.scale_down_period_s} s"
    if policy.prescale:
        base += " + pre-scale " + ", ".join(
            f"{_clock(r.start_second)}-{_clock(r.end_second)}≥{r.replicas}" for r in policy.prescale
        )
    if policy.warm_pool_nodes:
        base += f" + warm pool {policy.warm_pool_nodes} node"
    return base


def labelled(policy: Policy) -> Policy:
    """The policy named by its settings, unless the caller named it."""
    return policy if policy.label else replace(policy, label=_label(policy))


# ------------------------------------------------------------------ the load's shape


def replica_rate(model: DeploymentModel, load: Load) -> float:
    """Requests/s one replica sustains at the load's mean token sizes."""
    prompts = [p for p in load.prompt_tokens if p]
    outputs = [o for o in load.output_tokens if o]
    prompt = sum(prompts) / len(prompts) if prompts else None
    output = 0.0 if model.embedding else (sum(outputs) / len(outputs) if outputs else None)
    return model.capacity.requests_per_second(prompt, output)


def minute_rates(load: Load, warmup_seconds: int) -> list[float]:
    arrivals = load.arrivals
    return [sum(arrivals[i : i + 60]) / 60.0 for i in range(warmup_seconds, load.seconds - 59, 60)]


def prescale_windows(
    load: Load, warmup_seconds: int, rate: float, lead_seconds: int, fraction: float
) -> tuple[PrescaleRule, ...]:
    """Floors per UTC hour from the traffic's daily profile: replicas for `fraction` of the
    hour's busiest minutes (its 95th percentile over the days replayed), starting
    `lead_seconds` early so the pods are ready when the hour comes."""
    by_hour: dict[int, list[float]] = {}
    start = load.start + warmup_seconds
    for m, value in enumerate(minute_rates(load, warmup_seconds)):
        by_hour.setdefault((start + 60 * m) // 3600 % 24, []).append(value)
    floors = {}
    for hour, values in by_hour.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        floors[hour] = max(1, math.ceil(p95 * fraction / (rate * UTILIZATION_HEADROOM)))
    rules, hours = [], sorted(floors)
    i = 0
    while i < len(hours):
        j = i
        while j + 1 < len(hours) and hours[j + 1] == hours[j] + 1 and floors[hours[j + 1]] == floors[hours[i]]:
            j += 1
        begin = (hours[i] * 3600 - lead_seconds) % 86400
        rules.append(PrescaleRule(begin, (hours[j] + 1) * 3600 % 86400, floors[hours[i]]))
        i = j + 1
    return tuple(rules)


# ------------------------------------------------------------------ running candidates

_SHARED: dict = {}


def _init(model: DeploymentModel, load: Load, slo: float, warmup: int) -> None:
    """Each worker process keeps one `ReplayCache` for every candidate it replays."""
    _SHARED.update(model=model, load=load, slo=slo, warmup=warmup, cache=ReplayCache(model, load))


def _run(policy: Policy) -> Tried:
    s = _SHARED
    return Tried(
        policy,
        replay(
            s["model"], s["load"], policy, slo_ttft_p95_seconds=s["slo"], warmup_seconds=s["warmup"], cache=s["cache"]
        ),
    )


class _Runner:
    """Replays batches of candidates in worker processes; remembers every result."""

    def __init__(self, model, load, objective, warmup, workers, progress, cancelled, expected):
        self.objective = objective
        self.tried: dict[Policy, Tried] = {}
        self.progress, self.cancelled, self.expected = progress, cancelled, expected
        _init(model, load, objective.ttft_p95_seconds, warmup)
        self.pool = None
        if workers > 1 and not multiprocessing.current_process().daemon:
            # fork is cheap, but forking a process with other threads running (a Celery worker's
            # threads pool) can copy a lock some thread holds: then start clean workers instead.
            method = "fork" if threading.active_count() == 1 else "forkserver"
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_init,
                initargs=(model, load, objective.ttft_p95_seconds, warmup),
            )

    def run(self, policies: list[Policy]) -> list[Tried]:
        new = list(dict.fromkeys(labelled(p) for p in policies if labelled(p) not in self.tried))
        results = self.pool.map(_run, new) if self.pool else map(_run, new)
        for tried in results:
            self.tried[tried.policy] = tried
            if self.progress:
                self.progress(len(self.tried), max(self.expected, len(self.tried)))
            if self.cancelled and self.cancelled():
                raise Cancelled()
        return [self.tried[labelled(p)] for p in policies]

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(cancel_futures=True)


def pareto_front(items: list[T], *, cost: Callable[[T], float], violations: Callable[[T], int]) -> list[T]:
    """Items no other beats on both cost and violation minutes: cheapest first, each with fewer
    violation minutes than every cheaper one."""
    front: list[T] = []
    best = None
    for item in sorted(items, key=lambda i: (cost(i), violations(i))):
        if best is None or violations(item) < best:
            front.append(item)
            best = violations(item)
    return front


def _to_refine(coarse: list[Tried], objective: Objective) -> list[Tried]:
    """Where refinement looks: the three cheapest that meet the objective (or, when none does, the
    three with the best attainment), plus the two cheapest on the Pareto front that come within
    twice the objective's violation budget: a nudge (a higher floor, a lower target, faster
    polling) may bring such a cheap one within the objective."""
    ranked = sorted(
        coarse,
        key=lambda t: (not t.meets(objective), t.outcome.gpu_hours if t.meets(objective) else -t.outcome.attainment),
    )
    chosen = ranked[:3]
    near = [
        t
        for t in pareto_front(
            coarse, cost=lambda t: t.outcome.gpu_hours, violations=lambda t: t.outcome.slo_violation_minutes
        )
        if not t.meets(objective) and 1 - t.outcome.attainment <= 2 * (1 - objective.attainment)
    ]
    chosen += [t for t in near if t not in chosen][:2]
    return chosen


def _cheapest(tried: list[Tried], objective: Objective) -> Tried:
    meeting = [t for t in tried if t.meets(objective)]
    if meeting:
        return min(meeting, key=lambda t: (t.outcome.gpu_hours, t.outcome.slo_violation_minutes, t.policy.label))
    return min(tried, key=lambda t: (-t.outcome.attainment, t.outcome.gpu_hours, t.policy.label))


def _static_peak(runner: _Runner, low: int, high: int, objective: Objective) -> Tried:
    """Fewest static replicas meeting the objective (bisection; more replicas never hurt)."""

    def static(n: int) -> Policy:
        return Policy("", "none", n, n)

    best = runner.run([static(high)])[0]
    while not best.meets(objective) and high < 1000:
        low, high = high + 1, high * 2
        best = runner.run([static(high)])[0]
    while low < high:
        middle = (low + high) // 2
        tried = runner.run([static(middle)])[0]
        if tried.meets(objective):
            high, best = middle, tried
        else:
            low = middle + 1
    return best


def advise(
    model: DeploymentModel,
    load: Load,
    objective: Objective,
    *,
    warmup_seconds: int,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    profile: Load | None = None,
) -> Advice:
    """`profile` is the traffic the pre-scale windows are read from: the load without a synthetic
    spike, which no daily schedule could foresee (by default, the load itself)."""
    rate = replica_rate(model, load)
    rates = minute_rates(load, warmup_seconds)
    mean, peak = sum(rates) / len(rates), max(rates)
    base = max(1, math.ceil(mean / (rate * UTILIZATION_HEADROOM)))
    top = max(base + 1, math.ceil(peak / (rate * UTILIZATION_HEADROOM)))
    ceiling = max(top + 2, math.ceil(top * 1.5))
    runner = _Runner(
        model,
        load,
        objective,
        warmup_seconds,
        workers if workers else os.cpu_count() or 1,
        progress,
        cancelled,
        expected=110,
    )
    try:
        seed = runner.run([SEED_POLICY])[0]
        static_peak = _static_peak(runner, 1, top + 1, objective)
        grid = [
            Policy(
                "",
                "keda",
                low,
                ceiling,
                "queue_depth",
                float(target),
                polling_interval_s=polling,
                cooldown_s=300,
                scale_down_stabilization_s=stabilization,
            )
            for target in (2, 5, 10)
            for low in sorted({1, base, base + 1})
            for polling in (15, 30)
            for stabilization in (120, 300)
        ]
        grid += [
            Policy("", "keda", low, ceiling, "queue_depth_avg", float(target), polling_interval_s=15, cooldown_s=300)
            for target in (2, 4)
            for low in sorted({1, base})
        ]
        grid += [
            Policy("", "hpa", low, ceiling, "gpu_utilization", target, polling_interval_s=15)
            for target in (0.5, 0.6, 0.7, 0.8)
            for low in sorted({1, base})
        ]
        grid += [Policy("", "hpa", 1, ceiling, "cpu_utilization", 0.6, polling_interval_s=15)]
        coarse = runner.run(grid)
        lead = model.longest_cold_start_seconds
        refined: list[Policy] = []
        for best in _to_refine(coarse, objective):
            p = replace(best.policy, label="")  # each variant is named by its own settings
            refined += [
                replace(p, target_value=round(p.target_value * 0.6, 2)),
                replace(p, target_value=round(p.target_value * 1.5, 2)),
                replace(p, min_replicas=p.min_replicas + 1),
                replace(p, min_replicas=max(1, p.min_replicas - 1)),
                replace(p, polling_interval_s=10),
                replace(p, scale_down_stabilization_s=600),
                replace(p, scale_down_max_pods=1, scale_down_period_s=120),
                replace(p, warm_pool_nodes=1),
            ]
            for fraction in (0.6, 0.9):
                refined.append(
                    replace(p, prescale=prescale_windows(profile or load, warmup_seconds, rate, lead, fraction))
                )
        # Pre-scale floors pay off on a cheap base: the cheapest coarse candidates and static replicas.
        cheapest = sorted(coarse, key=lambda t: t.outcome.gpu_hours)[:2]
        for fraction in (0.6, 0.9, 1.0):
            windows = prescale_windows(profile or load, warmup_seconds, rate, lead, fraction)
            refined.append(Policy("", "none", 1, 1, prescale=windows))
            refined += [replace(t.policy, label="", prescale=windows) for t in cheapest]
        runner.run(refined)
        tried = list(runner.tried.values())
        recommended = _cheapest(tried, objective)
    finally:
        runner.close()
    return Advice(
        objective,
        round((load.seconds - warmup_seconds) / 3600, 3),
        recommended,
        seed,
        static_peak,
        tried,
        recommended.meets(objective),
    )
