"""A replay's inputs from the simulated world: a deployment's arrivals (`load_from_traffic`) and its
model (`model_from_world`: capacity, prices, start times, room in its pool). Pure Python, no Django."""

from __future__ import annotations

import math
import random
from array import array

from .replay import DeploymentModel, Load

RATE_SAMPLE_SECONDS = 30


def load_from_traffic(traffic, *, seed: int, key: str, start: int, seconds: int) -> Load:
    """Arrivals of a simulator `Traffic` (the deployment's own shape, spikes included), per second.

    The shape's rate is read every 30 s and interpolated between (its fastest features, bursts
    and spike ramps, take minutes; each read costs several hashes). The per-second Poisson-sized
    noise comes from one generator seeded by (seed, deployment), so a load is the same every
    time it is built, though not draw-for-draw the World's counter-based noise.
    """
    noise = random.Random(f"{seed}|{key}|replay-arrivals")
    step = RATE_SAMPLE_SECONDS
    knots = [traffic.rate(seed, key, start + k * step) for k in range(seconds // step + 2)]
    arrivals = array("d", bytes(8 * seconds))
    gauss, sqrt = noise.gauss, math.sqrt
    for i in range(seconds):
        k, frac = divmod(i, step)
        mean = knots[k] + (knots[k + 1] - knots[k]) * frac / step
        value = mean + sqrt(mean) * gauss(0.0, 1.0)
        arrivals[i] = value if value > 0.0 else 0.0
    minutes = math.ceil(seconds / 60)
    prompts, outputs = array("d", bytes(8 * minutes)), array("d", bytes(8 * minutes))
    for m in range(minutes):
        p, o = traffic.tokens(start + 60 * m)
        prompts[m], outputs[m] = p or 0.0, o or 0.0
    return Load(start, arrivals, prompts, outputs)


def model_from_world(world, namespace: str, name: str) -> DeploymentModel:
    """A simulated deployment's model: its capacity, its pool's prices and start times, and
    the room its pool has now on Ready nodes (other deployments keep what they hold)."""
    from .cluster import free_devices, fresh_node_units
    from .objects import NODE_READY

    dep = world.deployment(namespace, name)
    pool = world.pools[dep.node_pool] if dep.node_pool else next(iter(world.pools.values()))
    per_replica = max(1, dep.gpu_per_replica)
    nodes = [n for n in world.nodes.values() if n.pool == pool.name]
    free = sum(len(free_devices(world, n, dep.mig_profile)) // per_replica for n in nodes if n.status == NODE_READY)
    return DeploymentModel(
        capacity=dep.capacity,
        gpus_per_replica=dep.gpu_equivalents_per_replica,
        price_per_gpu_hour_usd=pool.price_per_gpu_hour_usd,
        pod_start_seconds=dep.image_pull_seconds + dep.weight_load_seconds,
        node_start_seconds=pool.provisioning_seconds,
        replicas_per_node=max(1, fresh_node_units(pool, dep.mig_profile) // per_replica),
        gpus_per_node=float(pool.gpus_per_node),
        free_replica_slots=free,
        max_new_nodes=max(0, pool.max_nodes - len(nodes)),
        consolidate_after_seconds=pool.consolidate_after_seconds,
        embedding=dep.is_embedding,
        notes=(
            f"capacity and prices from the simulated world ({pool.name}: {pool.instance_type})",
            f"cold start: pod start {dep.image_pull_seconds + dep.weight_load_seconds} s and node start "
            f"{pool.provisioning_seconds} s, the simulated world's settings",
        ),
    )
