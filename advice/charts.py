"""The advisor's Pareto front over a run's stored candidates (the chart itself: core/charts/advice.py)."""

from __future__ import annotations

from simulator.advisor import pareto_front as front_of


def pareto_front(candidates: list[dict]) -> list[dict]:
    """The stored candidates no other beats on both axes, cheapest first."""
    return front_of(candidates, cost=lambda c: c["gpu_hours"], violations=lambda c: c["slo_violation_minutes"])
