"""Fast replay of one deployment's traffic at 1-second resolution, for what-if and the advisor.

`whatif.compare_policies` steps a whole World (every node, pod, quota and neighbour, 15 s
steps), which is right for "what would my cluster do" but costs ~100x real time too much for
a week of traffic times forty candidates. This module replays only what decides a policy's
score: one deployment's queue (the same fluid model, `capacity.serve`), its pods starting and
stopping (pod start = image pull + weight load; a pod with no room waits for a node of its
pool, which takes the pool's provisioning time), the autoscaler (the same `Autoscaler`), pre-scale
floors and a warm pool of spare nodes. Arrivals are computed once per traffic source (`Load`)
and shared by every candidate.

Scoring follows the World's minute history: a minute's TTFT p95 is the served-weighted mean
of the seconds' p95; a minute violates the SLO when that is above the SLO, or when requests
arrived and nothing served them. GPU-hours count every pod bound to a node (starting pods
hold their GPUs) plus the warm pool's spare nodes, which are paid for while they wait.
Everything is deterministic: no random draw happens during a replay.
"""

from __future__ import annotations

import heapq
import math
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING

from .autoscalers import Reading
from .capacity import (
    _DELAY_Q,
    _PROMPT_Q,
    _WAIT_Q,
    BATCH_SLOWDOWN,
    CLIENT_PATIENCE_SECONDS,
    PREFILL_CONTENTION,
    ReplicaCapacity,
    _saturation_rate,
)

if TYPE_CHECKING:
    from .whatif import Policy

DAY = 86400


@dataclass(frozen=True)
class DeploymentModel:
    """What a replay needs to know of a deployment and the pool its pods run on."""

    capacity: ReplicaCapacity
    gpus_per_replica: float  # GPU-equivalents (a 1g MIG slice = 1/7)
    price_per_gpu_hour_usd: float
    pod_start_seconds: int  # image pull + weight load on a node with room
    node_start_seconds: int  # the pool's provisioning time for a new node
    replicas_per_node: int  # how many of its pods a fresh node of the pool holds
    gpus_per_node: float  # GPU-equivalents of one node (the warm pool's cost per spare node)
    free_replica_slots: int = 0  # room for more of its pods on nodes already Ready
    max_new_nodes: int = 4  # the pool's max_nodes minus the nodes it has
    consolidate_after_seconds: int = 600
    embedding: bool = False
    notes: tuple[str, ...] = ()  # where each figure came from, for the report

    @property
    def longest_cold_start_seconds(self) -> int:
        return self.node_start_seconds + self.pod_start_seconds


@dataclass(frozen=True)
class Load:
    """Arrivals per second from `start` (epoch seconds), and mean token sizes per minute.

    A zero token mean means "no request that minute": the capacity's defaults apply.
    """

    start: int
    arrivals: array  # 'd', requests arriving during each second
    prompt_tokens: array  # 'd', per minute
    output_tokens: array  # 'd', per minute

    @property
    def seconds(self) -> int:
        return len(self.arrivals)


@dataclass(frozen=True)
class PrescaleRule:
    """Keep at least `replicas` from `start_second` to `end_second` of each UTC day."""

    start_second: int
    end_second: int
    replicas: int

    def covers(self, second_of_day: int) -> bool:
        if self.start_second <= self.end_second:
            return self.start_second <= second_of_day < self.end_second
        return second_of_day >= self.start_second or second_of_day < self.end_second  # over midnight


@dataclass(frozen=True)
class Outcome:
    """A candidate's score over the scored minutes (after the warm-up)."""

    scored_minutes: int
    slo_violation_minutes: int
    gpu_hours: float
    cost_usd: float
    peak_replicas: int
    requests_served: float = 0.0
    requests_abandoned: float = 0.0  # clients that gave up waiting in the queue
    # per scored minute: replicas ready and desired at its end, TTFT p95 (None: nothing served)
    ready_per_minute: list[int] = field(repr=False, default_factory=list)
    ttft_p95_per_minute: list[float | None] = field(repr=False, default_factory=list)
    desired_per_minute: list[int] = field(repr=False, default_factory=list)

    @property
    def attainment(self) -> float:
        return 1.0 - self.slo_violation_minutes / self.scored_minutes if self.scored_minutes else 1.0


def _floor_at(rules: tuple[PrescaleRule, ...], t: int) -> int:
    second = t % DAY
    return max((r.replicas for r in rules if r.covers(second)), default=0)


