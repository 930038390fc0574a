"""The deployment page's charts: one small Plotly figure per metric, all on the same time range.

Built as plain Plotly JSON with core.charts and shipped to the page as one JSON list (json_script).
static/js/scaledeck.js draws the panels one at a time, those in view first and the rest while the
browser is idle, so the first charts show before the eleventh is drawn (one figure of eleven
stacked panels kept the browser busy ~0.75 s before anything showed), and zooming the time axis of
one panel zooms them all, as one figure with shared axes did.

Every panel has units on its axis and the same plot width (a fixed right margin holds its legend),
so the times line up from panel to panel; the x axis spans exactly the range asked for, so an
empty stretch reads as "no data then", not as a shorter chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.utils import timezone

from core import charts
from core.charts import wall_clock

# (title, y-axis title) per panel, top to bottom.
PANELS = (
    ("TTFT (time to first token)", "seconds (s)"),
    ("Inter-token latency (ITL)", "seconds (s)"),
    ("End-to-end request latency", "seconds (s)"),
    ("Requests waiting and running", "requests (req)"),
    ("Requests finished, errors and preemptions", "per second (/s)"),
    ("Error rate (aborted or failed requests)", "% of finished"),
    ("Replicas", "replicas"),
    ("KV cache usage", "%"),
    ("GPU utilization", "%"),
    ("Tokens per second", "tokens/s"),
    ("Cost", "$/h"),
)
Y_TITLES = dict(PANELS)
PERCENT_PANELS = ("KV cache usage", "GPU utilization")
PANEL_HEIGHT = 190  # px: title, plot and time ticks
TIME_TITLE_HEIGHT = 24  # px more under the last panel, for the time axis's title
MARGIN = {"l": 64, "r": 230, "t": 30, "b": 30}  # the legend sits in the right margin
NO_DATA = "no data from this metrics source for this range"
COLOURS = {
    "p50": "#6c8ebf",
    "p95": "#1f4e9a",
    "p99": "#a23b72",
    "slo": "#c0392b",
    "queue": "#d35400",
    "running": "#2e86ab",
    "finished": "#2e86ab",
    "errors": "#c0392b",
    "preemptions": "#8e44ad",
    "desired": "#7f8c8d",
    "ready": "#27ae60",
    "serving": "#16a085",
    "kv": "#8e44ad",
    "gpu": "#16a085",
    "gen": "#2c3e50",
    "prompt": "#95a5a6",
    "cost": "#b7950b",
}


class Series(Protocol):
    """One metric over time as the metrics backends answer it (fleet.backends.base.Series): one
    value per timestamp, None where there was no sample."""

    @property
    def timestamps(self) -> tuple[datetime, ...]: ...

    @property
    def values(self) -> Sequence[float | None]: ...


def _scaled(series: Series, factor: float) -> list[float | None]:
    return [None if v is None else v * factor for v in series.values]


def _has_data(series: Series | None) -> bool:
    return series is not None and any(v is not None for v in series.values)


def _replicas(series: Mapping[str, Series]) -> tuple[Series | None, Series | None, Series | None]:
    """(desired, ready, serving). Desired and ready come from kube-state-metrics or ScaleDeck's
    records (the simulator reports both); serving is how many pods reported vLLM metrics, which
    Prometheus knows even for pods that are gone."""
    return series.get("replicas_desired"), series.get("replicas_ready"), series.get("replicas")


def deployment_panels(
    series: Mapping[str, Series],
    *,
    slo_seconds: float,
    start: datetime,
    end: datetime,
    cost_per_replica_hour: Decimal | None,
    step_seconds: int | None = None,
) -> list[dict]:
    """One JSON-ready figure (data, layout) per panel of PANELS, top to bottom."""
    # The series of one range share their timestamps: format each distinct axis once.
    time_labels: dict[tuple, list[str]] = {}
    panels: dict[str, list[dict]] = {title: [] for title, _ in PANELS}
    with_data: set[str] = set()

    def line(
        title: str, key: str | Series | None, name: str, colour: str, *, factor: float = 1.0, style: dict | None = None
    ) -> None:
        """Add one trace to panel `title` (when the source has that series at all)."""
        s = series.get(key) if isinstance(key, str) else key
        if s is None:
            return
        if s.timestamps not in time_labels:
            time_labels[s.timestamps] = charts.wall_clocks(s.timestamps)
        panels[title].append(charts.line(x=time_labels[s.timestamps], y=_scaled(s, factor), name=name,
                                         colour=colour, **(style or {})))  # fmt: skip
        if _has_data(s):
            with_data.add(title)

    title = "TTFT (time to first token)"
    line(title, "ttft_p50", "TTFT p50 (s)", COLOURS["p50"])
    line(title, "ttft_p95", "TTFT p95 (s)", COLOURS["p95"], style={"width": 2.2})
    line(title, "ttft_p99", "TTFT p99 (s)", COLOURS["p99"])
    title = "Inter-token latency (ITL)"
    line(title, "itl_p50", "ITL p50 (s)", COLOURS["p50"])
    line(title, "itl_p95", "ITL p95 (s)", COLOURS["p95"], style={"width": 2.2})
    title = "End-to-end request latency"
    line(title, "e2e_p50", "E2E p50 (s)", COLOURS["p50"])
    line(title, "e2e_p95", "E2E p95 (s)", COLOURS["p95"], style={"width": 2.2})
    title = "Requests waiting and running"
    line(title, "queue_depth", "waiting (req)", COLOURS["queue"], style={"width": 2.2})
    line(title, "running", "running (req)", COLOURS["running"])
    title = "Requests finished, errors and preemptions"
    line(title, "requests_per_second", "finished (req/s)", COLOURS["finished"])
    line(title, "errors_per_second", "errors: aborted or failed (req/s)", COLOURS["errors"], style={"width": 2.2})
    line(title, "preemptions_per_second", "preemptions (/s)", COLOURS["preemptions"], style={"dash": "dot"})
    line("Error rate (aborted or failed requests)", "error_rate", "error rate (%)", COLOURS["errors"], factor=100)

    # Replicas desired vs ready, and the pods that reported vLLM metrics.
    desired, ready, serving = _replicas(series)
    line("Replicas", desired, "desired (replicas)", COLOURS["desired"], style={"dash": "dot", "shape": "hv"})
    line("Replicas", ready, "ready (replicas)", COLOURS["ready"], style={"shape": "hv"})
    line("Replicas", serving, "reporting metrics (pods)", COLOURS["serving"], style={"shape": "hv", "width": 1.2})

    # KV cache and GPU utilization, 0-1 fractions shown as %.
    line("KV cache usage", "kv_cache_usage", "KV cache (%)", COLOURS["kv"], factor=100)
    line("GPU utilization", "gpu_utilization", "GPU util (%)", COLOURS["gpu"], factor=100)
    line("Tokens per second", "generation_tokens_per_second", "generated (tokens/s)", COLOURS["gen"])
    line("Tokens per second", "prompt_tokens_per_second", "prompt (tokens/s)", COLOURS["prompt"])

    # $/hour: what the ready replicas cost, at the deployment's current price per replica.
    cost_series = series.get("cost_per_hour_usd")
    ready_or_serving = ready if _has_data(ready) else serving
    if cost_series is not None:
        line("Cost", cost_series, "cost ($/h)", COLOURS["cost"], style={"shape": "hv"})
    elif ready_or_serving is not None and cost_per_replica_hour is not None:
        line("Cost", ready_or_serving, "cost, estimated ($/h)", COLOURS["cost"], factor=float(cost_per_replica_hour),
             style={"shape": "hv"})  # fmt: skip

    x_range = [wall_clock(start), wall_clock(end)]
    time_title = f"time ({timezone.get_current_timezone_name()})"
    if step_seconds:
        time_title += f", {charts.resolution(step_seconds)}"
    figures = []
    for title, _ in PANELS:
        layout = _panel_layout(title, x_range=x_range, empty=title not in with_data,
                               time_title=time_title if title == PANELS[-1][0] else None)  # fmt: skip
        figures.append({"data": panels[title], "layout": layout})
    # TTFT with the objective as a dashed line.
    ttft = figures[0]["layout"]
    ttft["shapes"].append(charts.hline(slo_seconds, colour=COLOURS["slo"]))
    slo_label = charts.label(f"SLO p95 {slo_seconds:g} s", y=slo_seconds, colour=COLOURS["slo"], size=12)
    ttft["annotations"].append(slo_label)
    return figures


def _panel_layout(title: str, *, x_range: list[str], empty: bool, time_title: str | None) -> dict:
    """One panel's layout: its title top left, its unit on the y axis, its legend in the right margin;
    the date and the time axis's title only under the last panel (`time_title`)."""
    x_axis: dict = {"range": x_range, "type": "date"}
    if time_title:
        x_axis["title"] = {"text": time_title}
    else:
        x_axis["tickformat"] = "%H:%M"
    y_axis: dict = {"title": {"text": Y_TITLES[title], "font": {"size": 11}}, "rangemode": "tozero"}
    if title in PERCENT_PANELS:
        y_axis["range"] = [0, 100]
    # The right margin does not grow with a long legend: every panel keeps the same plot width.
    margin = {**MARGIN, "autoexpand": False}
    if time_title:
        margin["b"] += TIME_TITLE_HEIGHT
    return {
        "template": charts.PLOTLY_WHITE,
        "title": {
            "text": title,
            "font": {"size": 13},
            "x": 0,
            "xref": "paper",
            "xanchor": "left",
            "y": 1,
            "yref": "paper",
            "yanchor": "bottom",
            "pad": {"b": 6},
        },
        "xaxis": x_axis,
        "yaxis": y_axis,
        "shapes": [],
        "annotations": [charts.panel_note(NO_DATA, row=1)] if empty else [],
        "height": PANEL_HEIGHT + (TIME_TITLE_HEIGHT if time_title else 0),
        "margin": margin,
        "showlegend": True,
        "legend": {"x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top", "font": {"size": 11}},
        "hovermode": "x unified",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    }
