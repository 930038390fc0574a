"""The GPU memory a vLLM deployment needs: pure, values in, values out.

A replica holds its weights (parameters x bytes per parameter), a KV cache large enough for its
concurrent sequences, and a runtime overhead (CUDA context, activations, CUDA graphs). vLLM
itself then grabs `gpu_memory_utilization` x the device memory whatever the model needs: that is
what it holds, not what it needs. The field guide's rule: size for the need at the target
concurrency plus a 10-15 % buffer; we take 12 %.

Parameter counts and precision come from vLLM's arguments where given (`--dtype`,
`--quantization`), else from the model name (`Llama-3.1-8B-Instruct-AWQ`). The KV cache per token
is estimated from the size class of the model (grouped-query attention, 8 KV heads of 128, as the
Llama/Qwen/Mistral families have); observed KV-cache usage, where Prometheus reports it, replaces
the estimate when it says more is in use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

BUFFER = 0.12
MIB = 1024 * 1024
# CUDA context, activations and CUDA graphs per GPU: ~2 GiB on the vLLM releases we see.
RUNTIME_OVERHEAD_MIB = 2048

_MOE = re.compile(r"(?<![\d.])(\d+)x(\d+(?:\.\d+)?)([bm])(?![a-z])", re.IGNORECASE)
_PARAMS = re.compile(r"(?<![\d.a-z])(\d+(?:\.\d+)?)([bm])(?![a-z])", re.IGNORECASE)
_BYTES_PER_PARAM = {
    "float32": 4.0,
    "fp32": 4.0,
    "float": 4.0,
    "float16": 2.0,
    "fp16": 2.0,
    "half": 2.0,
    "bfloat16": 2.0,
    "bf16": 2.0,
    "auto": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "w8a8": 1.0,
    "w8a16": 1.0,
    "bitsandbytes": 0.5,
    "awq": 0.5,
    "awq_marlin": 0.5,
    "gptq": 0.5,
    "gptq_marlin": 0.5,
    "int4": 0.5,
    "w4a16": 0.5,
    "4bit": 0.5,
    "nf4": 0.5,
    "8bit": 1.0,
    "gguf": 0.6,
    "mxfp4": 0.5,
}
# Name markers of a quantized checkpoint, most specific first.
_NAME_QUANT = ("awq", "gptq", "w4a16", "int4", "4bit", "nf4", "mxfp4", "fp8", "w8a8", "w8a16", "int8", "8bit", "gguf")
# (up to billions of parameters, layers): KV heads 8 x head dim 128 for all (GQA families).
_LAYERS_BY_SIZE = ((2, 16), (4, 28), (10, 32), (20, 40), (40, 64), (80, 80), (math.inf, 126))


@dataclass(frozen=True)
class MemoryInputs:
    model: str
    max_model_len: int | None = None
    tensor_parallel: int = 1
    dtype: str = ""  # vLLM --dtype, "" = auto
    quantization: str = ""  # vLLM --quantization, "" = none given
    gpu_memory_utilization: float | None = None
    device_memory_mib: int | None = None  # memory of what one replica's GPU (or slice) has now
    observed_kv_usage: float | None = None  # 0-1 fraction of the KV pool in use (vllm:kv_cache_usage_perc)
    target_concurrency: int | None = None  # sequences at once per replica, when known


@dataclass(frozen=True)
class MemoryNeed:
    """What a replica needs, per GPU and in total, in MiB; `None` fields when the model is unknown."""

    known: bool
    why_unknown: str
    params_billions: float | None
    bytes_per_param: float | None
    precision: str  # "bf16", "awq (4-bit)"...
    weights_mib: int | None
    kv_bytes_per_token: int | None
    kv_tokens: int | None  # tokens the KV cache must hold
    kv_mib: int | None
    kv_source: str  # how the KV size was reached, in words
    overhead_mib: int | None
    per_gpu_mib: int | None  # need per GPU with the buffer: what a MIG slice must hold
    total_mib: int | None  # the whole replica (all tensor-parallel GPUs) with the buffer
    held_per_gpu_mib: int | None  # what vLLM grabs per GPU now: utilization x device memory
    tensor_parallel: int


def params_from_name(model: str) -> float | None:
    """Billions of parameters from a model name: `Llama-3.1-8B` -> 8, `Mixtral-8x7B` -> 56 (every
    expert counts: they all sit in memory), `opt-125m` -> 0.125, `Qwen3-30B-A3B` -> 30."""
    name = model.rsplit("/", 1)[-1]
    moe = _MOE.search(name)
    if moe:
        scale = 1.0 if moe.group(3).lower() == "b" else 0.001
        return int(moe.group(1)) * float(moe.group(2)) * scale
    sizes = [float(m.group(1)) * (1.0 if m.group(2).lower() == "b" else 0.001) for m in _PARAMS.finditer(name)]
    sizes = [s for s in sizes if s > 0]
    return max(sizes) if sizes else None


def precision_of(*, model: str, dtype: str = "", quantization: str = "") -> tuple[str, float]:
    """(name, bytes per parameter): `--quantization` first, then a quantized name, then `--dtype`."""
    quant = quantization.strip().lower()
    if quant and quant in _BYTES_PER_PARAM:
        return quant, _BYTES_PER_PARAM[quant]
    lowered = model.lower()
    for marker in _NAME_QUANT:
        if re.search(rf"(?<![a-z0-9]){marker}(?![a-z0-9])", lowered):
            return marker, _BYTES_PER_PARAM[marker]
    kind = dtype.strip().lower() or "auto"
    if kind in _BYTES_PER_PARAM:
        return ("bf16" if kind == "auto" else kind), _BYTES_PER_PARAM[kind]
    return "bf16", 2.0


def kv_bytes_per_token(params_billions: float) -> int:
    """K and V, 16-bit, for every layer: 2 x layers x 8 heads x 128 x 2 bytes (128 KiB for an 8B)."""
    layers = next(n for limit, n in _LAYERS_BY_SIZE if params_billions <= limit)
    return 2 * layers * 8 * 128 * 2


def memory_need(inputs: MemoryInputs) -> MemoryNeed:
    """The VRAM one replica needs at its target concurrency, with the 12 % buffer.

    The KV cache must hold at least one sequence of `max_model_len` tokens (vLLM refuses to start
    otherwise), `target_concurrency` of them when known, and never less than what Prometheus saw
    in use (observed usage x the pool vLLM has now).
    """
    tp = max(inputs.tensor_parallel, 1)
    held = None
    if inputs.gpu_memory_utilization and inputs.device_memory_mib:
        held = int(inputs.gpu_memory_utilization * inputs.device_memory_mib)
    params = params_from_name(inputs.model) if inputs.model else None
    precision, per_param = precision_of(model=inputs.model, dtype=inputs.dtype, quantization=inputs.quantization)
    if params is None:
        return MemoryNeed(
            False,
            "the parameter count is not in the model name",
            None,
            None,
            precision,
            None,
            None,
            None,
            None,
            "",
            None,
            None,
            None,
            held,
            tp,
        )
    weights = math.ceil(params * 1e9 * per_param / MIB)
    per_token = kv_bytes_per_token(params)
    context = inputs.max_model_len or 4096
    sequences = max(inputs.target_concurrency or 1, 1)
    tokens = context * sequences
    kv = math.ceil(tokens * per_token / MIB)
    source = f"{sequences} sequence{'s' if sequences != 1 else ''} of {context:,} tokens" + (
        "" if inputs.max_model_len else " (no max model length set: 4,096 assumed)"
    )
    overhead = RUNTIME_OVERHEAD_MIB * tp
    if inputs.observed_kv_usage is not None and held is not None:
        pool = held * tp - weights - overhead
        observed = math.ceil(max(pool, 0) * min(max(inputs.observed_kv_usage, 0.0), 1.0))
        if observed > kv:
            kv, tokens = observed, observed * MIB // per_token
            source = f"{inputs.observed_kv_usage:.0%} of the KV cache in use now"
    total = math.ceil((weights + kv + overhead) * (1 + BUFFER))
    return MemoryNeed(
        True,
        "",
        round(params, 3),
        per_param,
        precision,
        weights,
        per_token,
        tokens,
        kv,
        source,
        overhead,
        math.ceil(total / tp),
        total,
        held,
        tp,
    )