class _Pods:
    """The deployment's pods and the room its pool has for them: pending, starting, ready."""

    def __init__(self, model: DeploymentModel, replicas: int, warm_pool_nodes: int, t: int):
        self.m = model
        self.per_node = max(1, model.replicas_per_node)
        self.warm_slots = warm_pool_nodes * self.per_node
        self.extra_ready_nodes = warm_pool_nodes  # nodes launched for this deployment, Ready
        self.slots = model.free_replica_slots + self.warm_slots + replicas  # room on Ready nodes
        self.launching: list[int] = []  # ready times of nodes in flight
        self.pending = 0
        self.starting: list[int] = []  # heap of ready times
        self.ready = replicas  # every candidate starts warm
        self.empty_since: int | None = None
        self.events_at = t

    @property
    def bound(self) -> int:
        return len(self.starting) + self.ready

    @property
    def total(self) -> int:
        return self.pending + self.bound

    def _nodes_used(self) -> int:
        return self.extra_ready_nodes + len(self.launching)

    def tick(self, t: int) -> None:
        """Nodes and pods whose start finished by t; pending pods take the room that appeared."""
        launching, starting = self.launching, self.starting
        while launching and launching[0] <= t:
            heapq.heappop(launching)
            self.slots += self.per_node
            self.extra_ready_nodes += 1
        while self.pending and self.bound < self.slots:
            self.pending -= 1
            heapq.heappush(starting, t + self.m.pod_start_seconds)
        while starting and starting[0] <= t:
            heapq.heappop(starting)
            self.ready += 1

    def scale_to(self, desired: int, t: int) -> None:
        change = desired - self.total
        if change > 0:
            room = max(0, self.slots - self.bound)
            placed = min(change, room)
            for _ in range(placed):
                heapq.heappush(self.starting, t + self.m.pod_start_seconds)
            self.pending += change - placed
        elif change < 0:
            remove = -change
            gone = min(remove, self.pending)  # unscheduled pods go first, then starting, newest first
            self.pending -= gone
            remove -= gone
            if remove and self.starting:
                newest = sorted(self.starting)
                gone = min(remove, len(newest))
                self.starting = newest[: len(newest) - gone]
                heapq.heapify(self.starting)
                remove -= gone
            self.ready -= min(remove, self.ready)
        self._provision(t)

    def _provision(self, t: int) -> None:
        """Launch nodes for pods with no room, and to keep the warm pool's spare nodes."""
        spare = self.slots + len(self.launching) * self.per_node - self.bound - self.pending
        while spare < self.warm_slots and self._nodes_used() < self.m.max_new_nodes:
            heapq.heappush(self.launching, t + self.m.node_start_seconds)
            spare += self.per_node

    def consolidate(self, t: int) -> None:
        """An empty node of its own beyond the warm pool goes after the pool's consolidation delay."""
        spare = self.slots - self.bound - self.pending
        if self.extra_ready_nodes and spare - self.warm_slots - self.m.free_replica_slots >= self.per_node:
            if self.empty_since is None:
                self.empty_since = t
            elif t - self.empty_since >= self.m.consolidate_after_seconds:
                self.extra_ready_nodes -= 1
                self.slots -= self.per_node
                self.empty_since = None
        else:
            self.empty_since = None


class _Serving:
    """One minute's serving constants (its token sizes) and the TTFT p95 of a second at a load:
    `capacity.serve` for dt = 1, inlined (tests/simulator/test_replay.py holds the two equal)."""

    __slots__ = ("saturation", "prompt_p95", "prefill", "itl_alone", "step_alone", "decodes")

    def __init__(self, cap: ReplicaCapacity, prompt: float, output: float):
        self.saturation = _saturation_rate(cap, prompt, output)  # requests/s of one replica
        self.prompt_p95 = prompt * _PROMPT_Q[95]
        self.prefill = cap.prefill_tokens_per_second
        self.itl_alone = 1.0 / cap.decode_tokens_per_second
        self.step_alone = 0.01 + 4.0 * prompt / self.prefill  # a pooling model's batched pass
        self.decodes = output > 0

    def ttft_p95(self, load: float, wait: float) -> float:
        step = (self.itl_alone * (1.0 + BATCH_SLOWDOWN * load) if self.decodes else self.step_alone) * (
            1.0 + 10.0 * load**6
        )
        return (
            self.prompt_p95 / (self.prefill * (1.0 - PREFILL_CONTENTION * load))
            + step * _DELAY_Q[95]
            + (wait * _WAIT_Q[95])
        )


