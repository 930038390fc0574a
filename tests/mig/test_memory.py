"""The memory a deployment needs: parameter counts and precision from names and vLLM args, the KV
cache for max-model-len or what Prometheus saw, tensor parallel and the 12 % buffer."""

from __future__ import annotations

import pytest

from mig.memory import BUFFER, MIB, RUNTIME_OVERHEAD_MIB, MemoryInputs, memory_need, params_from_name, precision_of


@pytest.mark.parametrize(
    ("model", "billions"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", 8),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 56),
        ("facebook/opt-125m", 0.125),
        ("Qwen/Qwen3-30B-A3B", 30),
        ("Qwen/Qwen2.5-1.5B-Instruct", 1.5),
        ("google/gemma-2-9b-it", 9),
        ("microsoft/Phi-3-mini-4k-instruct", None),
        ("", None),
    ],
)
def test_it_reads_the_parameter_count_from_the_model_name(model, billions):
    assert params_from_name(model) == billions


@pytest.mark.parametrize(
    ("model", "dtype", "quantization", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "", "", ("bf16", 2.0)),
        ("meta-llama/Llama-3.1-8B-Instruct", "float32", "", ("float32", 4.0)),
        ("TheBloke/Llama-2-70B-AWQ", "", "", ("awq", 0.5)),
        ("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8", "", "", ("fp8", 1.0)),
        ("meta-llama/Llama-3.1-8B-Instruct", "", "gptq", ("gptq", 0.5)),
        ("TheBloke/Llama-2-70B-AWQ", "", "fp8", ("fp8", 1.0)),  # the argument wins over the name
    ],
)
def test_it_takes_precision_from_the_arguments_then_the_name(model, dtype, quantization, expected):
    assert precision_of(model=model, dtype=dtype, quantization=quantization) == expected


def test_it_adds_weights_kv_for_one_max_length_sequence_overhead_and_the_buffer():
    need = memory_need(MemoryInputs(model="meta-llama/Llama-3.1-8B-Instruct", max_model_len=8192))
    weights = 8e9 * 2 / MIB
    kv = 8192 * 2 * 32 * 8 * 128 * 2 / MIB  # 1 GiB: 128 KiB a token
    assert need.kv_mib == 1024
    assert need.total_mib == pytest.approx((weights + kv + RUNTIME_OVERHEAD_MIB) * (1 + BUFFER), abs=2)
    assert 0.10 <= BUFFER <= 0.15
    assert need.per_gpu_mib == need.total_mib


def test_it_splits_the_need_over_tensor_parallel_gpus():
    one = memory_need(MemoryInputs(model="meta-llama/Llama-3.1-70B-Instruct", max_model_len=8192))
    two = memory_need(MemoryInputs(model="meta-llama/Llama-3.1-70B-Instruct", max_model_len=8192, tensor_parallel=2))
    assert two.per_gpu_mib < one.per_gpu_mib
    assert two.total_mib - one.total_mib == pytest.approx(RUNTIME_OVERHEAD_MIB * (1 + BUFFER), abs=2)


def test_it_sizes_the_kv_cache_for_the_target_concurrency():
    one = memory_need(MemoryInputs(model="Qwen/Qwen2.5-7B-Instruct", max_model_len=4096))
    eight = memory_need(MemoryInputs(model="Qwen/Qwen2.5-7B-Instruct", max_model_len=4096, target_concurrency=8))
    assert eight.kv_mib == 8 * one.kv_mib
    assert "8 sequences of 4,096 tokens" in eight.kv_source


def test_it_uses_observed_kv_usage_when_it_says_more_is_in_use():
    inputs = dict(
        model="meta-llama/Llama-3.1-8B-Instruct",
        max_model_len=2048,
        gpu_memory_utilization=0.9,
        device_memory_mib=81920,
    )
    quiet = memory_need(MemoryInputs(**inputs, observed_kv_usage=0.0))
    busy = memory_need(MemoryInputs(**inputs, observed_kv_usage=0.8))
    assert quiet.kv_mib == 256 and "sequence" in quiet.kv_source
    pool = int(0.9 * 81920) - quiet.weights_mib - RUNTIME_OVERHEAD_MIB
    assert busy.kv_mib == pytest.approx(0.8 * pool, abs=1)
    assert busy.kv_source == "80% of the KV cache in use now"
    assert busy.held_per_gpu_mib == int(0.9 * 81920)


def test_it_says_why_when_the_parameter_count_is_unknown():
    need = memory_need(MemoryInputs(model="my-org/assistant", max_model_len=4096))
    assert not need.known and need.per_gpu_mib is None
    assert need.why_unknown == "the parameter count is not in the model name"


def test_a_quantized_model_needs_less_than_its_16_bit_original():
    awq = memory_need(MemoryInputs(model="TheBloke/Llama-2-70B-AWQ", max_model_len=4096))
    bf16 = memory_need(MemoryInputs(model="meta-llama/Llama-2-70b-hf", max_model_len=4096))
    assert awq.weights_mib * 4 == pytest.approx(bf16.weights_mib, abs=4)
