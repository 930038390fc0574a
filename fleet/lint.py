"""Configuration lint for the known traps of serving LLMs on Kubernetes. Pure: values in, findings out.

Each rule is one of the failure modes the field guide warns about: a liveness probe that kills
a pod still loading its weights, a 30 s termination grace that cuts generations off mid-answer,
a rollout that drops half of a two-replica service while the new pod takes minutes to load,
an HPA scaling GPU pods on CPU, and two autoscalers fighting over one Deployment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fleet.autoscalers import ReplicaOwnerKind, replica_owner, short_name
from fleet.backends.base import AutoscalerFacts

# A vLLM replica needs minutes before it can serve (image pull + loading weights). Two minutes
# is the floor for a small model on a warm node; probes shorter than that restart-loop.
COLD_START_SECONDS = 120
# Generations run 30-120 s; Kubernetes' default grace (30 s) SIGKILLs them on scale-down.
MIN_TERMINATION_GRACE_SECONDS = 60
_CPU_METRIC = re.compile(r"\bcpu\b", re.IGNORECASE)


@dataclass(frozen=True)
class DeploymentShape:
    gpu_resource: str = ""
    gpu_per_replica: int = 0
    replicas_desired: int = 1
    liveness_initial_delay_seconds: int | None = None  # None: no probe, or not known
    termination_grace_seconds: int | None = None  # None: not known
    max_unavailable: str = ""  # as written: "1", "25%", "" (unknown)
    autoscalers: tuple[AutoscalerFacts, ...] = ()  # the live ones targeting the Deployment


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "warning" | "error"
    message: str


def effective_max_unavailable(value: str, replicas: int) -> int | None:
    """Pods a rollout may take down: an absolute number, or a percentage rounded down (as Kubernetes does)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        if value.endswith("%"):
            return math.floor(float(value[:-1]) * replicas / 100)
        return int(value)
    except ValueError:
        return None


def lint_deployment(
    shape: DeploymentShape, *, cold_start_seconds: int = COLD_START_SECONDS, load_p95_seconds: float | None = None
) -> list[Finding]:
    """Findings for one deployment. `load_p95_seconds` is the measured p95 of container start ->
    Ready (fleet/cold_start.py): when known, the liveness probe must wait twice that; without
    history the fixed `cold_start_seconds` floor applies."""
    findings: list[Finding] = []
    uses_gpu = bool(shape.gpu_resource) and shape.gpu_per_replica > 0
    owner = replica_owner("", shape.autoscalers)

    if owner.kind == ReplicaOwnerKind.CONFLICT:
        names = ", ".join(short_name(a) for a in owner.conflicts)
        findings.append(
            Finding(
                "autoscaler-conflict",
                "error",
                f"conflict: {names} all target this Deployment and overwrite each other's replicas; keep one",
            )
        )

    if uses_gpu:
        delay = shape.liveness_initial_delay_seconds
        if load_p95_seconds is not None:
            needed = math.ceil(2 * load_p95_seconds)
            if delay is not None and delay < needed:
                findings.append(
                    Finding(
                        "liveness-before-cold-start",
                        "warning",
                        f"liveness probe starts after {delay} s, but loading the model takes {load_p95_seconds:.0f} s "
                        f"(p95 measured over 7 days): the kubelet restarts pods still loading weights; "
                        f"use at least {needed} s (2x the measured load time)",
                    )
                )
        elif delay is not None and delay < cold_start_seconds:
            findings.append(
                Finding(
                    "liveness-before-cold-start",
                    "warning",
                    f"liveness probe starts after {delay} s, before a {cold_start_seconds // 60}-min cold start "
                    "ends: the kubelet restarts pods still loading weights; use 2x the measured cold start",
                )
            )

        grace = shape.termination_grace_seconds
        if grace is not None and grace < MIN_TERMINATION_GRACE_SECONDS:
            findings.append(
                Finding(
                    "short-termination-grace",
                    "warning",
                    f"terminationGracePeriodSeconds is {grace} s: generations still running are cut off on "
                    "scale-down and rollout; use ~600 s with a preStop sleep",
                )
            )

        down = effective_max_unavailable(shape.max_unavailable, shape.replicas_desired)
        if down is not None and down >= 1 and 1 <= shape.replicas_desired <= 2:
            findings.append(
                Finding(
                    "rollout-drops-capacity",
                    "warning",
                    f"maxUnavailable {shape.max_unavailable} with {shape.replicas_desired} "
                    f"replica{'s' if shape.replicas_desired != 1 else ''}: a rollout removes serving capacity "
                    "for minutes while the new pod loads; use maxUnavailable 0, maxSurge 1",
                )
            )

        cpu_scalers = [a for a in owner.claimants if _CPU_METRIC.search(a.metric or "")]
        for a in cpu_scalers:
            findings.append(
                Finding(
                    "cpu-autoscaler-on-gpu",
                    "warning",
                    f"{short_name(a)} scales GPU pods on CPU "
                    f"({a.metric}): CPU says little about a GPU-bound server; scale on queue depth",
                )
            )
    return findings