class ReplayCache:
    """What every candidate replayed on one load shares, so the quiet stretches cost little.

    Most seconds of most candidates are quiet: nothing queued, no pod starting or stopping, no
    evaluation due, and every arrival within the ready replicas' capacity. Served then equals
    arrived and a second's TTFT p95 depends only on its arrivals, its minute's token sizes and the
    replicas ready. So per (minute, replicas ready) the running sum of TTFT x served over the
    minute's seconds is computed once, and a quiet stretch of any candidate takes it by
    difference. The result is the per-second replay's, up to float rounding (the tests compare).
    The memo is bounded; past `MAX_MINUTES` entries new ones are computed and not kept.
    """

    MAX_MINUTES = 120_000  # ~65 MB

    def __init__(self, model: DeploymentModel, load: Load, *, quiet_stretches: bool = True):
        self.model, self.load = model, load
        self.quiet_stretches = quiet_stretches  # False: every second one by one (the reference)
        a = load.arrivals
        self.arrived_before = array("d", accumulate(a, initial=0.0))  # [i]: sum of arrivals[:i]
        self.minute_peak = array("d", (max(a[s : s + 60]) for s in range(0, len(a), 60)))
        self._serving: dict[int, _Serving] = {}
        self._weighted: dict[tuple[int, int], array] = {}

    def serving(self, minute: int) -> _Serving:
        got = self._serving.get(minute)
        if got is None:
            cap, load = self.model.capacity, self.load
            prompt = load.prompt_tokens[minute] or cap.mean_prompt_tokens
            output = 0.0 if self.model.embedding else (load.output_tokens[minute] or cap.mean_output_tokens)
            got = self._serving[minute] = _Serving(cap, prompt, output)
        return got

    def weighted(self, minute: int, ready: int) -> array:
        """[k]: sum of TTFT p95 x served over the minute's first k seconds, nothing queued."""
        got = self._weighted.get((minute, ready))
        if got is None:
            serving = self.serving(minute)
            capacity = ready * serving.saturation
            total, got = 0.0, array("d", [0.0])
            for a in self.load.arrivals[60 * minute : 60 * minute + 60]:
                if a > 0:
                    total += serving.ttft_p95(a / capacity, 0.0) * a
                got.append(total)
            if len(self._weighted) < self.MAX_MINUTES:
                self._weighted[(minute, ready)] = got
        return got


class _Score:
    """The scored minutes: a minute's TTFT p95 is the served-weighted mean of its seconds'."""

    def __init__(self, slo: float):
        self.slo = slo
        self.scored = self.violations = self.peak = 0
        self.gpu_seconds = self.served_total = self.abandoned_total = 0.0
        self.weighted = self.served = self.arrived = 0.0
        self.unserved = False
        self.ready: list[int] = []
        self.ttft: list[float | None] = []
        self.desired: list[int] = []

    def close_minute(self, ready: int, desired: int) -> None:
        p95 = self.weighted / self.served if self.served else None
        self.scored += 1
        if (p95 is not None and p95 > self.slo) or (p95 is None and self.arrived > 0 and self.unserved):
            self.violations += 1
        self.ready.append(ready)
        self.desired.append(desired)
        self.ttft.append(None if p95 is None else round(p95, 3))
        self.peak = max(self.peak, desired)
        self.weighted = self.served = self.arrived = 0.0
        self.unserved = False


