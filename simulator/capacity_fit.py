"""A deployment's replay inputs from its measured history (pure: minutes in, model figures out).

`scaling.history` reads the minutes from Prometheus; this module turns them into what the
replay needs: arrivals per second, token sizes per request, and one replica's capacity.

The capacity fit. A replica's sustained throughput is only visible while it is saturated: while
requests wait in its queue or TTFT is above the objective, it serves as fast as it can; while it
keeps up, served requests/s equal arrivals and say only that capacity is at least that. So:

1. A minute is *saturated* when the queue holds at least `SATURATED_QUEUE_PER_REPLICA` requests
   per replica or TTFT p95 is above the objective, and some replica served requests.
2. Capacity (requests/s per replica) is the median, over the saturated minutes, of served
   requests/s divided by the replicas reporting that minute. The median ignores the odd minute
   where a replica was still starting (counted but not yet serving).
3. With fewer than `MIN_SATURATED_MINUTES` saturated minutes the history is too thin: the
   capacity comes from the table by GPU model and model size (`table_capacity`), and the result
   says so. The table figure is raised to the highest per-replica throughput ever observed, which
   capacity can never be below.

The fitted requests/s are turned into a `ReplicaCapacity` by scaling the table's prefill and
decode rates until its saturation rate, at the observed token sizes, equals the fit.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace

from .capacity import ReplicaCapacity

MIN_SATURATED_MINUTES = 10
SATURATED_QUEUE_PER_REPLICA = 1.0

# Throughput relative to an A100 80GB, by the GPU product's family word (first match wins).
GPU_SPEED = (
    ("h200", 2.3),
    ("h100", 2.0),
    ("gh200", 2.3),
    ("a100", 1.0),
    ("l40s", 0.8),
    ("l40", 0.7),
    ("a10g", 0.35),
    ("a10", 0.35),
    ("l4", 0.3),
    ("t4", 0.15),
    ("v100", 0.4),
)
DEFAULT_GPU = "A100"
REFERENCE_BILLIONS = 8.0  # ReplicaCapacity()'s defaults are an 8B model on one A100
DEFAULT_BILLIONS = 8.0
_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


@dataclass(frozen=True)
class Minute:
    """One minute of a deployment's history (None: not measured that minute)."""

    requests_per_second: float | None  # served (finished) requests/s, all replicas
    prompt_tokens_per_second: float | None
    generation_tokens_per_second: float | None
    queue_depth: float | None  # requests waiting, all replicas
    ttft_p95_seconds: float | None
    replicas: float | None  # replicas reporting


@dataclass(frozen=True)
class CapacityFit:
    capacity: ReplicaCapacity
    requests_per_second: float  # per replica at the observed token sizes
    fitted: bool  # False: from the table
    saturated_minutes: int
    note: str


def model_billions(model: str) -> float | None:
    """`meta-llama/Llama-3.1-70B-Instruct` -> 70.0; None when the name gives no size."""
    sizes = [float(m) for m in _SIZE.findall(model.rsplit("/", 1)[-1])]
    return sizes[-1] if sizes else None


def gpu_speed(gpu_product: str) -> tuple[float, str]:
    """(throughput relative to an A100, the family it was read as)."""
    text = gpu_product.lower()
    for word, speed in GPU_SPEED:
        if word in text:
            return speed, word.upper()
    return 1.0, f"{DEFAULT_GPU} (GPU model unknown)"


def table_capacity(*, gpu_product: str, gpus_per_replica: float, model: str) -> tuple[ReplicaCapacity, str]:
    """The table's capacity for `model` on `gpus_per_replica` GPUs of `gpu_product`, and how it was read.

    Prefill and decode rates scale with the GPU's speed, the GPUs a replica spans and the
    inverse of the model's size (weights read per token); the base is `ReplicaCapacity()`.
    """
    speed, family = gpu_speed(gpu_product)
    billions = model_billions(model)
    size = billions or DEFAULT_BILLIONS
    factor = speed * max(gpus_per_replica, 1 / 7) * REFERENCE_BILLIONS / size
    base = ReplicaCapacity()
    cap = replace(
        base,
        prefill_tokens_per_second=base.prefill_tokens_per_second * factor,
        decode_tokens_per_second=base.decode_tokens_per_second * factor,
    )
    size_text = f"{size:g}B" if billions else f"{DEFAULT_BILLIONS:g}B (size not in the model name)"
    return cap, f"{family} x {gpus_per_replica:g} GPU, model {size_text}"


def capacity_for_rate(base: ReplicaCapacity, rate: float, prompt: float, output: float) -> ReplicaCapacity:
    """`base` with prefill and decode rates scaled so one replica sustains `rate` requests/s."""
    cap = replace(base, mean_prompt_tokens=prompt, mean_output_tokens=output)
    for _ in range(6):  # the saturation rate is close to linear in both rates: converges fast
        now = cap.requests_per_second()
        if now <= 0 or abs(now - rate) <= rate * 1e-4:
            break
        ratio = rate / now
        cap = replace(
            cap,
            prefill_tokens_per_second=cap.prefill_tokens_per_second * ratio,
            decode_tokens_per_second=cap.decode_tokens_per_second * ratio,
        )
    return cap


def token_means(minutes: list[Minute]) -> tuple[float | None, float | None]:
    """Prompt and generation tokens per request over the whole history (token-weighted)."""
    served = sum(m.requests_per_second or 0.0 for m in minutes)
    if served <= 0:
        return None, None
    prompt = sum(m.prompt_tokens_per_second or 0.0 for m in minutes) / served
    output = sum(m.generation_tokens_per_second or 0.0 for m in minutes) / served
    return prompt, output


def fit_capacity(
    minutes: list[Minute], *, slo_seconds: float, table: ReplicaCapacity, table_note: str, prompt: float, output: float
) -> CapacityFit:
    """Per-replica capacity from saturated minutes, else the table (see the module docstring)."""
    per_replica: list[float] = []
    observed = 0.0
    for m in minutes:
        if not m.replicas or not m.requests_per_second:
            continue
        rate = m.requests_per_second / m.replicas
        observed = max(observed, rate)
        queued = (m.queue_depth or 0.0) >= SATURATED_QUEUE_PER_REPLICA * m.replicas
        slow = m.ttft_p95_seconds is not None and m.ttft_p95_seconds > slo_seconds
        if queued or slow:
            per_replica.append(rate)
    if len(per_replica) >= MIN_SATURATED_MINUTES:
        rate = statistics.median(per_replica)
        return CapacityFit(
            capacity_for_rate(table, rate, prompt, output),
            rate,
            True,
            len(per_replica),
            f"capacity fitted from {len(per_replica)} saturated minutes of history: {rate:.2f} requests/s per replica",
        )
    table_rate = replace(table, mean_prompt_tokens=prompt, mean_output_tokens=output).requests_per_second()
    rate = max(table_rate, observed)
    raised = " (raised to the highest observed)" if observed > table_rate else ""
    return CapacityFit(
        capacity_for_rate(table, rate, prompt, output),
        rate,
        False,
        len(per_replica),
        f"history too thin to fit capacity ({len(per_replica)} saturated minutes, "
        f"{MIN_SATURATED_MINUTES} needed): table capacity for {table_note}, "
        f"{rate:.2f} requests/s per replica{raised}",
    )
