"""The cluster's controllers: ReplicaSet, scheduler, node provisioner, kubelet.

Each is a function over the world, run once per step in the order a real cluster converges:
the ReplicaSet creates or deletes pods to match spec.replicas (refusing pods beyond a
namespace quota, like FailedCreate), the scheduler binds pending pods to nodes with free
matching GPU devices (bin-packing: the fullest node that fits), the provisioner launches nodes
for pods nothing can hold (Karpenter-like, up to the pool's max) and removes nodes left empty
past the consolidation delay, and pods walk through image pull and weight load to Ready.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import TYPE_CHECKING

from .mig import layout_devices, mig_counts
from .objects import (
    LAUNCHING,
    LOADING,
    NODE_READY,
    PENDING,
    PULLING,
    READY,
    Deployment,
    Node,
    NodePool,
    Pod,
)

if TYPE_CHECKING:
    from .world import World

Device = tuple[int, str | None, int | None]
_STATE_RANK = {PENDING: 0, PULLING: 1, LOADING: 2, READY: 3}
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated names
CACHED_IMAGE_PULL_SECONDS = 5


@functools.lru_cache(maxsize=64)
def _devices(product: str, layout: str | None, gpus: int) -> tuple[Device, ...]:
    return tuple(layout_devices(product, layout, gpus))


def node_devices(world: World, node: Node) -> tuple[Device, ...]:
    pool = world.pools[node.pool]
    return _devices(pool.gpu_product, node.mig_layout, pool.gpus_per_node)


def free_devices(world: World, node: Node, profile: str | None) -> list[Device]:
    held = world.held.get(node.name, {})
    return [d for d in node_devices(world, node) if d[1] == profile and d not in held]


def fresh_node_units(pool: NodePool, profile: str | None) -> int:
    """How many devices of a kind a node the pool launches would offer."""
    if profile is None:
        return 0 if pool.mig_layout not in (None, "all-disabled") else pool.gpus_per_node
    return mig_counts(pool.gpu_product, pool.mig_layout, pool.gpus_per_node).get(profile, 0)


def generated_suffix(world: World, length: int = 5) -> str:
    return "".join(world.rng.choice(NAME_ALPHABET) for _ in range(length))


def pods_by_deployment(world: World) -> dict[str, list[Pod]]:
    grouped: dict[str, list[Pod]] = defaultdict(list)
    for pod in world.pods.values():
        grouped[f"{pod.namespace}/{pod.deployment}"].append(pod)
    return grouped


# --------------------------------------------------------------------------- ReplicaSet


def quota_requests(dep: Deployment) -> dict[str, int]:
    return {f"requests.{dep.gpu_resource}": dep.gpu_per_replica, f"limits.{dep.gpu_resource}": dep.gpu_per_replica}


def namespace_usage(world: World) -> dict[str, dict[str, int]]:
    """Quota keys -> requested amount of every pod that exists (scheduled or pending)."""
    usage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pod in world.pods.values():
        dep = world.deployments[f"{pod.namespace}/{pod.deployment}"]
        for key, amount in quota_requests(dep).items():
            usage[pod.namespace][key] += amount
    return usage


def _quota_refusal(world: World, dep: Deployment, used: dict[str, int], pod_name: str) -> str:
    requests = quota_requests(dep)
    for quota in world.quotas.values():
        if quota.namespace != dep.namespace:
            continue
        for key, hard in quota.hard.items():
            if key in requests and used.get(key, 0) + requests[key] > hard:
                return (
                    f'pods "{pod_name}" is forbidden: exceeded quota: {quota.name}, '
                    f"requested: {key}={requests[key]}, used: {key}={used.get(key, 0)}, limited: {key}={hard}"
                )
    return ""


def reconcile_replicas(world: World, t: int) -> None:
    usage = namespace_usage(world)
    grouped = pods_by_deployment(world)
    for dep in world.deployments.values():
        pods = grouped.get(dep.key, [])
        missing = dep.replicas - len(pods)
        refusal = ""
        for _ in range(max(0, missing)):
            name = f"{world.replica_set_name(dep)}-{generated_suffix(world)}"
            refusal = _quota_refusal(world, dep, usage[dep.namespace], name)
            if refusal:
                break
            pod = Pod(dep.namespace, name, dep.name, created_at=t)
            world.bump(pod)
            world.pods[pod.key] = pod
            for key, amount in quota_requests(dep).items():
                usage[dep.namespace][key] += amount
        if refusal != dep.failed_create:
            dep.failed_create = refusal
            world.bump(dep)
            if refusal:
                world.event(t, "FailedCreate", f"ReplicaSet/{dep.namespace}/{world.replica_set_name(dep)}", refusal)
        if missing < 0:
            # Kubernetes deletes unscheduled, then not-ready, then the newest pods first.
            ranked = sorted(
                pods,
                key=lambda p: (bool(p.node), _STATE_RANK[p.state_at(t)], -p.created_at, _reverse(p.name)),
            )
            for pod in ranked[:-missing]:
                world.delete_pod(pod)


def _reverse(name: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in name)


# --------------------------------------------------------------------------- scheduler


def schedule_pending(world: World, t: int) -> list[Pod]:
    """Bind pending pods; returns the ones nothing could hold."""
    unschedulable = []
    pending = sorted((p for p in world.pods.values() if not p.node), key=lambda p: (p.created_at, p.name))
    for pod in pending:
        dep = world.deployments[f"{pod.namespace}/{pod.deployment}"]
        best: tuple[int, str, list[Device]] | None = None
        for node in world.nodes.values():
            if node.status != NODE_READY or node.unschedulable or (dep.node_pool and node.pool != dep.node_pool):
                continue
            free = free_devices(world, node, dep.mig_profile)
            if len(free) >= dep.gpu_per_replica and (best is None or (len(free), node.name) < best[:2]):
                best = (len(free), node.name, free)
        if best is None:
            unschedulable.append(pod)
            continue
        node = world.nodes[best[1]]
        devices = sorted(best[2], key=lambda d: (d[0], d[2] or 0))[: dep.gpu_per_replica]
        pull = CACHED_IMAGE_PULL_SECONDS if dep.image in node.images else dep.image_pull_seconds
        if dep.image not in node.images:
            node.images.append(dep.image)
        load = round(dep.weight_load_seconds * (0.9 + 0.2 * world.rng.random()))
        world.bind(pod, node, devices, scheduled_at=t, pulled_at=t + pull, ready_at=t + pull + load)
    return unschedulable


# --------------------------------------------------------------------------- provisioner


def _pool_for(world: World, dep: Deployment) -> NodePool | None:
    if dep.node_pool:
        return world.pools.get(dep.node_pool)
    for pool in sorted(world.pools.values(), key=lambda p: p.name):
        if fresh_node_units(pool, dep.mig_profile) >= dep.gpu_per_replica:
            return pool
    return None


def provision_nodes(world: World, t: int, unschedulable: list[Pod]) -> None:
    """Launch nodes for pods nothing can hold, packing them virtually onto nodes in flight."""
    by_pool: dict[str, list[Deployment]] = defaultdict(list)
    for pod in unschedulable:
        dep = world.deployments[f"{pod.namespace}/{pod.deployment}"]
        pool = _pool_for(world, dep)
        if pool is not None and fresh_node_units(pool, dep.mig_profile) >= dep.gpu_per_replica:
            by_pool[pool.name].append(dep)
    for pool_name, deps in by_pool.items():
        pool = world.pools[pool_name]
        nodes = [n for n in world.nodes.values() if n.pool == pool_name]
        bins = [{} for n in nodes if n.status == LAUNCHING]
        new_bins = 0
        for dep in deps:
            profile = dep.mig_profile
            for units in bins:
                left = units.setdefault(profile, fresh_node_units(pool, profile))
                if left >= dep.gpu_per_replica:
                    units[profile] = left - dep.gpu_per_replica
                    break
            else:
                if len(nodes) + new_bins >= pool.max_nodes:
                    continue
                new_bins += 1
                bins.append({profile: fresh_node_units(pool, profile) - dep.gpu_per_replica})
        for _ in range(new_bins):
            launch_node(world, pool, t)


def launch_node(world: World, pool: NodePool, t: int, *, ready: bool = False) -> Node:
    name = world.new_node_name()
    zone = pool.zones[world.rng.randrange(len(pool.zones))]
    delay = round(pool.provisioning_seconds * (0.85 + 0.3 * world.rng.random()))
    node = Node(
        name,
        pool.name,
        zone,
        launched_at=t - (delay if ready else 0),
        ready_at=t if ready else t + delay,
        mig_layout=pool.mig_layout,
        status=NODE_READY if ready else LAUNCHING,
    )
    world.bump(node)
    world.nodes[name] = node
    if not ready:
        message = f"{pool.name}: launching {pool.instance_type} ({pool.capacity_type})"
        world.event(t, "Launched", f"Node/{name}", message)
    return node


def progress_nodes(world: World, t: int) -> None:
    """Nodes finish launching or reconfiguring; empty ones past the delay are consolidated."""
    occupied = {pod.node for pod in world.pods.values() if pod.node}
    counts: dict[str, int] = defaultdict(int)
    for node in world.nodes.values():
        counts[node.pool] += 1
    for node in sorted(world.nodes.values(), key=lambda n: n.name):
        if node.status != NODE_READY and t >= node.ready_at:
            node.status = NODE_READY
            world.bump(node)
            world.event(t, "NodeReady", f"Node/{node.name}", "node is Ready; GPUs advertised")
        if node.status != NODE_READY or node.name in occupied or node.unschedulable:
            node.empty_since = None
            continue
        node.empty_since = t if node.empty_since is None else node.empty_since
        pool = world.pools[node.pool]
        if t - node.empty_since >= pool.consolidate_after_seconds and counts[node.pool] > pool.min_nodes:
            counts[node.pool] -= 1
            del world.nodes[node.name]
            world.held.pop(node.name, None)
            world.event(t, "Consolidated", f"Node/{node.name}", f"{pool.name}: removed empty node")


# --------------------------------------------------------------------------- kubelet


def progress_pods(world: World, t: int) -> None:
    ready: dict[str, int] = defaultdict(int)
    for pod in world.pods.values():
        state = pod.state_at(t)
        if state != pod.status:
            pod.status = state
            world.bump(pod)
            if state == READY:
                world.event(t, "Ready", f"Pod/{pod.key}", "model loaded, serving")
        if state == READY:
            ready[f"{pod.namespace}/{pod.deployment}"] += 1
    for dep in world.deployments.values():
        if dep.ready_replicas != ready[dep.key]:
            dep.ready_replicas = ready[dep.key]
            world.bump(dep)
