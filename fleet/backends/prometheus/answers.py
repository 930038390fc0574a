"""Prometheus answers as plain values: instant vectors and range matrices parsed into samples, and
finished requests (by vLLM `finished_reason`) counted as served or errors."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fleet.backends.prometheus import promql


def request_outcomes(rates_by_reason: Iterable[tuple[str, float]]) -> tuple[float, float]:
    """(finished requests/s, errors/s) from rates by vLLM `finished_reason`.

    A request that stopped or hit its length limit was served; "abort" (client gone, engine
    aborted it), "error" and any reason a later vLLM adds count as errors.
    """
    total = errors = 0.0
    for reason, rate in rates_by_reason:
        total += rate
        if reason not in promql.SERVED_FINISH_REASONS:
            errors += rate
    return total, errors


def error_rate(total: float, errors: float) -> float | None:
    """Errors as a 0-1 share of finished requests; None (unknown) when nothing finished."""
    return errors / total if total > 0 else None


def number(raw: Any) -> float | None:
    """A Prometheus sample value ("1.5", "NaN", "+Inf") as a finite float, else None."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def mean(values: Iterable[float]) -> float | None:
    """The mean, or None (unknown) for no values."""
    values = list(values)
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value (None for NaN or infinite)."""

    labels: dict[str, str]
    value: float | None


def parse_vector(result: Any) -> list[Sample]:
    if not isinstance(result, list):
        raise ValueError("instant query answer is not a vector")
    samples = []
    for item in result:
        metric, value = item["metric"], item["value"]
        if not isinstance(metric, dict) or not isinstance(value, list) or len(value) != 2:
            raise ValueError("malformed sample")
        samples.append(Sample(metric, number(value[1])))
    return samples


def parse_matrix(result: Any) -> list[tuple[dict[str, str], dict[int, float | None]]]:
    if not isinstance(result, list):
        raise ValueError("range query answer is not a matrix")
    series = []
    for item in result:
        metric, values = item["metric"], item["values"]
        if not isinstance(metric, dict) or not isinstance(values, list):
            raise ValueError("malformed series")
        series.append((metric, {round(float(ts)): number(v) for ts, v in values}))
    return series
