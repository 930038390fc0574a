"""The deployment page's charts: one Plotly figure, panels stacked on one shared time axis.

Built with plotly's Python API in the view, shipped to the page as JSON (json_script) and drawn
there by `Plotly.newPlot`. Every panel has units on its axis; the x axis spans exactly the
range asked for, so an empty stretch reads as "no data then", not as a shorter chart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from fleet.backends.base import Series

# (title, y-axis title) per panel, top to bottom.
PANELS = (
    ("TTFT (time to first token)", "seconds (s)"),
    ("Requests waiting and running", "requests (req)"),
    ("Replicas", "replicas"),
    ("KV cache usage", "%"),
    ("GPU utilization", "%"),
    ("Tokens per second", "tokens/s"),
    ("Cost", "$/h"),
)
PANEL_HEIGHT = 170
COLOURS = {
    "p50": "#6c8ebf",
    "p95": "#1f4e9a",
    "p99": "#a23b72",
    "slo": "#c0392b",
    "queue": "#d35400",
    "running": "#2e86ab",
    "desired": "#7f8c8d",
    "ready": "#27ae60",
    "kv": "#8e44ad",
    "gpu": "#16a085",
    "gen": "#2c3e50",
    "prompt": "#95a5a6",
    "cost": "#b7950b",
}


def _local(moment: datetime) -> str:
    # plotly.js ignores UTC offsets in date strings: send wall-clock times in the server's zone
    # (TIME_ZONE), and name that zone on the axis.
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _times(series: Series) -> list[str]:
    return [_local(t) for t in series.timestamps]


def _scaled(series: Series, factor: float) -> list[float | None]:
    return [None if v is None else v * factor for v in series.values]


def _has_data(series: Series | None) -> bool:
    return series is not None and any(v is not None for v in series.values)


def _replicas(series: Mapping[str, Series]) -> tuple[Series | None, Series | None]:
    """(desired, ready): the simulator reports both; Prometheus reports serving replicas as `replicas`."""
    ready = series.get("replicas_ready") or series.get("replicas")
    return series.get("replicas_desired"), ready


def deployment_figure(
    series: Mapping[str, Series],
    *,
    slo_seconds: float,
    start: datetime,
    end: datetime,
    cost_per_replica_hour: Decimal | None,
) -> dict:
    """The figure as a JSON-ready dict (`fig.to_json()`, parsed): data, layout."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=len(PANELS),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.045,
        subplot_titles=[title for title, _ in PANELS],
    )
    empty_panels: list[int] = []

    def line(
        row: int,
        key: str | Series | None,
        name: str,
        colour: str,
        *,
        factor: float = 1.0,
        first: bool = False,
        style: dict | None = None,
    ) -> bool:
        """Add one trace to panel `row`; True when it has at least one value."""
        s = series.get(key) if isinstance(key, str) else key
        if s is None:
            return False
        fig.add_trace(
            go.Scatter(
                x=_times(s),
                y=_scaled(s, factor),
                name=name,
                mode="lines",
                line={"color": colour, "width": 1.6, **(style or {})},
                legendgroup=str(row),
                legendgrouptitle_text=PANELS[row - 1][0] if first else None,
                connectgaps=False,
            ),
            row=row,
            col=1,
        )
        return _has_data(s)

    # 1. TTFT with the SLO as a dashed line.
    got = [
        line(1, "ttft_p50", "TTFT p50 (s)", COLOURS["p50"], first=True),
        line(1, "ttft_p95", "TTFT p95 (s)", COLOURS["p95"], style={"width": 2.2}),
        line(1, "ttft_p99", "TTFT p99 (s)", COLOURS["p99"]),
    ]
    fig.add_hline(
        y=slo_seconds,
        line_dash="dash",
        line_color=COLOURS["slo"],
        row=1,
        col=1,
        annotation_text=f"SLO p95 {slo_seconds:g} s",
        annotation_position="top left",
        annotation_font_color=COLOURS["slo"],
    )
    if not any(got):
        empty_panels.append(1)

    # 2. Queue and running.
    got = [
        line(2, "queue_depth", "waiting (req)", COLOURS["queue"], first=True, style={"width": 2.2}),
        line(2, "running", "running (req)", COLOURS["running"]),
    ]
    if not any(got):
        empty_panels.append(2)

    # 3. Replicas desired vs ready.
    desired, ready = _replicas(series)
    got = [
        line(3, desired, "desired (replicas)", COLOURS["desired"], first=True, style={"dash": "dot", "shape": "hv"}),
        line(3, ready, "ready (replicas)", COLOURS["ready"], style={"shape": "hv"}),
    ]
    if not any(got):
        empty_panels.append(3)

    # 4-5. KV cache and GPU utilization, 0-1 fractions shown as %.
    if not line(4, "kv_cache_usage", "KV cache (%)", COLOURS["kv"], factor=100, first=True):
        empty_panels.append(4)
    if not line(5, "gpu_utilization", "GPU util (%)", COLOURS["gpu"], factor=100, first=True):
        empty_panels.append(5)

    # 6. Tokens per second.
    got = [
        line(6, "generation_tokens_per_second", "generated (tokens/s)", COLOURS["gen"], first=True),
        line(6, "prompt_tokens_per_second", "prompt (tokens/s)", COLOURS["prompt"]),
    ]
    if not any(got):
        empty_panels.append(6)

    # 7. $/hour: what the ready replicas cost, at the deployment's current price per replica.
    cost_series = series.get("cost_per_hour_usd")
    if cost_series is not None:
        got_cost = line(7, cost_series, "cost ($/h)", COLOURS["cost"], first=True, style={"shape": "hv"})
    elif ready is not None and cost_per_replica_hour is not None:
        got_cost = line(
            7,
            ready,
            "cost, estimated ($/h)",
            COLOURS["cost"],
            factor=float(cost_per_replica_hour),
            first=True,
            style={"shape": "hv"},
        )
    else:
        got_cost = False
    if not got_cost:
        empty_panels.append(7)

    for row in empty_panels:
        axis = "" if row == 1 else str(row)
        fig.add_annotation(
            text="no data from this metrics source for this range",
            xref=f"x{axis} domain",
            yref=f"y{axis} domain",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"color": "#6b7280", "size": 12},
        )

    x_range = [_local(start), _local(end)]
    for row, (_, y_title) in enumerate(PANELS, start=1):
        fig.update_yaxes(title_text=y_title, rangemode="tozero", row=row, col=1, title_font={"size": 11})
        # Times on every panel (the eye should not travel to the bottom), the date only on the last.
        last = row == len(PANELS)
        fig.update_xaxes(
            range=x_range, type="date", row=row, col=1, showticklabels=True, tickformat=None if last else "%H:%M"
        )
    fig.update_yaxes(range=[0, 100], row=4, col=1)
    fig.update_yaxes(range=[0, 100], row=5, col=1)
    fig.update_xaxes(title_text=f"time ({timezone.get_current_timezone_name()})", row=len(PANELS), col=1)
    fig.update_layout(
        template="plotly_white",
        height=PANEL_HEIGHT * len(PANELS) + 80,
        margin={"l": 64, "r": 16, "t": 36, "b": 48},
        hovermode="x unified",
        legend={"orientation": "v", "groupclick": "toggleitem", "font": {"size": 11}},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    )
    fig.update_annotations(font_size=12)
    return json.loads(fig.to_json())
