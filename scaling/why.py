"""Why a deployment runs this many replicas, and what blocks more right now. Pure.

The deployment page's "why this many replicas" panel and the API's `scaling` block read this.
Facts come from the last sync (autoscaler bounds, pin, pause), active overrides (floors),
the current metrics, the namespace quota and the capacity fit of one more replica; this module
only decides which bound binds and says each blocker in the user's words.

The replicas the metric implies follow the HPA's formula: a per-replica target on a summed
metric (the queue, KEDA's AverageValue) asks for ceil(total / target) replicas; an average
(GPU or KV cache utilisation) asks for ceil(ready * average / target).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

# The metric the autoscaler's summary names -> (DeploymentMetrics attribute, summed over pods?)
_METRIC_SOURCES = (
    ("num_requests_waiting", "queue_depth", True),
    ("queue", "queue_depth", True),
    ("num_requests_running", "running", True),
    ("cache_usage", "kv_cache_usage", False),
    ("kv_cache", "kv_cache_usage", False),
    ("dcgm_fi_dev_gpu_util", "gpu_utilization", False),
    ("gpu_util", "gpu_utilization", False),
)
_THRESHOLD = re.compile(r"(?:(?<!-)>|\bavg)\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)")


@dataclass(frozen=True)
class MetricTarget:
    attribute: str | None  # the DeploymentMetrics attribute it reads, None: not one ScaleDeck measures
    summed: bool
    target_value: float | None  # as a fraction when the summary says a percentage


def metric_target(summary: str) -> MetricTarget:
    """The first trigger of the autoscaler's metric summary ("prometheus: vllm:num_requests_waiting > 5")."""
    first = summary.split(";")[0].lower()
    attribute, summed = None, True
    for needle, attr, is_sum in _METRIC_SOURCES:
        if needle in first:
            attribute, summed = attr, is_sum
            break
    match = _THRESHOLD.search(first)
    target = None
    if match:
        target = float(match.group(1)) / (100 if match.group(2) else 1)
        if attribute in ("kv_cache_usage", "gpu_utilization") and not match.group(2) and target > 1:
            target /= 100  # "DCGM_FI_DEV_GPU_UTIL > 80": a percentage without its sign
    return MetricTarget(attribute=attribute, summed=summed, target_value=target if target else None)


@dataclass(frozen=True)
class ScalingFacts:
    """Everything the decision needs, read by scaling/services/why.py."""

    metric: str  # the autoscaler's metric in words, "" without one
    metric_value: float | None
    target_value: float | None
    metric_summed: bool
    desired: int
    ready: int
    min_replicas: int | None  # the autoscaler's bounds; None without an autoscaler
    max_replicas: int | None
    floor: int | None = None  # the highest active floor override
    pinned: int | None = None  # a pin (KEDA paused-replicas, an HPA with min = max, a pin override)
    paused: bool = False  # KEDA autoscaling paused
    conflict: str = ""  # several autoscalers fight over the replicas
    gpu_per_replica: int = 0
    gpu_resource: str = ""
    quota_name: str = ""
    quota_left: int | None = None  # GPUs the namespace quota has left; None: no quota on the resource
    fits_now: bool | None = None  # one more replica fits on a free GPU now; None: unknown
    device: str = "GPU"  # the needed device in words ("NVIDIA-A100 GPU", "MIG 3g.40gb slice")
    pool: str | None = None  # the pool new nodes would come from
    pool_limit_allows: bool | None = None
    pool_offers: bool = True  # some pool launches nodes with the device
    stabilizing_until: str = ""  # "03:07 UTC": the last rescale's stabilization window ends then
    pending_replicas: int = 0  # desired but not ready


@dataclass(frozen=True)
class ScalingWhy:
    metric: str | None
    metric_value: float | None
    target_value: float | None
    implied_replicas: int | None
    min_replicas: int | None
    max_replicas: int | None
    floor: int | None
    pinned: int | None
    binding: str  # autoscaler | max | min | floor | pin | paused | quota | capacity | manual
    blockers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def implied_replicas(facts: ScalingFacts) -> int | None:
    if facts.metric_value is None or not facts.target_value:
        return None
    if facts.metric_summed:
        return max(math.ceil(facts.metric_value / facts.target_value - 1e-9), 0)
    return max(math.ceil(max(facts.ready, 1) * facts.metric_value / facts.target_value - 1e-9), 0)


def _blockers(f: ScalingFacts, implied: int | None) -> list[str]:
    """What stops one more replica now, each in one plain sentence."""
    out = []
    if f.conflict:
        out.append(f.conflict)
    if f.paused:
        out.append("Autoscaling is paused" + (f" at {f.pinned} replicas" if f.pinned is not None else "") + ".")
    elif f.pinned is not None:
        out.append(f"Pinned at {f.pinned} replicas: the autoscaler cannot move them.")
    if f.max_replicas is not None and f.desired >= f.max_replicas:
        out.append(f"Maximum reached: {f.desired} of at most {f.max_replicas} replicas.")
    if f.quota_left is not None and f.gpu_per_replica and f.quota_left < f.gpu_per_replica:
        out.append(
            f"Namespace quota {f.quota_name} has {max(f.quota_left, 0)} {f.gpu_resource} left; "
            f"one more replica needs {f.gpu_per_replica}."
        )
    if f.fits_now is False:
        if not f.pool_offers:
            out.append(f"No free {f.device} now, and no node pool launches nodes with one.")
        elif f.pool_limit_allows is False:
            out.append(f"No free {f.device} now, and node pool {f.pool} has reached its GPU limit.")
        else:
            out.append(
                f"No free {f.device} now: one more replica waits for a new node"
                + (f" from pool {f.pool}." if f.pool else ".")
            )
    if f.stabilizing_until and implied is not None and implied < f.desired:
        out.append(f"Stabilization window: the autoscaler keeps {f.desired} replicas until {f.stabilizing_until}.")
    return out


def scaling_why(f: ScalingFacts) -> ScalingWhy:
    """Which bound sets the replicas now (`binding`) and what blocks more (`blockers`).

    Order of precedence follows who wins in the cluster: a pause or pin overrides everything, the
    autoscaler's max caps the metric's ask, a floor (override, rule or min) raises it; then, with
    the replicas asked for but not all Ready, the quota or the GPUs are what binds.
    """
    implied = implied_replicas(f)
    blockers = _blockers(f, implied)
    if f.pinned is not None:
        binding = "pin"
    elif f.paused:
        binding = "paused"
    elif f.min_replicas is None and f.max_replicas is None:
        binding = "manual"
    elif implied is not None and f.max_replicas is not None and implied > f.max_replicas:
        binding = "max"
    elif f.floor is not None and (implied is None or f.floor >= implied) and f.floor >= (f.min_replicas or 0):
        binding = "floor"
    elif f.min_replicas is not None and implied is not None and implied < f.min_replicas:
        binding = "min"
    else:
        binding = "autoscaler"
    if binding in ("autoscaler", "max", "floor", "min") and f.pending_replicas > 0:
        if f.quota_left is not None and f.gpu_per_replica and f.quota_left < f.gpu_per_replica:
            binding = "quota"
        elif f.fits_now is False:
            binding = "capacity"
    return ScalingWhy(
        metric=f.metric or None,
        metric_value=f.metric_value,
        target_value=f.target_value,
        implied_replicas=implied,
        min_replicas=f.min_replicas,
        max_replicas=f.max_replicas,
        floor=f.floor,
        pinned=f.pinned,
        binding=binding,
        blockers=blockers,
    )
