"""Per-GPU and per-MIG-slice readings, as DCGM would report them right now.

A device's utilization follows the load of the deployment holding it (each ready replica
carries an equal share), with a small per-device wobble; a free device reads 0. vLLM
allocates its `gpu_memory_utilization` share of memory when it loads, so memory in use climbs
while weights load and then stays flat whatever the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import cluster
from .mig import device_memory_mib, gpu_model
from .objects import NODE_READY, READY
from .traffic import unit

if TYPE_CHECKING:
    from .world import World


@dataclass(frozen=True)
class GpuReading:
    """One whole GPU or MIG slice right now, and who holds it."""

    node: str
    gpu_index: int
    mig_profile: str | None
    mig_instance_id: int | None
    pod: str | None  # "namespace/name" of the holder
    deployment: str | None  # "namespace/name"
    utilization: float  # 0-1
    memory_used_mib: float
    power_watts: float | None  # per physical GPU; None on a MIG slice
    temperature_c: float | None


def gpu_readings(world: World, node_names: list[str] | None = None) -> list[GpuReading]:
    wanted = None if node_names is None else set(node_names)
    minute = world.t // 60
    readings = []
    for node in world.nodes.values():
        if node.status != NODE_READY or (wanted is not None and node.name not in wanted):
            continue
        pool = world.pools[node.pool]
        model = gpu_model(pool.gpu_product)
        held = world.held.get(node.name, {})
        for device in cluster.node_devices(world, node):
            gpu_index, profile, instance_id = device
            pod_key = held.get(device)
            pod = world.pods.get(pod_key) if pod_key else None
            dep = world.deployments.get(f"{pod.namespace}/{pod.deployment}") if pod else None
            util, used = 0.0, 0.0
            if pod is not None and dep is not None:
                allocation = device_memory_mib(pool.gpu_product, profile) * float(
                    dep.manifest.get("gpu_memory_utilization", 0.9)
                )
                if pod.status == READY:
                    wobble = 0.94 + 0.12 * unit(world.seed, "gpu", node.name, gpu_index, instance_id, minute)
                    util = min(1.0, dep.last.get("gpu_utilization", 0.0) * wobble)
                    used = allocation
                elif pod.pulled_at is not None and pod.ready_at is not None and world.t >= pod.pulled_at:
                    used = allocation * (world.t - pod.pulled_at) / max(1, pod.ready_at - pod.pulled_at)
            whole = profile is None
            power = round(model.idle_watts + 0.9 * util * (model.tdp_watts - model.idle_watts), 1) if whole else None
            temperature = round(33.0 + 42.0 * util, 1) if whole else None
            readings.append(
                GpuReading(
                    node.name,
                    gpu_index,
                    profile,
                    instance_id,
                    pod_key,
                    dep.key if dep else None,
                    round(util, 4),
                    round(used, 1),
                    power,
                    temperature,
                )
            )
    return readings