def replay(
    model: DeploymentModel,
    load: Load,
    candidate: Policy,
    *,
    slo_ttft_p95_seconds: float,
    warmup_seconds: int,
    cache: ReplayCache | None = None,
) -> Outcome:
    """Replay `load` against `candidate`; the first `warmup_seconds` are run but not scored.
    `cache`: one shared by the candidates replayed on this model and load (made here if None)."""
    if cache is None or cache.load is not load or cache.model != model:
        cache = ReplayCache(model, load)
    autoscaler = candidate.make_autoscaler("replay", "replay")
    rules = candidate.prescale
    start = load.start
    first = max(candidate.min_replicas, _floor_at(rules, start)) if autoscaler else candidate.min_replicas
    pods = _Pods(model, first, candidate.warm_pool_nodes, start)
    base_min = candidate.min_replicas
    if autoscaler is not None:
        autoscaler.desired_replicas = first
    queue = last_queue = load_now = 0.0
    abandon_share = 1.0 - math.exp(-1.0 / CLIENT_PATIENCE_SECONDS)
    arrivals, arrived_before, minute_peak = load.arrivals, cache.arrived_before, cache.minute_peak
    warm_gpus = candidate.warm_pool_nodes * model.gpus_per_node
    per_replica = model.gpus_per_replica
    score = _Score(slo_ttft_p95_seconds)
    serving = cache.serving(0)
    polling = max(1, autoscaler.polling_interval_s) if autoscaler else 0
    next_eval = next_rule_check = start
    quiet = cache.quiet_stretches
    seconds = load.seconds
    i = 0
    while i < seconds:
        t = start + i
        if i % 60 == 0:
            serving = cache.serving(i // 60)
        if pods.launching or pods.starting or pods.pending:
            pods.tick(t)
        if rules and t >= next_rule_check:
            floor = _floor_at(rules, t)
            next_rule_check = t + 60
            if autoscaler is None:
                if max(base_min, floor) != pods.total:
                    pods.scale_to(max(base_min, floor), t)
            else:
                autoscaler.min_replicas = max(base_min, floor)
        if autoscaler is not None and t >= next_eval:
            next_eval = t + polling
            ready = pods.ready
            busy = 1.0 - math.exp(-2.5 * load_now)  # as capacity.serve reports utilization
            reading = Reading(
                current=pods.total,
                ready=ready,
                queue_depth=last_queue,
                gpu_utilization=min(1.0, 0.02 + 1.1 * busy) if ready else None,
                cpu_utilization=0.04 + 0.1 * load_now if ready else None,
            )
            wanted = autoscaler.evaluate(t, reading)
            if wanted != pods.total:
                pods.scale_to(wanted, t)
            pods.consolidate(t)
        elif autoscaler is None and i % 60 == 0:
            pods.consolidate(t)
        ready = pods.ready
        scored = i >= warmup_seconds
        if queue == 0.0 and ready and quiet:
            # A quiet stretch: up to the next event (minute, evaluation, pre-scale check, a node or
            # pod ready) or the first second beyond the ready replicas' capacity, served whole.
            minute = i // 60
            end = min(60 * minute + 60, seconds, i + 60 - (i - warmup_seconds) % 60 if scored else warmup_seconds)
            if autoscaler is not None:
                end = min(end, next_eval - start)
            if rules:
                end = min(end, next_rule_check - start)
            if pods.launching:
                end = min(end, pods.launching[0] - start)
            if pods.starting:
                end = min(end, pods.starting[0] - start)
            end = max(end, i + 1)  # a zero start time: its pod is Ready from the next second
            capacity = ready * serving.saturation
            if minute_peak[minute] > capacity:  # stop short of the stretch's first second beyond capacity
                end = next((k for k in range(i, end) if arrivals[k] > capacity), end)
            if end > i:
                last_queue = 0.0
                load_now = arrivals[end - 1] / capacity
                if scored:
                    weighted = cache.weighted(minute, ready)
                    arrived = arrived_before[end] - arrived_before[i]
                    score.weighted += weighted[end - 60 * minute] - weighted[i - 60 * minute]
                    score.served += arrived
                    score.arrived += arrived
                    score.served_total += arrived
                    score.gpu_seconds += ((len(pods.starting) + pods.ready) * per_replica + warm_gpus) * (end - i)
                    if (end - 1 - warmup_seconds) % 60 == 59:
                        score.close_minute(ready, pods.total)
                i = end
                continue
        backlog = queue + arrivals[i]
        abandoned = 0.0
        if ready:
            capacity = ready * serving.saturation
            if backlog <= capacity:
                served, wait = backlog, 0.0
                queue = 0.0
            else:
                served = capacity
                left = backlog - capacity
                wait = left / capacity
                abandoned = left * abandon_share * wait / (wait + 30.0)
                queue = left - abandoned
            load_now = served / capacity
            ttft = serving.ttft_p95(load_now, wait)
        else:
            served = load_now = 0.0
            abandoned = backlog * abandon_share
            queue = backlog - abandoned
        last_queue = queue
        if scored:
            score.gpu_seconds += (len(pods.starting) + pods.ready) * per_replica + warm_gpus
            score.arrived += arrivals[i]
            score.abandoned_total += abandoned
            if served > 0:
                score.weighted += ttft * served
                score.served += served
                score.served_total += served
            elif ready == 0 and arrivals[i] > 0:
                score.unserved = True
            if (i - warmup_seconds) % 60 == 59:
                score.close_minute(ready, pods.total)
        i += 1
    gpu_hours = score.gpu_seconds / 3600.0
    return Outcome(
        scored_minutes=score.scored,
        slo_violation_minutes=score.violations,
        gpu_hours=round(gpu_hours, 3),
        cost_usd=round(gpu_hours * model.price_per_gpu_hour_usd, 2),
        peak_replicas=score.peak,
        requests_served=round(score.served_total, 1),
        requests_abandoned=round(score.abandoned_total, 1),
        ready_per_minute=score.ready,
        ttft_p95_per_minute=score.ttft,
        desired_per_minute=score.desired,
    )
