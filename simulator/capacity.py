"""How much a vLLM replica can serve, and what the queue and latencies look like at a load.

A fluid model, one step at a time. A replica holds at most `max_num_seqs` sequences, fewer
when the KV cache cannot hold that many of the average size; a request occupies a sequence
for its prefill (prompt tokens at the prefill rate) plus its decode (output tokens at the
per-sequence decode rate, which slows as the batch fills). Little's law turns that into a
request rate a replica sustains. Requests beyond it wait in the queue; the wait is the queue
divided by that rate, and TTFT is that wait plus the prefill. Waiting clients give up after a
while, so a deployment with no ready replica does not grow a queue without bound.

Percentiles come from fixed spreads: prompt and output lengths are long-tailed (lognormal),
so p95 and p99 sit well above p50 even on an idle replica, as they do on real clusters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Lognormal spread of prompt / output lengths: factor from the mean to each quantile.
_PROMPT_SIGMA = 0.9
_OUTPUT_SIGMA = 1.0


def _lognormal_factor(sigma: float, z: float) -> float:
    return math.exp(-sigma * sigma / 2 + z * sigma)


_PROMPT_Q = {q: _lognormal_factor(_PROMPT_SIGMA, z) for q, z in ((50, 0.0), (95, 1.645), (99, 2.326))}
_OUTPUT_P50 = _lognormal_factor(_OUTPUT_SIGMA, 0.0)
_OUTPUT_P95 = _lognormal_factor(_OUTPUT_SIGMA, 1.645)
# Queue wait spread around its mean: FIFO under a steady backlog is narrow, not exponential.
_WAIT_Q = {50: 0.8, 95: 1.6, 99: 2.2}
_DELAY_Q = {50: 1.0, 95: 2.0, 99: 3.0}  # engine steps a request waits before its prefill
BATCH_SLOWDOWN = 1.0  # a full batch decodes each sequence this much slower than a lone one
PREFILL_CONTENTION = 0.4  # share of prefill throughput lost to decode work at full load
CLIENT_PATIENCE_SECONDS = 120.0


@dataclass(frozen=True)
class ReplicaCapacity:
    """What one replica of a model can do (vLLM engine arguments and measured rates)."""

    max_num_seqs: int = 256
    prefill_tokens_per_second: float = 10_000.0
    decode_tokens_per_second: float = 40.0  # per sequence, batch of one
    mean_prompt_tokens: float = 800.0
    mean_output_tokens: float = 200.0  # 0 for an embedding model
    kv_cache_tokens: int = 400_000

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ReplicaCapacity:
        return cls(**d)

    def sequence_slots(self, prompt: float, output: float) -> float:
        """Concurrent sequences one replica holds: max_num_seqs, or fewer when KV binds."""
        footprint = max(1.0, prompt + output / 2)
        return min(float(self.max_num_seqs), self.kv_cache_tokens / footprint)

    def requests_per_second(self, prompt: float | None = None, output: float | None = None) -> float:
        """Sustained requests/s of one replica at full load."""
        prompt = self.mean_prompt_tokens if prompt is None else prompt
        output = self.mean_output_tokens if output is None else output
        return _saturation_rate(self, prompt, output)


@dataclass(frozen=True)
class StepOutcome:
    queue: float
    running: float
    served: float  # requests admitted (and, in a steady fluid, completed) during the step
    abandoned: float
    prompt_tokens: float
    generation_tokens: float
    preemptions: float
    ttft_p50: float | None
    ttft_p95: float | None
    ttft_p99: float | None
    itl_p95: float | None
    e2e_p95: float | None
    kv_cache_usage: float
    gpu_utilization: float  # per ready replica's GPUs (DCGM_FI_DEV_GPU_UTIL-like)
    cpu_utilization: float  # of the pod's CPU request: low whatever the GPU does
    itl_p50: float | None = None
    e2e_p50: float | None = None


def _itl(cap: ReplicaCapacity, load: float) -> float:
    return (1.0 / cap.decode_tokens_per_second) * (1.0 + BATCH_SLOWDOWN * load)


def _prefill_rate(cap: ReplicaCapacity, load: float) -> float:
    return cap.prefill_tokens_per_second * (1.0 - PREFILL_CONTENTION * load)


def _service_seconds(cap: ReplicaCapacity, prompt: float, output: float, load: float) -> float:
    decode = output * _itl(cap, load) if output > 0 else 0.005  # pooling models: one pass
    return prompt / _prefill_rate(cap, load) + decode


def _saturation_rate(cap: ReplicaCapacity, prompt: float, output: float) -> float:
    by_slots = cap.sequence_slots(prompt, output) / _service_seconds(cap, prompt, output, 1.0)
    by_prefill = _prefill_rate(cap, 1.0) / max(prompt, 1.0)
    return min(by_slots, by_prefill)


def serve(
    cap: ReplicaCapacity,
    *,
    replicas: int,
    queue: float,
    arrivals: float,
    dt: float,
    prompt_tokens: float | None = None,
    output_tokens: float | None = None,
) -> StepOutcome:
    """Advance one deployment's queue by `dt` seconds with `replicas` ready replicas."""
    prompt = cap.mean_prompt_tokens if prompt_tokens is None else prompt_tokens
    output = cap.mean_output_tokens if output_tokens is None else output_tokens
    backlog = queue + arrivals
    if replicas <= 0:
        abandoned = backlog * (1.0 - math.exp(-dt / CLIENT_PATIENCE_SECONDS))
        return StepOutcome(
            backlog - abandoned, 0.0, 0.0, abandoned, 0.0, 0.0, 0.0, None, None, None, None, None, 0.0, 0.0, 0.0
        )

    capacity = replicas * _saturation_rate(cap, prompt, output)  # requests/s
    throughput = min(backlog / dt, capacity)
    load = throughput / capacity if capacity > 0 else 1.0
    left = backlog - throughput * dt
    wait = left / capacity if capacity > 0 else 0.0
    # Clients whose wait runs long give up; hardly any do while the queue drains in seconds.
    abandoned = left * (1.0 - math.exp(-dt / CLIENT_PATIENCE_SECONDS)) * wait / (wait + 30.0)
    left -= abandoned

    service = _service_seconds(cap, prompt, output, load)
    running = throughput * service
    per_replica_running = running / replicas
    kv_usage = min(1.0, per_replica_running * (prompt + output / 2) / cap.kv_cache_tokens)
    # vLLM preempts (and later recomputes) sequences when the KV cache runs out of blocks.
    preemptions = throughput * dt * (kv_usage - 0.95) if kv_usage > 0.95 else 0.0

    itl = _itl(cap, load)
    prefill_rate = _prefill_rate(cap, load)
    # Even without a queue, a new request waits for the engine's next scheduling step:
    # a decode iteration, or for a pooling (embedding) model one batched forward pass.
    engine_step = itl if output > 0 else 0.01 + 4.0 * prompt / cap.prefill_tokens_per_second
    step_delay = engine_step * (1.0 + 10.0 * load**6)
    ttft = {
        q: prompt * _PROMPT_Q[q] / prefill_rate + step_delay * _DELAY_Q[q] + wait * _WAIT_Q[q] for q in (50, 95, 99)
    }
    if output > 0:
        itl_p50 = itl
        itl_p95 = itl * 1.3 + 0.05 * prompt / prefill_rate
        e2e_p50 = wait * _WAIT_Q[50] + prompt * _PROMPT_Q[50] / prefill_rate + output * _OUTPUT_P50 * itl
        e2e_p95 = wait * _WAIT_Q[95] + prompt * _PROMPT_Q[50] / prefill_rate + output * _OUTPUT_P95 * itl
    else:
        itl_p50 = itl_p95 = None
        e2e_p50, e2e_p95 = ttft[50], ttft[95]
    busy = 1.0 - math.exp(-2.5 * load)
    return StepOutcome(
        queue=left,
        running=running,
        served=throughput * dt,
        abandoned=abandoned,
        prompt_tokens=throughput * dt * prompt,
        generation_tokens=throughput * dt * output,
        preemptions=preemptions,
        ttft_p50=ttft[50],
        ttft_p95=ttft[95],
        ttft_p99=ttft[99],
        itl_p95=itl_p95,
        e2e_p95=e2e_p95,
        kv_cache_usage=kv_usage,
        gpu_utilization=min(1.0, 0.02 + 1.1 * busy),
        cpu_utilization=0.04 + 0.1 * load,
        itl_p50=itl_p50,
        e2e_p50=e2e_p50,
    )
