"""Serving one step of traffic: arrivals, the fluid queue, and what the minute history records.

Every ready replica of a deployment shares its load equally (a Service spreading requests
over the pods that pass their readiness probe). GPUs held by pods that are not ready yet
still cost money: `gpus_allocated` and `cost_per_hour_usd` count every scheduled pod.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from .capacity import StepOutcome, serve

# Share of served requests whose client cancels mid-generation: vLLM finishes them as "abort",
# as it does a request whose client gave up while it waited in the queue (`abandoned`).
CLIENT_CANCEL_SHARE = 0.002

if TYPE_CHECKING:
    from .world import World


def serve_traffic(world: World, t: int) -> None:
    """Arrivals join each deployment's queue; its ready replicas serve what they can."""
    dt = world.step_seconds
    allocated: dict[str, list[float]] = {}
    for pod in world.pods.values():
        if pod.node:
            dep = world.deployments[f"{pod.namespace}/{pod.deployment}"]
            price = world.pools[world.nodes[pod.node].pool].price_per_gpu_hour_usd
            slot = allocated.setdefault(dep.key, [0.0, 0.0])
            slot[0] += dep.gpu_equivalents_per_replica
            slot[1] += dep.gpu_equivalents_per_replica * price
    for dep in world.deployments.values():
        arrivals = dep.traffic.arrivals(world.seed, dep.key, t, dt)
        prompt, output = dep.traffic.tokens(t)
        out: StepOutcome = serve(
            dep.capacity,
            replicas=dep.ready_replicas,
            queue=dep.queue,
            arrivals=arrivals,
            dt=dt,
            prompt_tokens=prompt,
            output_tokens=0.0 if dep.is_embedding else output,
        )
        dep.queue = out.queue
        dep.prompt_tokens_total += out.prompt_tokens
        dep.generation_tokens_total += out.generation_tokens
        dep.requests_total += out.served
        dep.preemptions_total += out.preemptions
        dep.abandoned_total += out.abandoned
        dep.last = {f.name: getattr(out, f.name) for f in fields(out)}
        dep.last["arrivals_per_second"] = arrivals / dt
        gpus, cost = allocated.get(dep.key, (0.0, 0.0))
        # vLLM counts what its pods finish: with none ready, nothing (a gateway answers 503).
        scraped = dep.ready_replicas > 0
        world.history.accumulate(
            dep.key,
            {
                "arrivals_per_second": arrivals / dt,
                "queue_depth": out.queue,
                "running": out.running,
                "ttft_p50_seconds": out.ttft_p50,
                "ttft_p95_seconds": out.ttft_p95,
                "ttft_p99_seconds": out.ttft_p99,
                "itl_p50_seconds": out.itl_p50,
                "itl_p95_seconds": out.itl_p95,
                "e2e_p50_seconds": out.e2e_p50,
                "e2e_p95_seconds": out.e2e_p95,
                "requests_per_second": (out.served + out.abandoned) / dt if scraped else None,
                "errors_per_second": (out.abandoned + out.served * CLIENT_CANCEL_SHARE) / dt if scraped else None,
                "kv_cache_usage": out.kv_cache_usage,
                "gpu_utilization": out.gpu_utilization,
                "preemptions_per_second": out.preemptions / dt,
                "replicas_desired": dep.replicas,
                "replicas_ready": dep.ready_replicas,
                "gpus_allocated": gpus,
                "cost_per_hour_usd": cost,
            },
            served=out.served,
        )
