"""TTFT objectives against vLLM's histogram buckets: pure logic.

A p95 computed with `histogram_quantile` is exact only on a bucket boundary; between two
boundaries Prometheus interpolates linearly, so "p95 <= 2.0 s" is an estimate when the
buckets are 1.0 s and 2.5 s. The UI says so wherever someone picks an objective.
"""

from __future__ import annotations

# vllm:time_to_first_token_seconds buckets (0.10 and later; 0.7 stops at 10.0).
TTFT_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
SLO_MIN_SECONDS = 0.001  # vLLM's smallest bucket: nothing finer can be measured
SLO_MAX_SECONDS = 600.0


def bucket_note(seconds: float) -> str | None:
    """None on a bucket boundary; else which buckets it falls between, in words."""
    if any(abs(seconds - b) < 1e-9 for b in TTFT_BUCKETS_SECONDS):
        return None
    below = max((b for b in TTFT_BUCKETS_SECONDS if b < seconds), default=None)
    above = min((b for b in TTFT_BUCKETS_SECONDS if b > seconds), default=None)
    if below is None:
        return f"below vLLM's smallest TTFT bucket ({above:g} s): not measurable"
    if above is None:
        return f"above vLLM's largest TTFT bucket ({below:g} s): p95 is only known to be over it"
    return f"between vLLM's {below:g} s and {above:g} s buckets: p95 there is interpolated, not exact"


def validate_slo(seconds: float) -> str | None:
    """An error message, or None when the objective is usable."""
    if not SLO_MIN_SECONDS <= seconds <= SLO_MAX_SECONDS:  # also refuses NaN and infinity
        return f"a TTFT objective must be between {SLO_MIN_SECONDS * 1000:g} ms and {SLO_MAX_SECONDS:g} s"
    return None
