"""The capacity fit from history and its table fallback (pure)."""

from __future__ import annotations

import pytest

from simulator.capacity import ReplicaCapacity
from simulator.capacity_fit import (
    MIN_SATURATED_MINUTES,
    Minute,
    capacity_for_rate,
    fit_capacity,
    gpu_speed,
    model_billions,
    table_capacity,
    token_means,
)


def minute(rps, *, queue=0.0, ttft=0.2, replicas=2.0, prompt=1000.0, gen=250.0):
    return Minute(rps, rps * prompt, rps * gen, queue, ttft, replicas)


@pytest.mark.parametrize(("model", "billions"), [
    ("meta-llama/Llama-3.1-70B-Instruct", 70.0),
    ("Qwen/Qwen2.5-0.5B", 0.5),
    ("mistralai/Mixtral-8x7B-v0.1", 7.0),
    ("org/bge-large", None),
])  # fmt: skip
def test_it_reads_the_model_size_from_its_name(model, billions):
    assert model_billions(model) == billions


@pytest.mark.parametrize(("product", "speed"), [
    ("NVIDIA-H100-80GB-HBM3", 2.0), ("NVIDIA-A100-SXM4-80GB", 1.0), ("NVIDIA-L4", 0.3),
    ("NVIDIA-A10G", 0.35), ("", 1.0),
])  # fmt: skip
def test_it_reads_the_gpu_speed_from_the_product(product, speed):
    assert gpu_speed(product)[0] == speed


def test_it_scales_the_table_with_gpu_and_model_size():
    small, _ = table_capacity(gpu_product="NVIDIA-H100-80GB-HBM3", gpus_per_replica=1, model="org/m-8B")
    big, note = table_capacity(gpu_product="NVIDIA-H100-80GB-HBM3", gpus_per_replica=1, model="org/m-70B")
    assert small.requests_per_second() > big.requests_per_second() * 5
    assert "H100" in note and "70B" in note


@pytest.mark.parametrize("rate", [0.5, 3.0, 12.0])
def test_it_turns_a_rate_into_a_capacity(rate):
    cap = capacity_for_rate(ReplicaCapacity(), rate, 1200.0, 300.0)
    assert cap.requests_per_second() == pytest.approx(rate, rel=1e-3)
    assert (cap.mean_prompt_tokens, cap.mean_output_tokens) == (1200.0, 300.0)


def test_it_weights_token_means_by_requests():
    assert token_means([minute(1.0, prompt=1000, gen=100), minute(3.0, prompt=2000, gen=300)]) == (
        pytest.approx(1750.0),
        pytest.approx(250.0),
    )
    assert token_means([Minute(None, None, None, None, None, None)]) == (None, None)


TABLE = ReplicaCapacity()


@pytest.mark.parametrize(("minutes", "fitted", "rate"), [
    # saturated by the queue: 2 replicas serving 8 requests/s -> 4 per replica
    ([minute(8.0, queue=10)] * MIN_SATURATED_MINUTES, True, 4.0),
    # saturated by TTFT above the 1 s objective; the median ignores a starting replica's minute
    ([minute(6.0, ttft=3.0)] * MIN_SATURATED_MINUTES + [minute(1.0, ttft=3.0, replicas=3)], True, 3.0),
    # never saturated: the table, whatever the minutes say
    ([minute(0.2)] * 100, False, None),
    # one minute short of enough
    ([minute(8.0, queue=10)] * (MIN_SATURATED_MINUTES - 1), False, None),
    ([], False, None),
])  # fmt: skip
def test_it_fits_capacity_from_saturated_minutes_else_the_table(minutes, fitted, rate):
    fit = fit_capacity(
        minutes, slo_seconds=1.0, table=TABLE, table_note="A100 x 1 GPU, model 8B", prompt=1000.0, output=250.0
    )
    assert fit.fitted is fitted
    if fitted:
        assert fit.requests_per_second == pytest.approx(rate)
        assert "fitted from" in fit.note
    else:
        assert "history too thin" in fit.note and "A100 x 1 GPU, model 8B" in fit.note
    assert fit.capacity.requests_per_second() == pytest.approx(fit.requests_per_second, rel=1e-3)


def test_it_never_takes_the_table_below_what_was_observed():
    table_rate = TABLE.requests_per_second(1000.0, 250.0)
    fit = fit_capacity(
        [minute(table_rate * 3, replicas=1)], slo_seconds=1.0, table=TABLE, table_note="t", prompt=1000.0, output=250.0
    )
    assert not fit.fitted and fit.requests_per_second == pytest.approx(table_rate * 3)
    assert "raised to the highest observed" in fit.note
