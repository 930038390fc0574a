"""The replica controllers: KEDA on queue depth, HPA on GPU or CPU utilization.

Both follow the HPA algorithm, because a KEDA ScaledObject drives an HPA underneath:
desired = ceil(metric / target) for an average-value target (KEDA: total queue / target per
replica) or ceil(ready * utilization / target) for a utilization target, left alone within a
10% tolerance, scaled up at most to max(2x, +4) per evaluation, and scaled down only to the
highest recommendation of the stabilization window (the default 300 s keeps a deployment from
flapping down and straight back up). KEDA reads its metric every pollingInterval (as with
`useCachedMetrics`) and goes to zero only after `cooldownPeriod` without activity.

Pods without metrics yet (pending, or loading their weights) count as the HPA counts them: at
the whole target on the way down, at nothing on the way up
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details).

A "pre-scale floor" is not a separate controller: it is a raised `min_replicas`.
A KEDA `paused_replicas` pins the deployment and stops evaluation, as the annotation does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

KEDA = "keda"
HPA = "hpa"
METRICS = {
    "queue_depth": "vllm:num_requests_waiting",
    # avg(vllm:num_requests_waiting): the query averages over pods, and KEDA's AverageValue then
    # divides that average by the threshold again, so it asks for fewer replicas than the sum.
    "queue_depth_avg": "avg(vllm:num_requests_waiting)",
    "gpu_utilization": "DCGM_FI_DEV_GPU_UTIL",
    "cpu_utilization": "cpu",
}
TOLERANCE = 0.1


@dataclass(frozen=True)
class Reading:
    """What the controller sees of its target at an evaluation (the previous step's metrics)."""

    current: int  # spec.replicas
    ready: int
    queue_depth: float
    gpu_utilization: float | None  # mean over ready pods, None without ready pods
    cpu_utilization: float | None


@dataclass
class Autoscaler:
    kind: str  # "keda" | "hpa"
    namespace: str
    name: str
    target: str  # the Deployment's name
    min_replicas: int
    max_replicas: int
    metric: str = "queue_depth"  # a key of METRICS
    target_value: float = 5.0  # per replica: queue depth, or a 0-1 utilization
    polling_interval_s: int = 30
    cooldown_s: int = 300
    scale_down_stabilization_s: int = 300
    # HPA behavior.scaleDown policy "Pods": remove at most this many pods per period (None: no limit)
    scale_down_max_pods: int | None = None
    scale_down_period_s: int = 60
    paused_replicas: int | None = None
    resource_version: int = 0
    desired_replicas: int | None = None  # status
    last_evaluated: int | None = None
    last_active: int | None = None
    last_scale: int | None = None
    last_scale_down: int | None = None
    recommendations: list[list[int]] = field(default_factory=list)  # [t, replicas], newest last

    def summary(self) -> str:
        """The metric in words, as a dashboard row shows it."""
        if self.metric in ("queue_depth", "queue_depth_avg"):
            return f"{METRICS[self.metric]} > {self.target_value:g} per replica"
        return f"{METRICS.get(self.metric, self.metric)} avg {self.target_value * 100:.0f}%"

    def due(self, t: int) -> bool:
        return self.last_evaluated is None or t - self.last_evaluated >= self.polling_interval_s

    def evaluate(self, t: int, reading: Reading) -> int:
        """Desired replicas at time t. Records the recommendation; the caller applies it."""
        self.last_evaluated = t
        if self.paused_replicas is not None:
            return self.paused_replicas
        current = reading.current
        raw = self._raw_recommendation(t, reading)
        raw = max(self.min_replicas, min(self.max_replicas, raw))
        if current > 0:
            raw = min(raw, max(2 * current, current + 4))
        window = self.scale_down_stabilization_s
        recommendations = self.recommendations  # oldest first: the stale ones are a prefix
        stale = 0
        while stale < len(recommendations) and t - recommendations[stale][0] >= window:
            stale += 1
        del recommendations[:stale]
        recommendations.append([t, raw])
        desired = raw
        if raw < current:
            desired = min(current, max(r[1] for r in self.recommendations))
            if self.scale_down_max_pods is not None and desired < current:
                recently = self.last_scale_down is not None and t - self.last_scale_down < self.scale_down_period_s
                desired = current if recently else max(desired, current - self.scale_down_max_pods)
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        if desired < current:
            self.last_scale_down = t
        return desired

    def _raw_recommendation(self, t: int, reading: Reading) -> int:
        current = reading.current
        if self.metric in ("queue_depth", "queue_depth_avg"):
            value = reading.queue_depth
            if self.metric == "queue_depth_avg":
                value /= max(1, reading.ready)
            if value > 0:
                self.last_active = t
            if current == 0:
                return 1 if value > 0 else 0
            if abs(value / (self.target_value * current) - 1.0) <= TOLERANCE:
                return current
            raw = math.ceil(value / self.target_value)
            if raw == 0 and self.last_active is not None and t - self.last_active < self.cooldown_s:
                return 1  # KEDA keeps one replica until the cooldown since the last activity
            return raw
        value = reading.gpu_utilization if self.metric == "gpu_utilization" else reading.cpu_utilization
        if value is None or reading.ready == 0:
            return current  # no metrics: hold, never scale down blind
        ratio = value / self.target_value
        if abs(ratio - 1.0) <= TOLERANCE:
            return current
        starting = max(0, current - reading.ready)  # no metrics yet (pending, or loading weights)
        if ratio < 1.0 and starting:
            # The HPA's rule for pods without metrics: on the way down they count as using the
            # whole target, which damps the scale down without blocking it (pending pods that
            # can never be placed would otherwise hold the deployment at its peak for ever).
            ratio = (reading.ready * ratio + starting) / current
            if abs(ratio - 1.0) <= TOLERANCE:
                return current
            return math.ceil(ratio * current)
        raw = math.ceil(reading.ready * ratio)
        # On the way up they count as using nothing: a scale up the starting pods already cover
        # asks for no more (fewer than current: hold).
        return max(raw, current) if starting else raw

    def to_dict(self) -> dict:
        return asdict(self)  # asdict copies the recommendation lists

    @classmethod
    def from_dict(cls, d: dict) -> Autoscaler:
        d = dict(d, recommendations=[list(r) for r in d["recommendations"]])
        return cls(**d)
