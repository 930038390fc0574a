"""The advice chart: GPU-hours against SLO-violation minutes for every candidate, Pareto front drawn."""

from __future__ import annotations

from core import charts


def _points(candidates: list[dict], *, name: str, colour: str, size: int, symbol: str = "circle") -> dict:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "x": [c["gpu_hours"] for c in candidates],
        "y": [c["slo_violation_minutes"] for c in candidates],
        "text": [c["label"] for c in candidates],
        "hovertemplate": "%{text}<br>%{x:.2f} GPU-hours, %{y} violation minutes<extra></extra>",
        "marker": {"color": colour, "size": size, "symbol": symbol},
    }


def advice_figure(result: dict, front: list[dict]) -> dict:
    """GPU-hours against SLO-violation minutes: every candidate of an advisor run (`result`), its
    Pareto front (`front`, cheapest first) as a line, the two baselines and the recommendation."""
    candidates = result["candidates"]
    data = [
        _points(candidates, name="candidate", colour="#9aa5b1", size=7),
        {
            **_points(front, name="Pareto front", colour="#1f77b4", size=9),
            "mode": "lines+markers",
            "line": {"color": "#1f77b4", "width": 1.5, "shape": "hv"},
        },
        _points([result["baselines"]["keda_seed"]], name="seed ScaledObject", colour="#d62728", size=12, symbol="x"),
        _points(
            [result["baselines"]["static_peak"]], name="static for the peak", colour="#ff7f0e", size=12, symbol="square"
        ),
        _points([result["recommended"]], name="recommended", colour="#2ca02c", size=15, symbol="star"),
    ]
    layout = {
        "template": charts.PLOTLY,
        "height": 460,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
        "xaxis": {"title": {"text": "GPU-hours (GPU·h)"}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": "SLO-violation minutes (min)"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.18},
    }
    return {"data": data, "layout": layout}
