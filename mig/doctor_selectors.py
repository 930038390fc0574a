"""The doctor's reads: every live deployment's checkup built in a fixed number of queries, and the
findings as rows (`{id, cluster, namespace, deployment, kind, severity, message, evidence}`)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db.models import Prefetch
from django.utils import timezone

from fleet.backends.base import DeploymentMetrics
from fleet.cold_start import deployment_cold_starts
from fleet.lint import COLD_START_SECONDS
from fleet.metrics import deployment_metrics
from fleet.mig import gpu_models
from fleet.models import Autoscaler, Cluster, GpuNode, ModelDeployment, Pod
from mig import doctor
from mig.memory import memory_need
from mig.models import FindingDismissal
from mig.planner import smallest_fitting_profile
from mig.selectors import memory_inputs

GPU_TAINT = "nvidia.com/gpu"


@dataclass(frozen=True)
class FindingRow:
    id: str  # "<deployment id>:<kind>"
    cluster: str
    namespace: str
    deployment: int
    deployment_name: str
    kind: str
    severity: str
    message: str
    evidence: dict
    dismissed: FindingDismissal | None = None


def _requests(pod: Pod, resource: str) -> int:
    try:
        return int((pod.gpu_requests or {}).get(resource, 0))
    except (TypeError, ValueError):
        return 0


def _free_units(nodes: list[GpuNode], resource: str) -> int:
    free = 0
    for node in nodes:
        try:
            allocatable = int((node.allocatable or {}).get(resource, 0))
        except (TypeError, ValueError):
            allocatable = 0
        used = sum(_requests(p, resource) for p in node.doctor_pods)
        free += max(allocatable - used, 0)
    return free


def _tainted(node: GpuNode) -> bool:
    return any(isinstance(t, dict) and t.get("key") == GPU_TAINT for t in node.taints or [])


def checkups(cluster: Cluster | None = None) -> list[tuple[ModelDeployment, doctor.DeploymentCheckup]]:
    deployments = (
        ModelDeployment.objects.alive()
        .select_related("cluster")
        .prefetch_related(
            Prefetch("autoscalers", queryset=Autoscaler.objects.alive(), to_attr="doctor_autoscalers"),
            Prefetch("pods", queryset=Pod.objects.alive(), to_attr="doctor_pods"),
        )
        .order_by("cluster__name", "namespace", "name")
    )
    nodes = (
        GpuNode.objects.alive()
        .select_related("node_pool")
        .prefetch_related(Prefetch("pods", queryset=Pod.objects.alive(), to_attr="doctor_pods"))
    )
    if cluster is not None:
        deployments, nodes = deployments.filter(cluster=cluster), nodes.filter(cluster=cluster)
    deployments, nodes = list(deployments), list(nodes)
    node_by_id = {n.id: n for n in nodes}
    pools: dict[int | None, list[GpuNode]] = defaultdict(list)
    for node in nodes:
        pools[node.node_pool_id].append(node)
    metrics = deployment_metrics(deployments) if deployments else {}
    cold_starts = deployment_cold_starts(deployments, now=timezone.now()) if deployments else {}
    result = []
    for d in deployments:
        placed = [node_by_id[p.node_id] for p in d.doctor_pods if p.node_id in node_by_id]
        own_pools = {n.node_pool_id for n in placed}
        pool_nodes = [n for pool in own_pools for n in pools[pool]]
        products = Counter(n.gpu_product for n in placed if n.gpu_product)
        product = products.most_common(1)[0][0] if products else ""
        device = max((n.gpu_memory_mib for n in placed), default=0) or None
        need = memory_need(memory_inputs(d, device_memory_mib=device))
        model = gpu_models().get(product)
        fitting = smallest_fitting_profile(model, need.per_gpu_mib) if model and need.per_gpu_mib else None
        shared = Counter(p.node_id for p in d.doctor_pods if p.node_id)
        consolidating = sorted(
            {
                (n.node_pool.name, n.node_pool.consolidation_policy)
                for n in placed
                if n.node_pool and n.node_pool.consolidation_policy in doctor.CONSOLIDATING
            }
        )
        waiting = sum(1 for p in d.doctor_pods if not p.node_id and p.phase in ("Pending", ""))
        tainted = [n for n in nodes if n.cluster_id == d.cluster_id and _tainted(n)]
        # Liveness counts from the container's start: what matters is the weights' load time.
        load = cold_starts[d.id].load_p95_seconds if d.id in cold_starts else None
        result.append(
            (
                d,
                doctor.DeploymentCheckup(
                    gpu_resource=d.gpu_resource,
                    gpu_per_replica=d.gpu_per_replica,
                    tensor_parallel=d.tensor_parallel,
                    replicas_desired=d.replicas_desired,
                    liveness_initial_delay_seconds=d.liveness_initial_delay_seconds,
                    termination_grace_seconds=d.termination_grace_seconds,
                    max_unavailable=d.max_unavailable,
                    max_surge=d.max_surge,
                    autoscalers=tuple(a.facts() for a in d.doctor_autoscalers),
                    cold_start_seconds=math.ceil(load) if load else COLD_START_SECONDS,
                    cold_start_measured=bool(load),
                    e2e_p95_seconds=(metrics.get(d.id) or DeploymentMetrics()).e2e_p95_seconds,
                    e2e_p99_seconds=(metrics.get(d.id) or DeploymentMetrics()).e2e_p99_seconds,
                    gpu_memory_utilization=d.gpu_memory_utilization,
                    need_per_gpu_mib=need.per_gpu_mib,
                    device_memory_mib=device,
                    fitting_profile=fitting,
                    consolidating_pools=tuple(consolidating),
                    spare_units=_free_units(pool_nodes, d.gpu_resource) if pool_nodes and d.gpu_resource else None,
                    pods_waiting_for_node=waiting,
                    free_units_on_tainted_nodes=_free_units(tainted, d.gpu_resource)
                    if waiting and d.gpu_resource
                    else 0,
                    shared_nodes=tuple(
                        sorted((node_by_id[i].name, n) for i, n in shared.items() if n > 1 and i in node_by_id)
                    ),
                    tolerates_gpu_taint=d.tolerates_gpu_taint,
                    spreads_across_nodes=d.spreads_across_nodes,
                    has_pre_stop=d.has_pre_stop,
                    tainted_gpu_nodes=len(tainted),
                ),
            )
        )
    return result


def finding_rows(
    *, cluster: Cluster | None = None, kind: str | None = None, dismissed: bool = False
) -> list[FindingRow]:
    """Findings of every live deployment; dismissed ones only when `dismissed` (then only them)."""
    dismissals = {(x.deployment_id, x.kind): x for x in FindingDismissal.objects.all()}
    rows = []
    for deployment, checkup in checkups(cluster):
        for f in doctor.examine(checkup):
            if kind and f.kind != kind:
                continue
            dismissal = dismissals.get((deployment.id, f.kind))
            if bool(dismissal) != dismissed:
                continue
            rows.append(
                FindingRow(
                    f"{deployment.id}:{f.kind}",
                    deployment.cluster.name,
                    deployment.namespace,
                    deployment.id,
                    deployment.name,
                    f.kind,
                    f.severity,
                    f.message,
                    f.evidence,
                    dismissal,
                )
            )
    return rows
