"""Will the extra replicas of a scale request find GPUs, and when will they be Ready? Pure.

A dry run (and the page's confirmation) answers with this: how many of the extra replicas fit
on the free GPUs (or MIG slices) of the right model now, how many new nodes the rest needs and
from which pool, whether the pool's GPU limit allows them, and the expected time until all
are Ready from the measured cold starts ("unknown" without history). A request that cannot be
satisfied is still allowed (it may be intended, e.g. ahead of a quota raise); this says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PoolOffer:
    """A node pool that launches nodes with the GPU the deployment needs."""

    name: str
    units_per_node: int  # of the deployment's resource (GPUs, or slices of its MIG profile)
    gpus_per_node: int  # whole GPUs per node (what a Karpenter `nvidia.com/gpu` limit counts)
    gpu_limit: int | None  # None: no limit
    gpus_in_use: int  # GPUs of the pool's nodes now
    node_ready_p95_seconds: float | None  # NodeClaim launched -> node Ready, measured


@dataclass(frozen=True)
class CapacityFit:
    extra_replicas: int
    fit_now: int  # extra replicas that fit on free devices now
    new_nodes: int  # nodes to launch for the rest (from `pool`)
    pool: str | None
    pool_gpu_limit: int | None
    pool_limit_allows: bool | None  # None when no node is needed
    satisfiable: bool
    ready_in_seconds: float | None  # expected time until every extra replica is Ready; None: unknown
    summary: str

    def as_dict(self) -> dict:
        return asdict(self)


def _minutes(seconds: float) -> str:
    return f"{math.ceil(seconds / 60)} min"


def capacity_fit(
    *,
    extra_replicas: int,
    units_per_replica: int,
    free_units_by_node: Sequence[int],
    pools: Sequence[PoolOffer],
    pod_ready_p95_seconds: float | None,
    pod_start_on_node_seconds: float | None,
    what: str,  # the device in words, e.g. "NVIDIA-A100-SXM4-80GB GPU" or "MIG 3g.40gb slice"
) -> CapacityFit:
    """Place the extra replicas on free devices first, then on new nodes of the first pool that
    offers the device and whose limit allows them. `pod_ready_p95_seconds`: created -> Ready
    (measured); `pod_start_on_node_seconds`: image pull + weights loading (p95 each, measured),
    what a pod still needs once its new node is Ready."""
    if extra_replicas <= 0 or units_per_replica <= 0:
        return CapacityFit(
            max(0, extra_replicas),
            0,
            0,
            None,
            None,
            None,
            True,
            pod_ready_p95_seconds if extra_replicas > 0 else 0.0,
            "no extra GPUs needed",
        )
    fit_now = min(extra_replicas, sum(free // units_per_replica for free in free_units_by_node))
    rest = extra_replicas - fit_now
    if rest == 0:
        ready = pod_ready_p95_seconds
        when = f"; Ready in about {_minutes(ready)} (measured p95)" if ready is not None else "; time to Ready unknown"
        return CapacityFit(extra_replicas, fit_now, 0, None, None, None, True, ready, f"fits now on free {what}s{when}")
    offers = [p for p in pools if p.units_per_node >= units_per_replica]
    if not offers:
        return CapacityFit(
            extra_replicas,
            fit_now,
            0,
            None,
            None,
            False,
            False,
            None,
            f"{fit_now} of {extra_replicas} fit now; no node pool offers a {what} for the other "
            f"{rest}: they will stay pending",
        )
    for pool in offers:
        nodes = math.ceil(rest / (pool.units_per_node // units_per_replica))
        allows = pool.gpu_limit is None or pool.gpus_in_use + nodes * pool.gpus_per_node <= pool.gpu_limit
        if allows:
            break
    else:
        pool = offers[0]
        nodes = math.ceil(rest / (pool.units_per_node // units_per_replica))
        headroom = max(0, (pool.gpu_limit or 0) - pool.gpus_in_use)
        return CapacityFit(
            extra_replicas,
            fit_now,
            nodes,
            pool.name,
            pool.gpu_limit,
            False,
            False,
            None,
            f"{fit_now} of {extra_replicas} fit now; the other {rest} need {nodes} new node"
            f"{'s' if nodes != 1 else ''} from pool {pool.name}, but its limit of {pool.gpu_limit} "
            f"GPUs leaves room for {headroom}: they will stay pending",
        )
    if pool.node_ready_p95_seconds is not None and pod_start_on_node_seconds is not None:
        ready = pool.node_ready_p95_seconds + pod_start_on_node_seconds
        when = f"; Ready in about {_minutes(ready)} (new node p95 + pod cold start p95, measured)"
    else:
        ready, when = None, "; time to Ready unknown (no measured cold start yet)"
    return CapacityFit(
        extra_replicas,
        fit_now,
        nodes,
        pool.name,
        pool.gpu_limit,
        True,
        True,
        ready,
        f"{fit_now} of {extra_replicas} fit now; the other {rest} need {nodes} new node"
        f"{'s' if nodes != 1 else ''} from pool {pool.name}{when}",
    )
