"""PromQL's `histogram_quantile`, computed in Python over buckets merged across pods.

The per-pod bucket queries return rates per (le, namespace, pod); the backend merges the
buckets of any set of pods and interpolates here, exactly as Prometheus would."""

from __future__ import annotations

import math
from collections.abc import Mapping


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """PromQL's `histogram_quantile` over {upper bound: cumulative count (or rate)}.

    Same algorithm as Prometheus (classic histograms): buckets sorted by upper bound, counts
    forced monotonic, linear interpolation inside the bucket holding the rank, the lower bound
    of the first bucket taken as 0, and a rank in the +Inf bucket answered with the highest
    finite bound. None where PromQL gives NaN (no +Inf bucket, fewer than two buckets, or no
    observations in the window).
    """
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    items = sorted((le, c) for le, c in buckets.items() if not math.isnan(c))
    if len(items) < 2 or items[-1][0] != math.inf:
        return None
    bounds = [le for le, _ in items]
    counts: list[float] = []
    for _, c in items:  # ensure monotonic, as Prometheus does
        counts.append(max(c, counts[-1]) if counts else c)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    if count <= 0:
        return start
    return start + (end - start) * (rank / count)


def bucket_bound(labels: Mapping[str, str]) -> float | None:
    """A bucket's upper bound (its `le` label) as a number; None for a series without one."""
    try:
        return float(labels["le"])
    except (KeyError, ValueError):
        return None
