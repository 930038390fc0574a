"""The configuration doctor: the field guide's "Common Mistakes" and the traps ScaleDeck knows,
one stable `kind` each, with the evidence and the fix. Pure: facts in, findings out.

Kinds (stable: the API, dismissals and bots key on them): cpu_hpa_target, liveness_delay_short,
termination_grace_short, max_unavailable, no_surge_headroom, gpu_memory_overrequest,
hpa_and_scaledobject, missing_gpu_toleration, consolidation_on_serving_pool,
tp_without_anti_affinity.

Tolerations, anti-affinity and the preStop hook are read from the pod template. Where a backend
does not say (None), they are inferred from what is observed: a missing GPU toleration shows as
pods waiting for a node while tainted GPU nodes have room for them; missing anti-affinity as two
replicas of a tensor-parallel model on one node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fleet.autoscalers import ReplicaOwnerKind, replica_owner, short_name
from fleet.backends.base import AutoscalerFacts
from fleet.lint import effective_max_unavailable

KINDS = (
    "cpu_hpa_target",
    "liveness_delay_short",
    "termination_grace_short",
    "max_unavailable",
    "no_surge_headroom",
    "gpu_memory_overrequest",
    "hpa_and_scaledobject",
    "missing_gpu_toleration",
    "consolidation_on_serving_pool",
    "tp_without_anti_affinity",
)
SAFE_GRACE_SECONDS = 600
OVERREQUEST_UTILIZATION = 0.9  # above it, vLLM holds (nearly) the whole GPU
CONSOLIDATING = ("WhenEmptyOrUnderutilized", "WhenUnderutilized")
_CPU = re.compile(r"\bcpu\b", re.IGNORECASE)


@dataclass(frozen=True)
class DeploymentCheckup:
    """What the doctor knows of one deployment."""

    gpu_resource: str = ""
    gpu_per_replica: int = 0
    tensor_parallel: int = 1
    replicas_desired: int = 1
    liveness_initial_delay_seconds: int | None = None
    termination_grace_seconds: int | None = None
    max_unavailable: str = ""
    max_surge: str = ""
    autoscalers: tuple[AutoscalerFacts, ...] = ()
    cold_start_seconds: int = 120
    cold_start_measured: bool = False
    e2e_p95_seconds: float | None = None
    e2e_p99_seconds: float | None = None  # preferred: the longest generations
    gpu_memory_utilization: float | None = None
    need_per_gpu_mib: int | None = None
    device_memory_mib: int | None = None
    fitting_profile: str | None = None  # the MIG slice its need fits, on its GPU model
    consolidating_pools: tuple[tuple[str, str], ...] = ()  # (pool, policy) of pools holding its pods
    spare_units: int | None = None  # free units of its GPU resource in the pools it runs in
    pods_waiting_for_node: int = 0
    free_units_on_tainted_nodes: int = 0
    shared_nodes: tuple[tuple[str, int], ...] = ()  # (node, replicas on it) where more than one sit
    # Read from the pod template (None: not known, then the doctor infers from where pods sit).
    tolerates_gpu_taint: bool | None = None
    spreads_across_nodes: bool | None = None
    has_pre_stop: bool | None = None
    tainted_gpu_nodes: int = 0  # GPU nodes of its cluster tainted nvidia.com/gpu


@dataclass(frozen=True)
class DoctorFinding:
    kind: str
    severity: str  # "warning" | "error"
    message: str
    evidence: dict = field(default_factory=dict)


def examine(c: DeploymentCheckup) -> list[DoctorFinding]:
    """Every finding for one deployment, in the order of KINDS."""
    found: list[DoctorFinding] = []
    gpu = bool(c.gpu_resource) and c.gpu_per_replica > 0
    owner = replica_owner("", c.autoscalers)
    scalers = owner.claimants
    if gpu:
        for a in scalers:
            if _CPU.search(a.metric or ""):
                found.append(
                    DoctorFinding(
                        "cpu_hpa_target",
                        "warning",
                        f"{short_name(a)} scales GPU pods on CPU ({a.metric}): CPU says little about a GPU-bound "
                        "server; scale on queue depth (vllm:num_requests_waiting)",
                        {"autoscaler": a.name, "metric": a.metric},
                    )
                )
        delay = c.liveness_initial_delay_seconds
        if delay is not None and delay < 2 * c.cold_start_seconds:
            source = "measured" if c.cold_start_measured else "assumed (not measured yet)"
            found.append(
                DoctorFinding(
                    "liveness_delay_short",
                    "warning",
                    f"the liveness probe starts after {delay} s, under twice the {source} cold start of "
                    f"{c.cold_start_seconds} s: the kubelet restarts pods still loading weights; set "
                    f"initialDelaySeconds to {2 * c.cold_start_seconds} s or more",
                    {
                        "liveness_initial_delay_seconds": delay,
                        "cold_start_seconds": c.cold_start_seconds,
                        "cold_start_measured": c.cold_start_measured,
                    },
                )
            )
        grace = c.termination_grace_seconds
        longest = c.e2e_p99_seconds if c.e2e_p99_seconds is not None else c.e2e_p95_seconds
        quantile = "p99" if c.e2e_p99_seconds is not None else "p95"
        too_short = longest is not None and grace is not None and grace < longest
        unguarded = grace is not None and grace < SAFE_GRACE_SECONDS and c.has_pre_stop is not True
        if too_short or unguarded:
            if too_short:
                why = f"shorter than its longest generations (end-to-end {quantile} {longest:.0f} s)"
            elif c.has_pre_stop is False:
                why = f"under {SAFE_GRACE_SECONDS} s and the server has no preStop hook"
            else:
                why = f"under {SAFE_GRACE_SECONDS} s"
            found.append(
                DoctorFinding(
                    "termination_grace_short",
                    "warning",
                    f"terminationGracePeriodSeconds is {grace} s, {why}: generations still running are cut off on "
                    f"scale-down and rollout; use {SAFE_GRACE_SECONDS} s with a preStop sleep",
                    {
                        "termination_grace_seconds": grace,
                        f"e2e_{quantile}_seconds": longest,
                        "pre_stop_hook": c.has_pre_stop,
                    },
                )
            )
        down = effective_max_unavailable(c.max_unavailable, c.replicas_desired)
        if down is not None and down > 0:
            found.append(
                DoctorFinding(
                    "max_unavailable",
                    "warning",
                    f"maxUnavailable {c.max_unavailable} lets a rollout take {down} of {c.replicas_desired} replicas "
                    "down while new pods spend minutes loading weights; use maxUnavailable 0, maxSurge 1",
                    {"max_unavailable": c.max_unavailable, "replicas": c.replicas_desired, "pods_down": down},
                )
            )
        surge = effective_max_unavailable(c.max_surge, c.replicas_desired)  # same rounding rule for a count
        if surge and surge > 0 and c.spare_units is not None and c.spare_units < c.gpu_per_replica:
            found.append(
                DoctorFinding(
                    "no_surge_headroom",
                    "warning",
                    f"a rollout's surge pod needs {c.gpu_per_replica} {c.gpu_resource}, and its node pools have "
                    f"{c.spare_units} free: the rollout waits for a new node (or hangs at the pool's limit); keep "
                    "one replica's GPUs spare or raise the pool's limit",
                    {"needed": c.gpu_per_replica, "free": c.spare_units, "resource": c.gpu_resource},
                )
            )
        utilization = c.gpu_memory_utilization
        if (
            c.gpu_resource == "nvidia.com/gpu"
            and utilization is not None
            and utilization > OVERREQUEST_UTILIZATION
            and c.fitting_profile
            and c.need_per_gpu_mib
        ):
            held = int(utilization * c.device_memory_mib) if c.device_memory_mib else None
            found.append(
                DoctorFinding(
                    "gpu_memory_overrequest",
                    "warning",
                    f"--gpu-memory-utilization {utilization:g} holds "
                    f"{f'{held / 1024:.0f} GiB' if held else 'the whole GPU'} for a model needing "
                    f"{c.need_per_gpu_mib / 1024:.1f} GiB, which fits a {c.fitting_profile} MIG slice: plan MIG for "
                    "its pool, or lower the utilization",
                    {
                        "gpu_memory_utilization": utilization,
                        "need_mib": c.need_per_gpu_mib,
                        "held_mib": held,
                        "fits": c.fitting_profile,
                    },
                )
            )
    kinds = {a.kind for a in scalers}
    if owner.kind == ReplicaOwnerKind.CONFLICT:
        names = ", ".join(short_name(a) for a in scalers)
        both = kinds == {ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA}
        found.append(
            DoctorFinding(
                "hpa_and_scaledobject",
                "error",
                f"{names} all target this Deployment and overwrite each other's replicas; keep "
                f"{'the ScaledObject (KEDA makes its own HPA)' if both else 'one'}",
                {"autoscalers": [a.name for a in scalers]},
            )
        )
    if gpu and c.tolerates_gpu_taint is False and c.tainted_gpu_nodes:
        found.append(
            DoctorFinding(
                "missing_gpu_toleration",
                "error",
                f"its pod template has no toleration for the nvidia.com/gpu taint that {c.tainted_gpu_nodes} GPU "
                f"node{'s' if c.tainted_gpu_nodes != 1 else ''} of the cluster carry: new pods cannot land there; add "
                "key nvidia.com/gpu, operator Exists, effect NoSchedule",
                {
                    "tolerates_gpu_taint": False,
                    "tainted_gpu_nodes": c.tainted_gpu_nodes,
                    "pods_waiting": c.pods_waiting_for_node,
                },
            )
        )
    elif (
        gpu
        and c.tolerates_gpu_taint is None
        and c.pods_waiting_for_node
        and c.free_units_on_tainted_nodes >= c.gpu_per_replica
    ):
        found.append(
            DoctorFinding(
                "missing_gpu_toleration",
                "error",
                f"{c.pods_waiting_for_node} pod(s) wait for a node while GPU nodes tainted nvidia.com/gpu have "
                f"{c.free_units_on_tainted_nodes} free {c.gpu_resource}: its pods likely lack the toleration "
                "(key nvidia.com/gpu, operator Exists, effect NoSchedule)",
                {"pods_waiting": c.pods_waiting_for_node, "free_on_tainted_nodes": c.free_units_on_tainted_nodes},
            )
        )
    if gpu:
        for pool, policy in c.consolidating_pools:
            found.append(
                DoctorFinding(
                    "consolidation_on_serving_pool",
                    "warning",
                    f"Karpenter consolidates node pool {pool} ({policy}) while it serves this model: it evicts "
                    "replicas to repack nodes and each comes back after a cold start; use WhenEmpty, or a "
                    "do-not-disrupt annotation on the pods",
                    {"node_pool": pool, "consolidation_policy": policy},
                )
            )
        if c.tensor_parallel > 1 and c.spreads_across_nodes is False:
            where = ", ".join(f"{n} replicas on {node}" for node, n in c.shared_nodes)
            found.append(
                DoctorFinding(
                    "tp_without_anti_affinity",
                    "warning",
                    f"replicas of this tensor-parallel model (tensor parallel {c.tensor_parallel}) may share a node"
                    f"{f' ({where})' if where else ''}: one node lost takes several replicas; add a required "
                    "podAntiAffinity on kubernetes.io/hostname",
                    {"spreads_across_nodes": False, "shared_nodes": dict(c.shared_nodes)},
                )
            )
        elif c.tensor_parallel > 1 and c.spreads_across_nodes is None and c.shared_nodes:
            where = ", ".join(f"{n} replicas on {node}" for node, n in c.shared_nodes)
            found.append(
                DoctorFinding(
                    "tp_without_anti_affinity",
                    "warning",
                    f"replicas of this tensor-parallel model share nodes ({where}): one node lost takes several "
                    "replicas; add a required podAntiAffinity on kubernetes.io/hostname",
                    {"shared_nodes": dict(c.shared_nodes)},
                )
            )
    return found
