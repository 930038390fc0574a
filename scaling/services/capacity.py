"""The inputs of `scaling.capacity.capacity_fit` from the last sync and the stored events.

The GPU a deployment needs is the model of the nodes its pods run on (or ran on); free devices
are a node's allocatable of the deployment's resource minus what its live pods request; a pool
offers the device when one of its nodes has it. A bounded number of queries, whatever the
cluster's size.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from fleet.backends.base import GPU_RESOURCE, MIG_RESOURCE_PREFIX
from fleet.cold_start import deployment_cold_starts, node_starts
from fleet.models import GpuNode, ModelDeployment, Pod
from scaling.capacity import CapacityFit, PoolOffer, capacity_fit


def deployment_capacity_fit(*, deployment: ModelDeployment, extra_replicas: int) -> CapacityFit:
    """Where `extra_replicas` more replicas of the deployment would run, and when they would be Ready."""
    resource, per_replica = deployment.gpu_resource, deployment.gpu_per_replica
    now = timezone.now()
    cold = deployment_cold_starts([deployment], now=now)[deployment.id]
    on_node = None
    if cold.pull_p95_seconds is not None and cold.load_p95_seconds is not None:
        on_node = cold.pull_p95_seconds + cold.load_p95_seconds
    products = set(
        Pod.objects.filter(deployment=deployment, node__isnull=False)
        .exclude(node__gpu_product="")
        .values_list("node__gpu_product", flat=True)
        .distinct()
    )
    nodes = list(
        GpuNode.objects.alive()
        .filter(cluster_id=deployment.cluster_id, ready=True)
        .select_related("node_pool")
        .only(
            "id",
            "name",
            "gpu_product",
            "gpu_count",
            "capacity",
            "allocatable",
            "unschedulable",
            "node_pool__name",
            "node_pool__gpu_limit",
        )
    )
    if products:
        nodes = [n for n in nodes if n.gpu_product in products]
    nodes = [n for n in nodes if (n.allocatable or {}).get(resource, 0) > 0]
    requested: dict[int, int] = defaultdict(int)
    for node_id, requests in (
        Pod.objects.alive()
        .filter(node_id__in=[n.id for n in nodes])
        .exclude(phase__in=("Succeeded", "Failed"))
        .values_list("node_id", "gpu_requests")
    ):
        requested[node_id] += int((requests or {}).get(resource, 0))
    free = [max(0, n.allocatable[resource] - requested[n.id]) for n in nodes if not n.unschedulable]
    starts = node_starts(cluster_ids=[deployment.cluster_id], now=now)
    pools: dict[str, PoolOffer] = {}
    in_use: dict[str, int] = defaultdict(int)
    all_pool_nodes = GpuNode.objects.alive().filter(cluster_id=deployment.cluster_id, node_pool__isnull=False)
    for name, count in all_pool_nodes.values_list("node_pool__name", "gpu_count"):
        in_use[name] += count
    for n in nodes:
        if n.node_pool is None or n.node_pool.name in pools:
            continue
        start = starts.get((deployment.cluster_id, n.node_pool.name))
        pools[n.node_pool.name] = PoolOffer(
            name=n.node_pool.name,
            units_per_node=int((n.capacity or {}).get(resource, 0)),
            gpus_per_node=n.gpu_count,
            gpu_limit=n.node_pool.gpu_limit,
            gpus_in_use=in_use[n.node_pool.name],
            node_ready_p95_seconds=start.p95_seconds if start else None,
        )
    if resource.startswith(MIG_RESOURCE_PREFIX):
        what = f"MIG {resource.removeprefix(MIG_RESOURCE_PREFIX)} slice"
    else:
        what = f"{' or '.join(sorted(products))} GPU" if products and resource == GPU_RESOURCE else "GPU"
    return capacity_fit(
        extra_replicas=extra_replicas,
        units_per_replica=per_replica,
        free_units_by_node=free,
        pools=sorted(pools.values(), key=lambda p: p.name),
        pod_ready_p95_seconds=cold.p95_seconds,
        pod_start_on_node_seconds=on_node,
        what=what,
    )
